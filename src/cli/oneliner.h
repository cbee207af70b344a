#pragma once
// What `consume` and `produce` share: they describe a pipeline as a pipeline file would, and run
// it through the same config checks, registry, connectors and runner as `kbridge run`.
#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>

#include "cli/commands.h"
#include "core/runner.h"

namespace kbridge {

// The `kafka:` block for a command line: brokers and properties. Throws ConfigError.
YAML::Node kafka_block(const KafkaArgs& args, const std::string& command);

// Builds the single pipeline of `root` and runs it to its end (or a stop signal); `report` is
// called with the runner before it is destroyed. Returns the exit code: 2 for a usage error
// (printed, naming `command`), else the runner's.
int run_oneliner(const YAML::Node& root, const std::string& command, bool once,
                 size_t dry_run_records,
                 const std::function<int(const PipelineRunner&, int code)>& report);

}  // namespace kbridge
