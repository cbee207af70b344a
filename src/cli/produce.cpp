// kbridge produce: kcat -P as a pipeline (a stdin source, a kafka sink) built from the command
// line: one record per line, idempotent with acks=all, exit 0 only when Kafka took every line.
#include <cstdint>
#include <cstdio>

#include "cli/oneliner.h"

namespace kbridge {

int produce_command(const ProduceArgs& args) {
    YAML::Node root(YAML::NodeType::Map);
    YAML::Node source(YAML::NodeType::Map), sink(YAML::NodeType::Map);
    try {
        root["version"] = "1";
        root["kafka"] = kafka_block(args.kafka, "produce");
        if (args.format == "csv" && args.columns.empty())
            throw ConfigError("produce: --format csv needs --columns");
        source["type"] = "stdin";
        source["format"] = args.format;
        if (!args.file.empty()) source["file"] = args.file;
        sink["type"] = "kafka";
        sink["topic"] = args.topic;
        sink["format"] = args.format;  // lines go out as they came: JSON, CSV or bytes
        for (const auto& column : args.columns) {
            source["columns"].push_back(column);
            sink["columns"].push_back(column);
        }
        if (!args.key.empty()) sink["key"] = args.key;
        for (const auto& header : args.headers) {
            const auto eq = header.find('=');
            if (eq == std::string::npos || eq == 0)
                throw ConfigError("produce: -H " + header + ": expected NAME=TEMPLATE");
            sink["headers"][header.substr(0, eq)] = header.substr(eq + 1);
        }
        sink["partition"] = std::to_string(args.partition);
        YAML::Node pipeline(YAML::NodeType::Map);
        pipeline["name"] = "produce";
        pipeline["source"] = source;
        pipeline["sink"] = sink;
        YAML::Node dead_letter(YAML::NodeType::Map);
        dead_letter["type"] = args.dead_letter.empty() ? "stderr" : "kafka";
        if (!args.dead_letter.empty()) dead_letter["topic"] = args.dead_letter;
        pipeline["dead_letter"] = dead_letter;
        root["pipelines"].push_back(pipeline);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge %s\n", e.what());
        return kExitUsage;
    }
    const bool reported_only = args.dead_letter.empty();
    return run_oneliner(
        root, "produce", true, args.dry_run ? SIZE_MAX : 0,
        [&](const PipelineRunner& runner, int code) {
            const PipelineStats& s = runner.stats();
            if (args.dry_run) return code;
            const std::string refused =
                reported_only ? "invalid" : "to the dead letter " + args.dead_letter;
            std::fprintf(stderr,
                         "kbridge produce: read %llu, delivered %llu, %llu %s in %.2f s%s\n",
                         static_cast<unsigned long long>(s.read.load()),
                         static_cast<unsigned long long>(s.delivered.load()),
                         static_cast<unsigned long long>(s.dead_lettered.load()), refused.c_str(),
                         s.seconds, code ? ", FAILED" : "");
            // Lines only reported never reached Kafka: not every record was acknowledged.
            if (reported_only && s.dead_lettered > 0) return kExitFailure;
            return code;
        });
}

}  // namespace kbridge
