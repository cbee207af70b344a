#pragma once
// Source `redis_stream`: reads Redis streams through a consumer group. An entry is acknowledged
// (XACK) only once the sink made it durable; a restarted worker first reads its own pending
// entries again, and entries left pending by a dead worker are claimed after `claim_idle`. An
// entry delivered more than `max_deliveries` times goes to the dead letter.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
    // value: fields makes JSON objects itself.
    bool values_are_valid_json() const override { return settings_.value_field.empty(); }
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
        size_t in_flight = 0;  // entries handed out, not yet acknowledged
    };
    // One entry of a reply: its stream, ID and fields (name, value, name, ...; none when it was
    // deleted while pending), viewing the reply.
    struct Entry {
        size_t stream;
        std::string_view id;
        size_t first_field = 0;  // in fields_
        size_t field_count = 0;
        bool deleted = false;
        int64_t deliveries = 1;
    };
    // The entries of one batch, from handing out until the sink acknowledged them.
    struct HandedOut {
        std::vector<size_t> stream;
        std::string ids;             // their IDs, back to back
        std::vector<size_t> id_end;  // where each ends in `ids`
        std::string_view id(size_t i) const {
            const size_t begin = i ? id_end[i - 1] : 0;
            return std::string_view(ids).substr(begin, id_end[i] - begin);
        }
    };

    ReadStatus read_own_pending(Batch& batch);
    bool claim(Batch& batch);
    // Sends XREADGROUP ... > for every stream not ended (blocking up to `block`); false when no
    // stream is left.
    bool send_read_new(std::chrono::milliseconds block);
    // Takes the reply of the last send_read_new(), after those of the commands sent before it.
    ReadStatus receive_new(Batch& batch);
    // After a full batch of new entries, reads the next one ahead: Redis prepares it while the
    // sink takes this one.
    ReadStatus read_ahead_after(ReadStatus status);
    // The entries a read ahead took and the run never sent: their delivery counts undone.
    void give_back_read_ahead();
    // Makes entries_ of the XREADGROUP reply reply_items() took.
    void collect_items(std::vector<size_t>* per_stream);
    // Appends the entries of a reply hiredis built (XAUTOCLAIM's, XRANGE's) to entries_.
    void collect_entries(size_t stream, const redisReply* entries,
                         const std::unordered_set<std::string_view>* skip = nullptr);
    // Asks XPENDING how often each entry (of this consumer's) was delivered.
    void count_deliveries();
    // Makes records of entries_; acknowledges at once those deleted from the stream.
    void fill(Batch& batch);
    void acknowledge(uint64_t number, size_t count);
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
    // What a read holds while its records are made, reused from read to read.
    std::vector<char> reply_storage_;
    std::vector<RedisClient::Item> reply_items_;
    std::vector<std::string_view> fields_;
    std::vector<Entry> entries_;
    size_t storage_hint_ = 0;
    std::map<uint64_t, HandedOut> handed_out_;  // by batch number, until acknowledged
    uint64_t next_batch_ = 0;
    // A read of new entries sent, its reply not taken yet.
    bool reading_new_ = false;
    std::chrono::milliseconds read_blocks_{0};
    size_t replies_before_read_ = 0;
    std::vector<size_t> asked_;  // the streams it reads
    bool last_read_full_ = false;
};

}  // namespace kbridge
