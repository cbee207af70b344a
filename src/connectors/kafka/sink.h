#pragma once
// Sink `kafka`: an idempotent, acks=all producer; topic, key and headers from templates.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "config/options.h"
#include "connectors/kafka/handles.h"
#include "connectors/kafka/transactions.h"
#include "core/registry.h"
#include "core/sink.h"
#include "formats/csv.h"
#include "formats/template.h"

namespace kbridge {

const OptionTable& kafka_sink_options();
std::unique_ptr<Sink> make_kafka_sink(const Options& options, const ConnectorContext& ctx);
// The connection settings of a kafka block, over the file's defaults.
KafkaSettings kafka_settings(const Options& options, const ConnectorContext& ctx);

class KafkaSink : public Sink, private PositionCommitter {
  public:
    KafkaSink(KafkaSettings settings, Template topic, std::optional<Template> key,
              std::vector<std::pair<std::string, Template>> headers);
    ~KafkaSink() override;

    void connect() override;
    // Connects and, with exactly_once, reads the committed position, fencing no one.
    void check() override;
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    void poll(std::chrono::milliseconds wait) override;
    bool reachable() const override { return reachable_; }
    PositionCommitter* position_committer() override { return transactions_ ? this : nullptr; }
    void finish(bool run_failed) override;
    bool needs_fields() const override;
    bool preview(const Record& record, const json::Value* fields, std::string& out,
                 Rejection& why) override;
    std::string describe() const override { return "kafka:" + topic_.text(); }
    // The producer's message.max.bytes (librdkafka refuses larger messages before sending).
    std::optional<size_t> max_value_bytes() const override;
    // Values become CSV lines of these columns instead of going out as read.
    void write_csv(CsvFormat csv) { csv_ = std::move(csv); }
    // -1 (RD_KAFKA_PARTITION_UA): the partitioner's choice.
    void set_partition(int32_t partition) { partition_ = partition; }
    // connect() waits up to `timeout` for the brokers; with `fail` (--once) it then fails.
    void check_brokers_at_start(bool fail, std::chrono::milliseconds timeout) {
        fail_fast_ = fail;
        connect_timeout_ = timeout;
    }

    // exactly_once: records go out in transactions committed with the source's position. A
    // dry run reads that position but fences no running pipeline.
    void use_transactions(KafkaTransactions::Settings settings, bool dry_run) {
        transactions_.emplace(std::move(settings));
        dry_run_ = dry_run;
        if (!dry_run)
            settings_.properties["transactional.id"] = transactions_->settings().transactional_id;
    }

  private:
    std::optional<Position> restart_position() override;
    void advance(const ResumePoint& point) override { transactions_->advance(point); }
    std::optional<Position> committed() const override { return transactions_->committed(); }
    std::optional<Position> peek_position() override;
    void reset_position() override { transactions_->reset_position(start_timeout()); }
    std::chrono::milliseconds start_timeout() const;
    bool settle_dead_letters();
    static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);
    rd_kafka_topic_t* topic_handle(const std::string& name);
    // False, with why = invalid_topic, when Kafka would refuse the rendered topic name.
    bool valid_topic(const std::string& topic, Rejection& why);
    static int64_t wall_clock_ms();

    KafkaSettings settings_;
    Template topic_;
    std::optional<Template> key_;
    std::vector<std::pair<std::string, Template>> headers_;
    KafkaHandle producer_;
    std::unordered_map<std::string, KafkaTopic> topics_;
    std::string topic_buffer_, key_buffer_, header_buffer_, error_buffer_, value_buffer_;
    std::optional<CsvFormat> csv_;
    bool fail_fast_ = false;
    int32_t partition_ = RD_KAFKA_PARTITION_UA;
    std::chrono::milliseconds connect_timeout_{10000};
    std::optional<KafkaTransactions> transactions_;
    bool dry_run_ = false;
    bool fail_fast_check_ = false;  // kbridge check: fences no running pipeline
    bool reachable_ = true;
    // CreateTime of records that bring none: read once per poll (every batch), not per record.
    int64_t now_ms_ = 0;
};

}  // namespace kbridge
