#pragma once
// A source's stored position: a few named strings in <state-dir>/<pipeline>.position, written
// atomically (temp file, fsync, rename, fsync of the directory) so a crash leaves the old or the
// new position, never half of one.
#include <map>
#include <optional>
#include <string>

namespace kbridge {

using Position = std::map<std::string, std::string>;

class PositionStore {
  public:
    PositionStore(std::string state_dir, const std::string& pipeline);
    // None when no position was stored yet. Throws std::runtime_error on an unreadable file.
    std::optional<Position> load() const;
    void save(const Position& position) const;
    void reset() const;
    const std::string& path() const { return path_; }

  private:
    std::string dir_;
    std::string path_;
};

}  // namespace kbridge
