#pragma once
// Source `kafka`: a consumer group member. Offsets are committed only for batches the sink made
// durable, never for partitions this member no longer owns; with --once it stops at the high
// watermarks seen at start. With an exactly-once sink it starts each assigned partition where
// the sink's own stored offsets say. With join_group off it reads every partition itself and
// commits to the group from outside it, as Kafka's standalone consumers do.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"
#include "connectors/kafka/handles.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& kafka_source_options();

// Where a partition starts when read without a group (commit: false), as kcat's -o has it.
struct StartOffset {
    enum class Kind { Beginning, End, Last, Time, Offset };
    Kind kind = Kind::Beginning;
    int64_t value = 0;  // Last: how many; Time: milliseconds since the epoch; Offset: the offset
};
// Parses beginning, end, -N, @TIMESTAMP_MS or OFFSET; false with `error` saying why.
bool parse_start_offset(const std::string& text, StartOffset& out, std::string& error);
std::unique_ptr<Source> make_kafka_source(const Options& options, const ConnectorContext& ctx);

class KafkaSource : public Source {
  public:
    struct Settings {
        KafkaSettings kafka;
        std::vector<std::string> topics;
        std::string group;
        std::string start = "earliest";
        bool join_group = true;
        size_t batch_size = 5000;
        std::chrono::milliseconds batch_timeout{200};
        bool once = false;
        Format format = Format::Json;
        // false: no group; every partition (or `partitions`) is assigned at `offset`, and
        // nothing is committed (kcat -C).
        bool commit = true;
        StartOffset offset;
        std::vector<int32_t> partitions;  // empty: all
        uint64_t max_records = 0;         // > 0: the run ends after handing out this many
    };
    explicit KafkaSource(Settings settings);
    ~KafkaSource() override;

    void connect() override;
    // The brokers answer and every topic exists; no group is joined.
    void check() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    void close() override;
    std::optional<uint64_t> backlog() override { return backlog_; }
    std::optional<uint64_t> lag() override;
    Format format() const override { return settings_.format; }
    std::string describe() const override;
    bool use_offset_store(OffsetStore* store) override;

    struct PartitionState {
        std::string topic;
        int32_t partition = -1;
        int64_t low = -1, high = -1;  // watermarks
        int64_t committed = -1;       // the group's committed offset; -1: none
    };
    // `state show`: every partition of the topics with its watermarks and the group's committed
    // offset, asked without joining the group (nothing is consumed or committed).
    std::vector<PartitionState> partition_states();
    const std::string& group() const { return settings_.group; }

  private:
    using TopicPartition = std::pair<std::string, int32_t>;
    struct Assigned {
        int64_t end = -1;  // --once: the high watermark at start; records from here on wait
        bool done = false;
    };

    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* partitions, void* opaque);
    void assign(rd_kafka_topic_partition_list_t* partitions);
    void revoke(rd_kafka_topic_partition_list_t* partitions);
    void read_watermarks();
    void assign_every_partition();
    void commit(bool synchronous);
    void check_fatal();
    bool all_done() const;
    void wake_fetchers(std::chrono::steady_clock::time_point now);
    std::chrono::milliseconds session_timeout() const;
    bool nothing_to_do(std::chrono::steady_clock::time_point now);
    bool group_committed_since_start();

    Settings settings_;
    KafkaHandle consumer_;
    OffsetStore* store_ = nullptr;
    std::map<TopicPartition, int64_t> end_at_start_;  // every partition, its high watermark
    std::map<TopicPartition, int64_t> low_at_start_;  // every partition, its low watermark
    std::map<TopicPartition, Assigned> assigned_;
    std::map<TopicPartition, int64_t> acked_;  // durable next offsets, not committed yet
    bool assign_at_first_read_ = false;        // join_group off
    uint64_t generation_ = 0;                  // bumped by every rebalance
    std::optional<uint64_t> backlog_;
    std::map<TopicPartition, int64_t> committed_at_start_;  // --once: the group's offsets
    std::chrono::steady_clock::time_point next_progress_check_;
    std::chrono::steady_clock::time_point connected_, last_commit_, last_wake_;
    std::string rebalance_error_;
    size_t read_since_wake_ = 0, wake_every_ = 0;  // bytes
    uint64_t handed_out_ = 0;                      // records, for max_records
    void set_start_offsets(rd_kafka_topic_partition_list_t* partitions);
};

}  // namespace kbridge
