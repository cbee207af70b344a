#pragma once
// Source `redis_stream`: reads Redis streams through a consumer group. An entry is acknowledged
// (XACK) only once the sink made it durable; a restarted worker first reads its own pending
// entries again, and entries left pending by a dead worker are claimed after `claim_idle`. An
// entry delivered more than `max_deliveries` times goes to the dead letter.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/options.h"
#include "connectors/redis/client.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& redis_stream_options();
std::unique_ptr<Source> make_redis_stream_source(const Options& options,
                                                 const ConnectorContext& ctx);

// A stream entry ID, "<ms>-<seq>", as numbers that compare in stream order.
struct StreamId {
    uint64_t ms = 0;
    uint64_t seq = 0;
    bool operator<(const StreamId& o) const { return ms < o.ms || (ms == o.ms && seq < o.seq); }
};
// False when `text` is no entry ID.
bool parse_stream_id(std::string_view text, StreamId& out);

class RedisStreamSource : public Source {
  public:
    struct Settings {
        RedisUrl url;
        std::chrono::milliseconds timeout{10000};  // connect_timeout
        std::vector<std::string> streams;
        std::string group = "kbridge";
        std::string start = "0";
        std::string consumer;
        size_t batch_size = 1000;
        std::chrono::milliseconds claim_idle{60000};
        int64_t max_deliveries = 5;  // 0: no limit
        std::string value_field;     // empty: the entry's fields as a JSON object
        bool delete_after_ack = false;
        Format format = Format::Json;
        bool once = false;
        bool preview = false;  // --dry-run: XRANGE the head of the streams, take nothing
    };
    explicit RedisStreamSource(Settings settings);

    void connect() override;
    void check() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    void close() override;
    std::optional<uint64_t> backlog() override;
    std::optional<uint64_t> lag() override;
    std::optional<uint64_t> pending() override;
    std::optional<uint64_t> claimed() override { return claimed_; }
    Format format() const override { return settings_.format; }
    std::string worker() const override { return settings_.consumer; }
    std::string describe() const override;
    bool reachable() const override { return client_.connected(); }

  private:
    struct Stream {
        std::string name;
        std::string own_cursor = "0";  // own pending entries re-read after this ID
        bool own_done = false;
        std::string claim_cursor = "0-0";
        std::optional<StreamId> end;  // --once: the last entry at start
        bool ended = false;
        std::unordered_set<std::string> in_flight;  // IDs handed out, not yet acknowledged
    };
    // One entry of a reply: its stream, ID and fields (an array, or nil when it was deleted).
    struct Entry {
        size_t stream;
        std::string id;
        const redisReply* fields;
        int64_t deliveries = 1;
    };

    ReadStatus read_own_pending(Batch& batch);
    bool claim(Batch& batch);
    ReadStatus read_new(Batch& batch, std::chrono::milliseconds wait);
    // Appends the entries of an XREADGROUP reply ([[stream, [[id, fields], ...]], ...]).
    void collect(const redisReply* reply, std::vector<Entry>& out,
                 std::vector<size_t>* per_stream = nullptr);
    // Asks XPENDING how often each entry (of this consumer's) was delivered.
    void count_deliveries(std::vector<Entry>& entries);
    // Makes records of the entries; acknowledges at once those deleted from the stream.
    void fill(Batch& batch, std::vector<Entry>& entries);
    void refresh_group_info();
    size_t stream_index(std::string_view name) const;
    void drain_replies();

    Settings settings_;
    RedisClient client_;
    std::vector<Stream> streams_;
    bool own_pending_done_ = false;
    bool previewed_ = false;
    std::chrono::steady_clock::time_point next_claim_;
    std::chrono::steady_clock::time_point info_at_;
    std::optional<uint64_t> lag_, pending_;
    uint64_t claimed_ = 0;
};

}  // namespace kbridge
