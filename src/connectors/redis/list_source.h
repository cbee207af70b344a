#pragma once
// Source `redis_list`: crash-safe reading of a Redis list. Each batch moves atomically out of the
// list into a batch list of this worker's, named in the worker's in-flight list, and is deleted
// only when acknowledged; a restarted worker first sends again every batch still named there.
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"
#include "connectors/redis/client.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& redis_list_options();
std::unique_ptr<Source> make_redis_list_source(const Options& options, const ConnectorContext& ctx);

// The worker's in-flight list: the names of its unacknowledged batch lists, oldest first. Its
// name carries the list's hash tag ({jobs}:inflight:worker1), so that on a Redis Cluster the
// list, its in-flight list and its batches share one slot.
std::string redis_in_flight_key(const std::string& list, const std::string& consumer);
// The in-flight list's name before it had a hash tag (jobs:inflight:worker1): what it names is
// sent again at start.
std::string redis_old_in_flight_key(const std::string& list, const std::string& consumer);
// One unacknowledged batch, its records in the order they are sent.
std::string redis_batch_key(const std::string& list, const std::string& consumer, uint64_t seq);

class RedisListSource : public Source {
  public:
    struct Settings {
        RedisUrl url;
        std::chrono::milliseconds timeout{10000};  // connect_timeout
        std::string key;
        std::string consumer;
        size_t batch_size = 1000;
        bool pop_left = true;
        Format format = Format::Json;
        bool once = false;
        bool preview = false;  // --dry-run: LRANGE the head of the list, take nothing
    };
    explicit RedisListSource(Settings settings);

    void connect() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    void close() override;
    std::optional<uint64_t> backlog() override;
    std::optional<uint64_t> lag() override;
    Format format() const override { return settings_.format; }
    std::string worker() const override { return settings_.consumer; }
    std::string describe() const override { return "redis_list:" + settings_.key; }
    bool reachable() const override { return client_.connected(); }

    struct InFlight {
        uint64_t list_length = 0;
        std::string in_flight_key;
        std::vector<std::pair<std::string, uint64_t>> batches;  // batch list, its records
    };
    // `state show`: the list's length and this worker's unacknowledged batches, read without
    // taking anything.
    InFlight in_flight();

  private:
    bool previewed_ = false;
    // Sends the move of the next batch and the read of its records (two replies).
    void send_move();
    void send_reads();
    // Takes the replies of the move sent last (after those of earlier pipelined acks).
    void receive_move(Batch& batch);
    // Takes the next reply, an LRANGE's, as the batch's records.
    void take(Batch& batch);
    void set_ack(Batch& batch, const std::string& batch_key, const std::string& in_flight_key);
    // Adds the batches an in-flight list names to those sent first.
    void take_over_in_flight(const std::string& in_flight_key);

    Settings settings_;
    std::string in_flight_key_;
    RedisClient client_;
    std::string move_sha_;
    // Batch keys found at connect, with the in-flight list naming each, sent first.
    std::deque<std::pair<std::string, std::string>> left_by_last_run_;
    uint64_t left_records_ = 0;
    std::optional<uint64_t> list_length_;  // after the last move
    uint64_t next_seq_ = 0;
    // A move sent ahead, so Redis works while the previous batch is dispatched: its records are
    // already in their batch list.
    bool move_pending_ = false;
    std::string pending_batch_key_;
    size_t replies_before_move_ = 0;
    size_t storage_hint_ = 0;
};

}  // namespace kbridge
