#pragma once
// The pipeline file: YAML -> validated top level; connector blocks are validated by their own
// option tables when the registry builds them.
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "config/options.h"

namespace kbridge {

struct ConnectorConfig {
    std::string type;
    YAML::Node node;
    std::string path;  // e.g. "pipelines[0].source"
};

struct PipelineConfig {
    std::string name;
    Mark mark;
    ConnectorConfig source;
    ConnectorConfig sink;
    std::optional<ConnectorConfig> dead_letter;
    std::optional<YAML::Node> transforms;  // the `transforms:` list
};

struct Config {
    std::string file;
    Options kafka;                // defaults for every kafka source/sink
    Options redis;                // defaults for every redis source/sink
    Options postgres;             // defaults for every postgres source/sink
    Options mysql;                // defaults for every mysql_table sink
    std::optional<Options> lock;  // lock: {redis, ttl}
    std::vector<PipelineConfig> pipelines;
};

// `path` may be "-" for standard input. `overrides` are "PATH=VALUE" strings from --set.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

// The pipeline file's own blocks and their option tables ("" is the top level), for `describe`.
struct FileBlock {
    std::string name;
    const OptionTable* options;
};
const std::vector<FileBlock>& file_blocks();

// A pipeline file already parsed (or built by a command such as `kbridge consume`): checked as
// load_config() checks a file; `file` names it in messages. No ${VAR} expansion.
Config config_from_yaml(const YAML::Node& root, const std::string& file);

// Expands ${VAR} and ${VAR:-default} ($$ is a literal $). Throws ConfigError at `mark`.
std::string expand_env(const std::string& text, const Mark& mark);

}  // namespace kbridge
