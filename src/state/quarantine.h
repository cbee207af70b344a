#pragma once
// Records too large for any sink of their pipeline, kept whole on disk so that the dead letter
// (which only gets their first 64 KiB) loses nothing.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/record.h"

namespace kbridge {

// The first bytes of a quarantined record that its dead letter receives.
constexpr size_t kQuarantinePreviewBytes = 64 * 1024;

std::string sha256_hex(std::string_view bytes);

class Quarantine {
  public:
    // Files go to <state_dir>/quarantine/<pipeline>/.
    Quarantine(const std::string& state_dir, const std::string& pipeline);
    const std::string& dir() const { return dir_; }
    // Writes the record's value to a file of its own, durably (fsync, then rename), named by
    // the record's source position (Kafka: topic-partition-offset; else the time and a count)
    // and the value's SHA-256. Returns the path; throws when it cannot be written.
    std::string keep(const Record& record, const std::string& sha256);

  private:
    std::string dir_;
    uint64_t count_ = 0;
};

}  // namespace kbridge
