// kbridge consume: kcat -C as a pipeline (a kafka source, a stdout sink) built from the command
// line. Without -G there is no group and nothing is committed, so it can be rerun at will.
#include <cstdio>

#include "cli/oneliner.h"
#include "connectors/kafka/source.h"

namespace kbridge {

int consume_command(const ConsumeArgs& args) {
    YAML::Node root(YAML::NodeType::Map);
    YAML::Node source(YAML::NodeType::Map), sink(YAML::NodeType::Map);
    try {
        root["version"] = "1";
        root["kafka"] = kafka_block(args.kafka, "consume");
        source["type"] = "kafka";
        for (const auto& topic : args.topics) source["topics"].push_back(topic);
        source["format"] = args.format;
        if (!args.columns.empty())
            for (const auto& column : args.columns) source["columns"].push_back(column);
        if (args.format == "csv" && args.columns.empty())
            throw ConfigError("consume: --format csv needs --columns");
        if (args.count < 0) throw ConfigError("consume: -c must be 0 or more");
        source["max_records"] = std::to_string(args.count);
        if (!args.group.empty()) {
            // A group member: it starts where the group committed, else at -o beginning|end.
            if (!args.partitions.empty())
                throw ConfigError(
                    "consume: -p reads without a group; -G takes what the group "
                    "assigns");
            if (!args.offset.empty() && args.offset != "beginning" && args.offset != "end")
                throw ConfigError(
                    "consume: with -G, -o may only be beginning or end (where a "
                    "group without committed offsets starts)");
            source["group"] = args.group;
            source["start"] = args.offset == "end" ? "latest" : "earliest";
        } else {
            StartOffset parsed;
            std::string error;
            if (!args.offset.empty() && !parse_start_offset(args.offset, parsed, error))
                throw ConfigError("consume: -o " + error);
            source["commit"] = "false";
            source["offset"] = args.offset.empty() ? "beginning" : args.offset;
            for (const int p : args.partitions) source["partitions"].push_back(std::to_string(p));
        }
        sink["type"] = "stdout";
        if (!args.line_format.empty()) {
            sink["line_format"] = args.line_format;
        } else if (args.format == "raw") {
            sink["line_format"] = "%s\\n";  // kcat's default: each value as it is, then a newline
        } else {
            sink["format"] = args.format;
            for (const auto& column : args.columns) sink["columns"].push_back(column);
        }
        YAML::Node pipeline(YAML::NodeType::Map);
        pipeline["name"] = "consume";
        pipeline["source"] = source;
        pipeline["sink"] = sink;
        root["pipelines"].push_back(pipeline);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge %s\n", e.what());
        return kExitUsage;
    }
    return run_oneliner(root, "consume", args.exit_at_end, 0,
                        [](const PipelineRunner&, int code) { return code; });
}

}  // namespace kbridge
