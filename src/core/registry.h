#pragma once
// Maps a connector `type:` to its option table and factory. Factories only check options; the
// connectors do their I/O in connect().
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/sink.h"
#include "core/source.h"

namespace kbridge {

struct ConnectorContext {
    const Config& config;
    std::string pipeline;
    bool once = false;
    std::string state_dir;
    std::string embedded_bootstraps;  // set when some connector uses brokers: embedded
    bool dry_run = false;     // read without taking: sources leave their records where they are
    std::string source_type;  // the pipeline's source `type:`
};

struct SourceKind {
    std::string type;
    const OptionTable* options;
    std::function<std::unique_ptr<Source>(const Options&, const ConnectorContext&)> make;
};

struct SinkKind {
    std::string type;
    const OptionTable* options;
    std::function<std::unique_ptr<Sink>(const Options&, const ConnectorContext&)> make;
};

const std::vector<SourceKind>& source_kinds();
const std::vector<SinkKind>& sink_kinds();

std::unique_ptr<Source> make_source(const ConnectorConfig& block, const ConnectorContext& ctx);
std::unique_ptr<Sink> make_sink(const ConnectorConfig& block, const ConnectorContext& ctx);

// True when any connector of these pipelines resolves its brokers to "embedded".
bool uses_embedded_kafka(const Config& config);

}  // namespace kbridge
