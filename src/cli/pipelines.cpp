#include "cli/pipelines.h"

#include <algorithm>

#include "transforms/transforming_sink.h"

namespace kbridge {

std::vector<BuiltPipeline> build_pipelines(const Config& config,
                                           const std::vector<std::string>& only, bool once,
                                           const std::string& state_dir,
                                           const std::string& embedded_bootstraps, bool dry_run) {
    for (const auto& name : only) {
        const bool known = std::any_of(config.pipelines.begin(), config.pipelines.end(),
                                       [&](const PipelineConfig& p) { return p.name == name; });
        if (!known) {
            std::string names;
            for (const auto& p : config.pipelines) names += (names.empty() ? "" : ", ") + p.name;
            throw ConfigError(config.file + ": no pipeline named '" + name +
                              "' (pipelines: " + names + ")");
        }
    }
    std::vector<BuiltPipeline> built;
    for (size_t index = 0; index < config.pipelines.size(); ++index) {
        const PipelineConfig& p = config.pipelines[index];
        if (!only.empty() && std::find(only.begin(), only.end(), p.name) == only.end()) continue;
        ConnectorContext ctx{config,  p.name,       once || dry_run, state_dir, embedded_bootstraps,
                             dry_run, p.source.type};
        BuiltPipeline b;
        b.name = p.name;
        b.source_type = p.source.type;
        b.sink_type = p.sink.type;
        b.source = make_source(p.source, ctx);
        b.sink = make_sink(p.sink, ctx);
        if (p.transforms) {
            const std::string where = "pipelines[" + std::to_string(index) + "].transforms";
            TransformChain chain(*p.transforms, config.file, where);
            if (b.source->format() == Format::Raw)
                throw ConfigError(mark_of(*p.transforms, config.file), where,
                                  "transforms work on fields: the source's format must be json or "
                                  "csv, not raw");
            b.sink = std::make_unique<TransformingSink>(std::move(chain), std::move(b.sink));
        }
        if (p.dead_letter) b.dead_letter = make_sink(*p.dead_letter, ctx);
        if (const auto limit = b.sink->max_value_bytes()) b.source->set_sink_value_limit(*limit);
        if (OffsetStore* store = b.sink->offset_store();
            store && !b.source->use_offset_store(store))
            throw ConfigError(
                config.file + ": pipeline " + p.name +
                ": exactly_once needs a kafka source (its offsets are what the sink stores)");
        if (PositionCommitter* committer = b.sink->position_committer();
            committer && !b.source->use_position_committer(committer))
            throw ConfigError(config.file + ": pipeline " + p.name +
                              ": exactly_once into kafka needs a postgres_cdc source (its "
                              "position is what each transaction commits)");
        built.push_back(std::move(b));
    }
    return built;
}

}  // namespace kbridge
