#pragma once
// Builds the connectors of a pipeline file's pipelines (no I/O yet): shared by run and validate.
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "core/runner.h"

namespace kbridge {

struct BuiltPipeline {
    std::string name;
    std::string source_type, sink_type;  // their `type:`
    std::unique_ptr<Source> source;
    std::unique_ptr<Sink> sink;
    std::unique_ptr<Sink> dead_letter;
};

// Throws ConfigError for an unknown --pipeline name or a bad connector block.
std::vector<BuiltPipeline> build_pipelines(const Config& config,
                                           const std::vector<std::string>& only, bool once,
                                           const std::string& state_dir,
                                           const std::string& embedded_bootstraps,
                                           bool dry_run = false);

}  // namespace kbridge
