#pragma once
// One function per subcommand; each returns the process exit code (SPEC.md: 0 done, 1 runtime
// failure, 2 usage or config error).
#include <cstdint>
#include <string>
#include <vector>

namespace kbridge {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLocked = 75;  // EX_TEMPFAIL: another run holds the pipeline (cron overlap)

struct RunArgs {
    std::string config;
    bool once = false;
    std::vector<std::string> pipelines;
    std::vector<std::string> overrides;
    std::string state_dir;
    std::string metrics_file;     // Prometheus text at exit (node_exporter textfile collector)
    std::string stats_json;       // the run summary as JSON
    int metrics_port = 0;         // > 0: serve /metrics and /health on 127.0.0.1:PORT
    std::string metrics_address;  // HOST:PORT to serve them on
    bool dry_run = false;         // print the first records as they would be written, nothing else
};

struct TopicsArgs {
    std::string action;  // list | describe | create | delete | alter
    std::string topic;
    std::string brokers;  // over the pipeline file's kafka.brokers
    std::string config;   // a pipeline file whose kafka block to use
    int partitions = -1;
    int replication_factor = -1;       // -1: the brokers' default
    std::vector<std::string> configs;  // NAME=VALUE
};
int topics_command(const TopicsArgs& args);

struct DevKafkaArgs {
    int brokers = 3;
    std::vector<std::string> topics;  // NAME[:PARTITIONS]
    std::string bootstrap_file;
};

struct StateArgs {
    std::string action;  // show | set | reset
    std::string config;
    std::string pipeline;
    std::vector<std::string> values;  // NAME=VALUE, for set
    std::string state_dir;
    bool drop_slot = false;  // reset: also a postgres_cdc pipeline's slot and publication
};

struct DescribeArgs {
    std::string type;             // a connector type or file block; empty: all
    std::string format = "text";  // text | json | markdown (README's tables)
};

// Where `consume` and `produce` find Kafka: -b, else --config-file's kafka block, else
// $KAFKA_BROKERS, else localhost:9092; -X properties over the file's.
struct KafkaArgs {
    std::string brokers;
    std::string config_file;
    std::vector<std::string> properties;  // NAME=VALUE
};

struct ConsumeArgs {
    KafkaArgs kafka;
    std::vector<std::string> topics;
    std::string offset;  // beginning | end | -N | @TIMESTAMP_MS | OFFSET
    std::vector<int> partitions;
    int64_t count = 0;
    bool exit_at_end = false;
    std::string group;
    std::string format = "raw";
    std::vector<std::string> columns;  // csv
    std::string line_format;           // kcat's -f
};
int consume_command(const ConsumeArgs& args);

struct ProduceArgs {
    KafkaArgs kafka;
    std::string topic;
    std::string key;                   // a template
    std::vector<std::string> headers;  // NAME=TEMPLATE
    int partition = -1;
    std::string format = "raw";
    std::vector<std::string> columns;  // csv
    std::string file;                  // -l: instead of stdin
    std::string dead_letter;           // a topic
    bool dry_run = false;
};
int produce_command(const ProduceArgs& args);

int run_command(const RunArgs& args);
int describe_command(const DescribeArgs& args);
int state_command(const StateArgs& args);
int validate_command(const std::string& config, const std::vector<std::string>& overrides);
// Connects every connector of CONFIG and prints one line per check; 0 when all pass, else 1.
int check_command(const std::string& config, const std::vector<std::string>& overrides);
int dev_kafka_command(const DevKafkaArgs& args);
int version_command();
// "kbridge X.Y.Z (librdkafka ..., hiredis ...)": `version`, --version and -V.
std::string version_text();

}  // namespace kbridge
