#include "connectors/redis/list_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "core/wait.h"
#include "formats/csv.h"

namespace kbridge {
namespace {

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "redis_list"},
    {"key", OptionType::String, "", "the list to read", {}, true},
    {"batch_size", OptionType::Integer, "1000", "records moved per batch"},
    {"pop",
     OptionType::Choice,
     "left",
     "left: FIFO for RPUSH writers; right: FIFO for LPUSH writers",
     {"left", "right"}},
    {"consumer", OptionType::String, "",
     "this worker's name (default: the pipeline name); one per parallel worker"},
    {"format", OptionType::Choice, "json", "how list items are decoded", {"json", "raw", "csv"}},
    {"url", OptionType::String, "", "redis://[user:password@]host:port/db (default: redis.url)"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting and on any wait for an answer (default: redis.connect_timeout, 10s)"},
    {"cluster", OptionType::Boolean, "",
     "the url names a node of a Redis Cluster (default: redis.cluster; implied by several "
     "nodes)"},
});

// Moves up to ARGV[1] items from the head (ASC) or the tail (DESC, oldest first) of the list
// KEYS[1] into the new batch list KEYS[2], and names the batch in the in-flight list KEYS[3], all
// in one step: a crash leaves every item either in the list or in a named batch. SORT ... BY nosort
// STORE copies natively, so no item passes through Lua (which costs Redis several times more).
const char* kMoveScript = R"lua(
local n = redis.call('SORT', KEYS[1], 'BY', 'nosort', 'LIMIT', 0, tonumber(ARGV[1]), ARGV[2], 'STORE', KEYS[2])
if n == 0 then return 0 end
if ARGV[2] == 'ASC' then redis.call('LTRIM', KEYS[1], n, -1) else redis.call('LTRIM', KEYS[1], 0, -n - 1) end
redis.call('RPUSH', KEYS[3], KEYS[2])
return n
)lua";

// Puts a batch that was taken but never sent back where it came from, in its order, and forgets
// it: a clean stop leaves the list as if it had not been read.
const char* kGiveBackScript = R"lua(
local items = redis.call('LRANGE', KEYS[2], 0, -1)
local push = ARGV[1] == 'ASC' and 'LPUSH' or 'RPUSH'
for i = #items, 1, -1 do redis.call(push, KEYS[1], items[i]) end
redis.call('DEL', KEYS[2])
redis.call('LREM', KEYS[3], -1, KEYS[2])
return #items
)lua";

}  // namespace

const OptionTable& redis_list_options() {
    return kOptions;
}

std::string redis_in_flight_key(const std::string& list, const std::string& consumer) {
    // A key with a hash tag of its own keeps it: a prefix of the name keeps its slot.
    if (has_hash_tag(list)) return list + ":inflight:" + consumer;
    return "{" + list + "}:inflight:" + consumer;
}

std::string redis_old_in_flight_key(const std::string& list, const std::string& consumer) {
    return list + ":inflight:" + consumer;
}

std::string redis_batch_key(const std::string& list, const std::string& consumer, uint64_t seq) {
    return redis_in_flight_key(list, consumer) + ":" + std::to_string(seq);
}

std::unique_ptr<Source> make_redis_list_source(const Options& options,
                                               const ConnectorContext& ctx) {
    RedisListSource::Settings s;
    s.url = redis_url_option(options, ctx.config.redis);
    s.timeout = connect_timeout_option(options, ctx.config.redis);
    s.key = options.str("key");
    if (s.key.empty()) throw options.error("key", "must not be empty");
    s.consumer = options.has("consumer") ? options.str("consumer") : ctx.pipeline;
    if (s.url.cluster &&
        cluster_slot(redis_in_flight_key(s.key, s.consumer)) != cluster_slot(s.key))
        throw options.error("key",
                            "on a Redis Cluster the key needs a hash tag ({...}) or no "
                            "braces: its in-flight list must share its slot");
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1 || batch_size > 100000)
        throw options.error("batch_size", "must be between 1 and 100000");
    s.batch_size = static_cast<size_t>(batch_size);
    s.pop_left = options.str("pop") == "left";
    CsvFormat csv;
    s.format = parse_format(options, csv);
    s.once = ctx.once;
    s.preview = ctx.dry_run;
    auto source = std::make_unique<RedisListSource>(std::move(s));
    source->set_csv(std::move(csv));
    return source;
}

RedisListSource::RedisListSource(Settings settings)
    : settings_(std::move(settings)),
      in_flight_key_(redis_in_flight_key(settings_.key, settings_.consumer)),
      client_(settings_.url, settings_.timeout) {
    client_.route(settings_.key);
}

void RedisListSource::connect() {
    // Also after an outage: what this worker had in flight is in its in-flight list again.
    left_by_last_run_.clear();
    left_records_ = 0;
    move_pending_ = false;
    replies_before_move_ = 0;
    client_.connect();
    move_sha_ = client_.command({"SCRIPT", "LOAD", kMoveScript})->str;
    // An earlier version's in-flight list, without the hash tag, goes first: an upgrade loses
    // nothing. (It names the same list only where the names differ.)
    const std::string old_key = redis_old_in_flight_key(settings_.key, settings_.consumer);
    if (old_key != in_flight_key_) take_over_in_flight(old_key);
    take_over_in_flight(in_flight_key_);
    if (!left_by_last_run_.empty())
        spdlog::info(
            "redis_list {}: sending again {} records in {} batches left in flight by an earlier "
            "run",
            settings_.key, left_records_, left_by_last_run_.size());
}

RedisListSource::InFlight RedisListSource::in_flight() {
    client_.connect();
    InFlight out;
    out.in_flight_key = in_flight_key_;
    out.list_length = static_cast<uint64_t>(client_.command({"LLEN", settings_.key})->integer);
    const RedisReply names = client_.command({"LRANGE", in_flight_key_, "0", "-1"});
    for (size_t i = 0; i < names->elements; ++i) {
        std::string name(names->element[i]->str, names->element[i]->len);
        const auto records = static_cast<uint64_t>(client_.command({"LLEN", name})->integer);
        out.batches.emplace_back(std::move(name), records);
    }
    return out;
}

void RedisListSource::take_over_in_flight(const std::string& in_flight_key) {
    const RedisReply names = client_.command({"LRANGE", in_flight_key, "0", "-1"});
    const std::string prefix = in_flight_key + ":";
    for (size_t i = 0; i < names->elements; ++i) {
        std::string name(names->element[i]->str, names->element[i]->len);
        if (name.rfind(prefix, 0) != 0)
            throw RedisError(
                "in-flight list " + in_flight_key + " names '" + name +
                "', which is no batch of this worker's; was it written by something else?");
        if (in_flight_key == in_flight_key_)
            next_seq_ = std::max<uint64_t>(
                next_seq_, std::strtoull(name.c_str() + prefix.size(), nullptr, 10) + 1);
        left_records_ += client_.command({"LLEN", name})->integer;
        left_by_last_run_.emplace_back(std::move(name), in_flight_key);
    }
}

std::optional<uint64_t> RedisListSource::backlog() {
    return client_.command({"LLEN", settings_.key})->integer + left_records_;
}

std::optional<uint64_t> RedisListSource::lag() {
    if (!list_length_) return std::nullopt;
    return *list_length_ + left_records_;
}

void RedisListSource::send_move() {
    pending_batch_key_ = redis_batch_key(settings_.key, settings_.consumer, next_seq_++);
    replies_before_move_ = client_.replies_pending();
    // On a Cluster the move may be redirected to a node that never loaded the script: the text
    // goes along (Redis caches it compiled all the same).
    const bool by_text = client_.cluster();
    client_.send({by_text ? "EVAL" : "EVALSHA", by_text ? kMoveScript : move_sha_, "3",
                  settings_.key, pending_batch_key_, in_flight_key_,
                  std::to_string(settings_.batch_size), settings_.pop_left ? "ASC" : "DESC"});
    send_reads();
    move_pending_ = true;
}

void RedisListSource::send_reads() {
    client_.send({"LRANGE", pending_batch_key_, "0", "-1"});
    client_.send({"LLEN", settings_.key});  // for metrics, without a round trip of its own
}

void RedisListSource::receive_move(Batch& batch) {
    move_pending_ = false;
    for (; replies_before_move_ > 0; --replies_before_move_) client_.reply();
    try {
        client_.reply();
    } catch (const RedisError& e) {
        while (client_.replies_pending()) client_.reply();  // LRANGE and LLEN sent with it
        if (std::string(e.what()).find("NOSCRIPT") == std::string::npos) throw;
        // The server restarted or flushed its scripts since connect(): load it, move again.
        move_sha_ = client_.command({"SCRIPT", "LOAD", kMoveScript})->str;
        send_move();
        return receive_move(batch);
    }
    // On a Cluster a redirected move runs again when its reply is taken, and so does a read
    // sent with it: the new batch key is missing where the move was refused (ASK, or MOVED
    // with the slot), so the read is redirected too, and runs after the move.
    take(batch);
    list_length_ = static_cast<uint64_t>(client_.reply()->integer);
    if (!batch.records.empty()) set_ack(batch, pending_batch_key_, in_flight_key_);
}

void RedisListSource::take(Batch& batch) {
    std::vector<RedisClient::Place> places;
    // Batches are alike: room for the last one's bytes spares growing the buffer record by record.
    batch.storage.reserve(storage_hint_);
    client_.reply_strings(batch.storage, places);
    const size_t size = batch.storage.size();
    storage_hint_ = std::max(storage_hint_, size);
    batch.records.reserve(places.size());
    for (const auto& place : places) {
        Record record;
        record.value.emplace(batch.storage.data() + place.offset, place.size);
        batch.records.push_back(std::move(record));
    }
}

void RedisListSource::set_ack(Batch& batch, const std::string& batch_key,
                              const std::string& in_flight_key) {
    batch.ack = [this, batch_key, in_flight_key, size = batch.records.size()](size_t count) {
        // Pipelined: the replies are checked with the next command's, or at close().
        if (count < size) {
            // The batch list keeps the records from the one the run stopped at, under its name
            // in the in-flight list: the next run sends them first.
            client_.send({"LTRIM", batch_key, std::to_string(count), "-1"});
            return;
        }
        // The batch goes before its name, so a crash between the two leaves only an empty name.
        client_.send({"DEL", batch_key});
        client_.send({"LREM", in_flight_key, "1", batch_key});
    };
}

ReadStatus RedisListSource::read(Batch& batch, std::chrono::milliseconds wait) {
    if (settings_.preview) {
        if (previewed_) return ReadStatus::End;
        previewed_ = true;
        const std::string n = std::to_string(settings_.batch_size);
        client_.send({"LRANGE", settings_.key, settings_.pop_left ? "0" : "-" + n,
                      settings_.pop_left ? std::to_string(settings_.batch_size - 1) : "-1"});
        take(batch);
        if (!settings_.pop_left) std::reverse(batch.records.begin(), batch.records.end());
        return batch.records.empty() ? ReadStatus::End : ReadStatus::Records;
    }
    if (!left_by_last_run_.empty()) {
        const auto [name, in_flight_key] = std::move(left_by_last_run_.front());
        left_by_last_run_.pop_front();
        while (client_.replies_pending()) client_.reply();
        client_.send({"LRANGE", name, "0", "-1"});
        take(batch);
        left_records_ -= std::min<uint64_t>(left_records_, batch.records.size());
        // An empty batch is acknowledged at once, forgetting its name.
        set_ack(batch, name, in_flight_key);
        return ReadStatus::Records;
    }
    if (!move_pending_) send_move();
    receive_move(batch);
    if (batch.records.empty()) {
        if (settings_.once) return ReadStatus::End;
        if (wait.count() == 0) return ReadStatus::Idle;
        // Waits for a writer without polling. Rotating the list onto itself at the same end
        // changes nothing, atomically, and returns once it holds an item.
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", wait.count() / 1000.0);
        const char* end = settings_.pop_left ? "LEFT" : "RIGHT";
        if (client_.command({"BLMOVE", settings_.key, settings_.key, end, end, seconds}, wait)
                ->type == REDIS_REPLY_NIL)
            return ReadStatus::Idle;
        send_move();
        receive_move(batch);
        if (batch.records.empty()) return ReadStatus::Idle;  // another worker was quicker
    }
    // A full batch suggests more: move the next one while this one is dispatched.
    if (batch.records.size() == settings_.batch_size) send_move();
    return ReadStatus::Records;
}

void RedisListSource::close() {
    if (move_pending_) {
        Batch unsent;
        receive_move(unsent);
        if (!unsent.records.empty())
            client_.command({"EVAL", kGiveBackScript, "3", settings_.key, pending_batch_key_,
                             in_flight_key_, settings_.pop_left ? "ASC" : "DESC"});
    }
    while (client_.replies_pending()) client_.reply();
}

}  // namespace kbridge
