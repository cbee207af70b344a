#include "connectors/redis/list_source.h"

#include <spdlog/spdlog.h>

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "redis_list"},
    {"key", OptionType::String, "", "the list to read", {}, true},
    {"batch_size", OptionType::Integer, "1000", "records moved per batch"},
    {"pop", OptionType::Choice, "left", "left: FIFO for RPUSH writers; right: FIFO for LPUSH writers", {"left", "right"}},
    {"consumer", OptionType::String, "", "this worker's name (default: the pipeline name); one per parallel worker"},
    {"format", OptionType::Choice, "json", "how list items are decoded", {"json", "raw"}},
    {"url", OptionType::String, "", "redis://[user:password@]host:port/db (default: redis.url)"},
};

// Moves up to ARGV[1] items from the head (or tail) of KEYS[1] to the tail of KEYS[2] in one
// step, so a crash can never leave an item in neither list. unpack() is chunked because Lua's
// stack is limited.
const char* kMoveScript = R"lua(
local items = redis.call(ARGV[2], KEYS[1], tonumber(ARGV[1]))
if not items then return {} end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
return items
)lua";

}  // namespace

const OptionTable& redis_list_options() { return kOptions; }

std::string redis_in_flight_key(const std::string& list, const std::string& consumer) {
    return list + ":inflight:" + consumer;
}

std::unique_ptr<Source> make_redis_list_source(const Options& options, const ConnectorContext& ctx) {
    RedisListSource::Settings s;
    const std::string url = options.has("url") ? options.str("url") : ctx.config.redis.str("url");
    try {
        s.url = parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
        if (options.has("url")) throw options.error("url", e.what());
        throw ctx.config.redis.error("url", e.what());
    }
    s.key = options.str("key");
    if (s.key.empty()) throw options.error("key", "must not be empty");
    s.consumer = options.has("consumer") ? options.str("consumer") : ctx.pipeline;
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1 || batch_size > 100000) throw options.error("batch_size", "must be between 1 and 100000");
    s.batch_size = static_cast<size_t>(batch_size);
    s.pop_left = options.str("pop") == "left";
    s.format = options.str("format") == "raw" ? Format::Raw : Format::Json;
    s.once = ctx.once;
    return std::make_unique<RedisListSource>(std::move(s));
}

RedisListSource::RedisListSource(Settings settings)
    : settings_(std::move(settings)),
      in_flight_key_(redis_in_flight_key(settings_.key, settings_.consumer)),
      client_(settings_.url) {}

void RedisListSource::connect() {
    client_.connect();
    script_sha_ = client_.command({"SCRIPT", "LOAD", kMoveScript})->str;
    left_from_last_run_ = client_.command({"LLEN", in_flight_key_})->integer;
    if (left_from_last_run_)
        spdlog::info("redis_list {}: sending again {} records left in {} by an earlier run",
                     settings_.key, left_from_last_run_, in_flight_key_);
}

std::optional<uint64_t> RedisListSource::backlog() {
    return client_.command({"LLEN", settings_.key})->integer + left_from_last_run_;
}

RedisReply RedisListSource::move_batch(size_t count) {
    const std::vector<std::string> args = {"EVALSHA", script_sha_, "2", settings_.key, in_flight_key_,
                                           std::to_string(count), settings_.pop_left ? "LPOP" : "RPOP"};
    try {
        return client_.command(args);
    } catch (const RedisError& e) {
        if (std::string(e.what()).find("NOSCRIPT") == std::string::npos) throw;
        // The server restarted or flushed its scripts since connect().
        script_sha_ = client_.command({"SCRIPT", "LOAD", kMoveScript})->str;
        auto again = args;
        again[1] = script_sha_;
        return client_.command(again);
    }
}

void RedisListSource::take(const RedisReply& items, Batch& batch) {
    for (size_t i = 0; i < items->elements; ++i) {
        const redisReply* item = items->element[i];
        Record record;
        record.value.emplace(item->str, item->len);
        batch.records.push_back(std::move(record));
    }
}

ReadStatus RedisListSource::read(Batch& batch, std::chrono::milliseconds wait) {
    if (taken_ < left_from_last_run_) {
        // Acks trim the in-flight list from its head, so the next unsent record sits at
        // taken_ - acked_.
        const uint64_t start = taken_ - acked_;
        const uint64_t count = std::min<uint64_t>(settings_.batch_size, left_from_last_run_ - taken_);
        take(client_.command({"LRANGE", in_flight_key_, std::to_string(start), std::to_string(start + count - 1)}), batch);
    } else {
        take(move_batch(settings_.batch_size), batch);
        if (batch.records.empty()) {
            if (settings_.once) return ReadStatus::End;
            if (wait.count() == 0) return ReadStatus::Idle;
            // Waits for a writer without polling; the item moves as atomically as a batch.
            char seconds[32];
            std::snprintf(seconds, sizeof seconds, "%.3f", wait.count() / 1000.0);
            RedisReply first = client_.command({"BLMOVE", settings_.key, in_flight_key_,
                                                settings_.pop_left ? "LEFT" : "RIGHT", "RIGHT", seconds});
            if (first->type != REDIS_REPLY_STRING) return ReadStatus::Idle;
            Record record;
            record.value.emplace(first->str, first->len);
            batch.records.push_back(std::move(record));
            if (settings_.batch_size > 1) take(move_batch(settings_.batch_size - 1), batch);
        }
    }
    const uint64_t count = batch.records.size();
    taken_ += count;
    batch.ack = [this, count] {
        client_.command({"LTRIM", in_flight_key_, std::to_string(count), "-1"});
        acked_ += count;
    };
    return ReadStatus::Records;
}

}  // namespace kbridge
