#include "cli/oneliner.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/pipelines.h"
#include "core/secrets.h"
#include "core/shutdown.h"
#include "state/state_dir.h"

namespace kbridge {
namespace {

// Errors about nodes built from the command line carry no place in a file: name the command.
std::string without_place(std::string message, const std::string& command) {
    for (const char* prefix : {"--set: pipelines[0].source.", "--set: pipelines[0].sink.",
                               "--set: pipelines[0].dead_letter.", "--set: "})
        if (message.rfind(prefix, 0) == 0)
            return command + ": " + message.substr(std::strlen(prefix));
    return message;
}

}  // namespace

YAML::Node kafka_block(const KafkaArgs& args, const std::string& command) {
    YAML::Node block(YAML::NodeType::Map);
    std::string brokers = args.brokers;
    YAML::Node properties(YAML::NodeType::Map);
    if (!args.config_file.empty()) {
        const Config config = load_config(args.config_file, {});
        if (brokers.empty()) brokers = config.kafka.str("brokers");
        for (const auto& [name, value] : config.kafka.string_map("properties"))
            properties[name] = value;
    }
    if (brokers.empty()) {
        const char* env = std::getenv("KAFKA_BROKERS");
        brokers = env && *env ? env : "localhost:9092";
    }
    if (brokers == "embedded")
        throw ConfigError(command + ": brokers 'embedded' name no cluster outside a run; give -b");
    for (const auto& assignment : args.properties) {
        const auto eq = assignment.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ConfigError(command + ": -X " + assignment + ": expected PROPERTY=VALUE");
        properties[assignment.substr(0, eq)] = assignment.substr(eq + 1);
    }
    block["brokers"] = brokers;
    block["properties"] = properties;
    return block;
}

int run_oneliner(const YAML::Node& root, const std::string& command, bool once,
                 size_t dry_run_records,
                 const std::function<int(const PipelineRunner&, int code)>& report) {
    install_stop_handlers();
    std::unique_ptr<PipelineRunner> runner;
    try {
        const Config config = config_from_yaml(root, command);
        const std::string state_dir = resolve_state_dir("");
        auto built = build_pipelines(config, {}, once, state_dir, "", dry_run_records > 0);
        RunSettings settings;
        settings.once = once || dry_run_records > 0;
        settings.dry_run_records = dry_run_records;
        settings.state_dir = state_dir;
        BuiltPipeline& b = built.at(0);
        runner = std::make_unique<PipelineRunner>(b.name, std::move(b.source), std::move(b.sink),
                                                  std::move(b.dead_letter), settings);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge %s\n",
                     scrub_secrets(without_place(e.what(), command)).c_str());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge %s: %s\n", command.c_str(), scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
    const int code = runner->run(stop_requested());
    return report(*runner, code);
}

}  // namespace kbridge
