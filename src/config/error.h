#pragma once
// A configuration error that points at its place in the pipeline file.
#include <stdexcept>
#include <string>

namespace kbridge {

struct Mark {
    std::string file;
    int line = 0;  // 1-based; 0 when unknown (e.g. a --set override)
    int column = 0;

    std::string str() const {
        if (line == 0) return file;
        return file + ":" + std::to_string(line) + ":" + std::to_string(column);
    }
};

class ConfigError : public std::runtime_error {
  public:
    ConfigError(const Mark& mark, const std::string& path, const std::string& message)
        : std::runtime_error(mark.str() + ": " + (path.empty() ? "" : path + ": ") + message) {}
    explicit ConfigError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace kbridge
