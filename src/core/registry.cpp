#include "core/registry.h"

#include "connectors/kafka/sink.h"
#include "connectors/kafka/source.h"
#include "connectors/mysql/table_sink.h"
#include "connectors/postgres/table_sink.h"
#include "connectors/postgres/table_source.h"
#include "connectors/postgres_cdc/cdc_source.h"
#include "connectors/redis/list_source.h"
#include "connectors/redis/sink.h"
#include "connectors/redis/stream_source.h"
#include "connectors/sqlite/table_sink.h"
#include "connectors/stdio/stderr_sink.h"
#include "connectors/stdio/stdin_source.h"
#include "connectors/stdio/stdout_sink.h"

namespace kbridge {
namespace {

template <typename Kind>
const Kind& find_kind(const std::vector<Kind>& kinds, const ConnectorConfig& block,
                      const Config& config, const char* what) {
    std::vector<std::string> names;
    for (const auto& k : kinds) {
        if (k.type == block.type) return k;
        names.push_back(k.type);
    }
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    const std::string hint = did_you_mean(block.type, names);
    throw ConfigError(mark_of(block.node["type"], config.file), block.path + ".type",
                      "unknown " + std::string(what) + " type '" + block.type + "' (" +
                          (hint.empty() ? "known: " + known : "did you mean '" + hint + "'?") +
                          ")");
}

}  // namespace

const std::vector<SourceKind>& source_kinds() {
    static const std::vector<SourceKind> kinds = {
        {"redis_list", &redis_list_options(), make_redis_list_source},
        {"redis_stream", &redis_stream_options(), make_redis_stream_source},
        {"postgres_table", &postgres_table_options(), make_postgres_table_source},
        {"postgres_cdc", &postgres_cdc_options(), make_postgres_cdc_source},
        {"kafka", &kafka_source_options(), make_kafka_source},
        {"stdin", &stdin_source_options(), make_stdin_source},
    };
    return kinds;
}

const std::vector<SinkKind>& sink_kinds() {
    static const std::vector<SinkKind> kinds = {
        {"kafka", &kafka_sink_options(), make_kafka_sink},
        {"postgres_table", &postgres_sink_options(), make_postgres_sink},
        {"mysql_table", &mysql_sink_options(), make_mysql_sink},
        {"redis", &redis_sink_options(), make_redis_sink},
        {"sqlite_table", &sqlite_sink_options(), make_sqlite_sink},
        {"stdout", &stdout_sink_options(), make_stdout_sink},
        {"stderr", &stderr_sink_options(), make_stderr_sink},
    };
    return kinds;
}

std::unique_ptr<Source> make_source(const ConnectorConfig& block, const ConnectorContext& ctx) {
    const SourceKind& kind = find_kind(source_kinds(), block, ctx.config, "source");
    return kind.make(Options(block.node, *kind.options, ctx.config.file, block.path), ctx);
}

std::unique_ptr<Sink> make_sink(const ConnectorConfig& block, const ConnectorContext& ctx) {
    const SinkKind& kind = find_kind(sink_kinds(), block, ctx.config, "sink");
    return kind.make(Options(block.node, *kind.options, ctx.config.file, block.path), ctx);
}

bool uses_embedded_kafka(const Config& config) {
    auto embedded = [&](const ConnectorConfig& block) {
        if (block.type != "kafka") return false;
        const YAML::Node own = block.node["brokers"];
        return (own ? own.Scalar() : config.kafka.str("brokers")) == "embedded";
    };
    for (const auto& p : config.pipelines)
        if (embedded(p.source) || embedded(p.sink) || (p.dead_letter && embedded(*p.dead_letter)))
            return true;
    return false;
}

}  // namespace kbridge
