#pragma once
// The Kafka transactions of an exactly-once kafka sink: records are produced inside a
// transaction that commits, together with the source's position, at an end of one of the
// source's transactions (so a PostgreSQL transaction is never split unless it outlasts half of
// transaction.timeout.ms). The position is the last committed record of a compacted offsets
// topic, keyed by the transactional id; starting fences earlier producers of the id (their open
// transaction is aborted) and reads it back with read_committed.
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "connectors/kafka/handles.h"
#include "core/positions.h"

namespace kbridge {

// The brokers did not answer in time: a follow-mode run tries again, as after an outage.
struct KafkaUnreachable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class KafkaTransactions {
  public:
    struct Settings {
        KafkaSettings connection;  // brokers and the file's kafka properties, for the reader
        std::string offsets_topic;
        std::string transactional_id;
        std::chrono::milliseconds commit_interval{100};
        std::chrono::milliseconds transaction_timeout{60000};  // transaction.timeout.ms
    };
    explicit KafkaTransactions(Settings settings) : settings_(std::move(settings)) {}

    const Settings& settings() const { return settings_; }
    // With the producer just made (transactional.id set): fences, then reads the position.
    void start(rd_kafka_t* producer, std::chrono::milliseconds timeout);
    // The position committed last, without fencing anyone (--dry-run, kbridge state show).
    std::optional<Position> read_position(std::chrono::milliseconds timeout) const;
    // Writes a tombstone for the position (kbridge state reset, with no pipeline running).
    void reset_position(std::chrono::milliseconds timeout) const;
    // Before a record is produced: opens a transaction when none is open.
    void before_send();
    void sent() { sent_since_advance_ = true; }
    void advance(const ResumePoint& point);
    // Commits when one is due. `settle` waits until the dead letter holds every record refused
    // so far (false: it failed, and nothing is committed).
    void poll(const std::function<bool()>& settle);
    // At the end of a run: commits what can be, aborts the rest.
    void finish(bool run_failed, const std::function<bool()>& settle);
    // Aborts what was sent since the last commit; returns the committed position.
    std::optional<Position> restart();
    const std::optional<Position>& committed() const { return committed_; }

  private:
    bool commit_due() const;
    void commit(const std::function<bool()>& settle);
    void abort(const std::string& why);
    void ensure_offsets_topic(std::chrono::milliseconds timeout);

    Settings settings_;
    rd_kafka_t* producer_ = nullptr;
    bool open_ = false;
    bool sent_since_advance_ = false;
    bool split_told_ = false;
    std::chrono::steady_clock::time_point opened_at_;
    std::optional<ResumePoint> pending_;  // where the source resumes after what was sent
    std::optional<Position> committed_;
};

}  // namespace kbridge
