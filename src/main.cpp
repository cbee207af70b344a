// CLI wiring only: each subcommand's options, then its function in cli/.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/generate.h"
#include "core/log.h"

int main(int argc, char** argv) {
    using namespace kbridge;
    const char* const kStateDirHelp =
        "positions and locks (default: $STATE_DIRECTORY, else $XDG_STATE_HOME/kbridge, else "
        "~/.local/state/kbridge)";
    CLI::App app{"kbridge: moves records between Redis, PostgreSQL and Kafka"};
    app.require_subcommand(1);
    app.set_version_flag("-V,--version", [] { return version_text(); });
    app.footer(
        "State dir (positions, locks): --state-dir, else $STATE_DIRECTORY (systemd), else\n"
        "$XDG_STATE_HOME/kbridge, else ~/.local/state/kbridge.\n"
        "Connector options: kbridge describe [TYPE]; pipeline file: man kbridge.yaml");
    std::string log_level = "info", log_format = "text";
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
    app.add_option("--log-format", log_format, "text|json")->capture_default_str();

    RunArgs run;
    auto* run_cmd = app.add_subcommand("run", "run the pipelines of CONFIG (- for stdin)");
    run_cmd->add_option("config", run.config, "pipeline file")->required();
    run_cmd->add_flag("--once", run.once,
                      "drain every source to the end it had at start, then exit");
    run_cmd->add_option("--pipeline", run.pipelines, "only this pipeline (repeatable)");
    run_cmd->add_option("--set", run.overrides, "override a config value: PATH=VALUE (repeatable)");
    run_cmd->add_option("--state-dir", run.state_dir, kStateDirHelp);
    run_cmd->add_option("--metrics-file", run.metrics_file,
                        "write Prometheus metrics here every 5 s and at exit");
    run_cmd->add_flag(
        "--dry-run", run.dry_run,
        "print each pipeline's first 10 records as they would be written; take and write nothing");
    run_cmd->add_option("--metrics-port", run.metrics_port,
                        "serve Prometheus /metrics and /health on 127.0.0.1:PORT");
    run_cmd->add_option("--metrics-address", run.metrics_address,
                        "serve /metrics and /health on HOST:PORT (:PORT: every interface)");
    run_cmd->add_option("--stats-json", run.stats_json, "write the run summary here as JSON");
    run_cmd->add_option("--log-level", log_level, "trace|debug|info|warn|error");
    run_cmd->add_option("--log-format", log_format, "text|json");

    std::string validate_config;
    std::vector<std::string> validate_overrides;
    auto* validate_cmd =
        app.add_subcommand("validate", "parse and check CONFIG without connecting");
    validate_cmd->add_option("config", validate_config, "pipeline file")->required();
    validate_cmd->add_option("--set", validate_overrides, "override a config value: PATH=VALUE");

    TopicsArgs topics;
    auto* topics_cmd =
        app.add_subcommand("topics", "list, describe, create, delete or alter Kafka topics");
    topics_cmd->add_option("action", topics.action, "list | describe | create | delete | alter")
        ->required()
        ->check(CLI::IsMember({"list", "describe", "create", "delete", "alter"}));
    topics_cmd->add_option("topic", topics.topic, "topic name (all but list)");
    topics_cmd->add_option("--brokers", topics.brokers,
                           "bootstrap servers (default: the config's, else localhost:9092)");
    topics_cmd->add_option("--config-file", topics.config,
                           "take brokers and properties from this pipeline file");
    topics_cmd->add_option("--partitions", topics.partitions,
                           "create: partitions; alter: the new total");
    topics_cmd->add_option("--replication-factor", topics.replication_factor,
                           "create: replicas per partition");
    topics_cmd->add_option("--config", topics.configs,
                           "topic config NAME=VALUE (repeatable; create, alter)");

    std::string check_config;
    std::vector<std::string> check_overrides;
    auto* check_cmd =
        app.add_subcommand("check", "connect to every endpoint of CONFIG and check what it needs");
    check_cmd->add_option("config", check_config, "pipeline file")->required();
    check_cmd->add_option("--set", check_overrides, "override a config value: PATH=VALUE");

    DevKafkaArgs dev;
    auto* dev_cmd = app.add_subcommand(
        "dev-kafka", "run a local Kafka-protocol cluster (librdkafka's mock) until Ctrl-C");
    dev_cmd->add_option("--brokers", dev.brokers, "number of brokers")->capture_default_str();
    dev_cmd->add_option("--topic", dev.topics,
                        "create NAME[:PARTITIONS] (repeatable; default 4 partitions)");
    dev_cmd->add_option("--bootstrap-file", dev.bootstrap_file,
                        "write the bootstrap servers to this file when ready");

    StateArgs state;
    auto* state_cmd =
        app.add_subcommand("state", "show, set or reset a pipeline's stored source position");
    state_cmd->add_option("action", state.action, "show | set | reset")
        ->required()
        ->check(CLI::IsMember({"show", "set", "reset"}));
    state_cmd->add_option("config", state.config, "pipeline file")->required();
    state_cmd->add_option("pipeline", state.pipeline, "pipeline name")->required();
    state_cmd->add_option("values", state.values, "NAME=VALUE for set, e.g. incrementing=1000");
    state_cmd->add_option("--state-dir", state.state_dir, kStateDirHelp);
    state_cmd->add_flag("--drop-slot", state.drop_slot,
                        "reset: also drop a postgres_cdc pipeline's slot and publication");

    DescribeArgs describe;
    auto* describe_cmd = app.add_subcommand(
        "describe", "print every connector's options: type, default, allowed values, help");
    describe_cmd->add_option("type", describe.type,
                             "only this connector type or file block, e.g. kafka");
    describe_cmd
        ->add_option("--format", describe.format, "json for tools; markdown: README's tables")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "json", "markdown"}));
    // Hidden (no group): what the package build installs, written from this command line.
    std::string generate_what;
    auto* generate_cmd =
        app.add_subcommand("generate", "write a man page or a shell completion")->group("");
    generate_cmd->add_option("what", generate_what, "man1 | man5 | bash | zsh")->required();

    auto kafka_options = [](CLI::App* cmd, KafkaArgs& kafka) {
        cmd->add_option("-b,--brokers", kafka.brokers,
                        "bootstrap servers (default: --config-file's, else $KAFKA_BROKERS, else "
                        "localhost:9092)");
        cmd->add_option("--config-file", kafka.config_file,
                        "take brokers and properties from this pipeline file's kafka block");
        cmd->add_option("-X", kafka.properties, "librdkafka property NAME=VALUE (repeatable)");
    };
    ConsumeArgs consume;
    auto* consume_cmd = app.add_subcommand(
        "consume", "print the records of Kafka topics, like kcat -C; no group, no commits");
    consume_cmd->add_option("topics", consume.topics, "topics to read")->required();
    kafka_options(consume_cmd, consume.kafka);
    consume_cmd->add_option("-o,--offset", consume.offset,
                            "where each partition starts: beginning (default), end, -N (the last "
                            "N), @TIMESTAMP_MS or an offset");
    consume_cmd->add_option("-p,--partition", consume.partitions,
                            "only this partition (repeatable)");
    consume_cmd->add_option("-c,--count", consume.count, "exit after this many records");
    consume_cmd->add_flag("-e,--exit", consume.exit_at_end,
                          "exit at the end of every partition (as it was at the start)");
    consume_cmd->add_option("-G,--group", consume.group,
                            "read as a member of this consumer group and commit what was printed");
    consume_cmd->add_option("--format", consume.format, "the values: raw, json or csv")
        ->check(CLI::IsMember({"json", "raw", "csv"}));
    consume_cmd->add_option("--columns", consume.columns, "csv: the field names, in order")
        ->delimiter(',');
    consume_cmd->add_option("-f,--line-format", consume.line_format,
                            "kcat's -f: %t %p %o %k %s %h %T %S %K, \\n \\t");

    ProduceArgs produce;
    auto* produce_cmd = app.add_subcommand(
        "produce", "send each line of stdin (or -l FILE) to a Kafka topic, like kcat -P");
    produce_cmd->add_option("topic", produce.topic, "topic (a template: orders.{region})")
        ->required();
    kafka_options(produce_cmd, produce.kafka);
    produce_cmd->add_option("-k,--key", produce.key, "key template, e.g. {user_id}");
    produce_cmd->add_option("-H,--header", produce.headers, "header NAME=TEMPLATE (repeatable)");
    produce_cmd->add_option("-p,--partition", produce.partition,
                            "write every record to this partition");
    produce_cmd->add_option("--format", produce.format, "the lines: raw, json or csv")
        ->check(CLI::IsMember({"json", "raw", "csv"}));
    produce_cmd->add_option("--columns", produce.columns, "csv: the field names, in order")
        ->delimiter(',');
    produce_cmd->add_option("-l,--file", produce.file, "read this file instead of stdin");
    produce_cmd->add_option("--dead-letter", produce.dead_letter,
                            "send invalid lines to this topic instead of reporting them");
    produce_cmd->add_flag("--dry-run", produce.dry_run,
                          "print each record as it would be produced; send nothing");

    auto* version_cmd = app.add_subcommand("version", "print the version");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    // One-liners stay quiet unless asked: only warnings and errors, as kcat -q.
    if ((consume_cmd->parsed() || produce_cmd->parsed()) &&
        app.get_option("--log-level")->count() == 0)
        log_level = "warn";
    try {
        setup_logging(log_level, log_format);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", e.what());
        return kExitUsage;
    }
    if (run_cmd->parsed()) return run_command(run);
    if (validate_cmd->parsed()) return validate_command(validate_config, validate_overrides);
    if (check_cmd->parsed()) return check_command(check_config, check_overrides);
    if (topics_cmd->parsed()) return topics_command(topics);
    if (state_cmd->parsed()) return state_command(state);
    if (dev_cmd->parsed()) return dev_kafka_command(dev);
    if (describe_cmd->parsed()) return describe_command(describe);
    if (generate_cmd->parsed()) return generate_command(app, generate_what);
    if (version_cmd->parsed()) return version_command();
    if (consume_cmd->parsed()) return consume_command(consume);
    if (produce_cmd->parsed()) return produce_command(produce);
    return kExitUsage;
}
