#pragma once
// One option table per connector: the single source of parsing, defaults, unknown-key errors
// and help text.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/error.h"

namespace kbridge {

// Map: a nested block checked by someone else (e.g. a pipeline's source).
// List: a list checked by someone else (e.g. a pipeline's transforms).
enum class OptionType {
    String,
    Integer,
    Boolean,
    Duration,
    Choice,
    StringMap,
    StringList,
    Map,
    List
};

struct OptionSpec {
    std::string name;
    OptionType type;
    std::string default_value;  // empty: no default
    std::string help;
    std::vector<std::string> choices = {};  // for Choice
    bool required = false;
};

using OptionTable = std::vector<OptionSpec>;

// Validated options of one block (a source, a sink, ...). Values keep their place in the file.
class Options {
  public:
    Options() = default;
    // Checks `node` against `table`: unknown keys (with a did-you-mean), types, choices and
    // required keys. `path` names the block in messages, e.g. "pipelines[0].source".
    Options(const YAML::Node& node, const OptionTable& table, const std::string& file,
            const std::string& path);

    bool has(const std::string& name) const;
    std::string str(const std::string& name) const;
    int64_t integer(const std::string& name) const;
    bool boolean(const std::string& name) const;
    std::chrono::milliseconds duration(const std::string& name) const;
    std::map<std::string, std::string> string_map(const std::string& name) const;
    std::vector<std::string> string_list(const std::string& name) const;

    // The place of an option (or of the block when the option was not given), for errors that
    // connectors find later, e.g. a template that does not parse.
    Mark mark(const std::string& name) const;
    const std::string& path() const { return path_; }
    ConfigError error(const std::string& name, const std::string& message) const;

  private:
    const OptionSpec& spec(const std::string& name) const;

    std::string file_;
    std::string path_;
    Mark block_mark_;
    const OptionTable* table_ = nullptr;
    std::map<std::string, YAML::Node> values_;
};

Mark mark_of(const YAML::Node& node, const std::string& file);
// A mapping key's text; a key that is a list or a map is a ConfigError at its place.
std::string key_text(const YAML::Node& key, const std::string& file, const std::string& path);
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
// "500ms", "30s", "5m", "1h" or a bare number of milliseconds.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out);

}  // namespace kbridge
