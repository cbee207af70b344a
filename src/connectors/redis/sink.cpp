#include "connectors/redis/sink.h"

#include <spdlog/spdlog.h>

#include <map>
#include <thread>

#include "core/runner.h"
#include "core/shutdown.h"
#include "core/wait.h"

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "redis"},
    {"command",
     OptionType::Choice,
     "set",
     "what each record does",
     {"set", "hset", "rpush", "lpush", "xadd", "sadd", "zadd"}},
    {"key", OptionType::String, "{_key}", "key template, e.g. user:{user_id}"},
    {"value", OptionType::String, "",
     "value template (default: the record's value; hset and xadd write its fields)"},
    {"score", OptionType::String, "", "zadd: score template, e.g. {ts}"},
    {"ttl", OptionType::Duration, "", "expire keys this long after each write"},
    {"delete_on_tombstone", OptionType::Boolean, "false", "a record without value deletes its key"},
    {"exactly_once", OptionType::Boolean, "false",
     "apply each batch, the Kafka offsets and its refused records in one Lua script"},
    {"offsets_key", OptionType::String, "kbridge:offsets",
     "exactly_once: hash <offsets_key>:<group> of next offsets"},
    {"url", OptionType::String, "", "redis://[user:password@]host:port/db (default: redis.url)"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting and on any wait for an answer (default: redis.connect_timeout, 10s)"},
    {"cluster", OptionType::Boolean, "",
     "the url names a node of a Redis Cluster (default: redis.cluster; implied by several "
     "nodes)"},
};

constexpr int kMaxAttempts = 10;

// exactly_once: applies a batch and its offsets in one step. KEYS[1] is the offsets hash, KEYS[2]
// the list of refused records. Per record, ARGV holds its partition field, offset, key and value
// (each "" or "=" + bytes) and its commands (count, then argc and arguments each); then the new
// next offsets as field/value pairs. Records below a stored offset were applied before and are
// skipped. A command Redis refuses is recorded in the hash KEYS[2] (field "topic/partition@offset",
// value: key and value as "-" or "<length>:<bytes>", then the error) in the same step as the
// offsets that pass it, so a crash before its dead letter is sent cannot lose it. Returns the
// refused records' indexes and errors.
const char* kApplyScript = R"lua(
local function token(bytes)
  if bytes == '' then return '-' end
  return tostring(#bytes - 1) .. ':' .. string.sub(bytes, 2)
end
local i, refused, stored = 2, {}, {}
for r = 1, tonumber(ARGV[1]) do
  local field, offset_text = ARGV[i], ARGV[i + 1]
  local offset = tonumber(offset_text)
  local key, value, commands = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  i = i + 5
  if stored[field] == nil then
    stored[field] = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
  end
  local skip, err = offset < stored[field], nil
  for c = 1, commands do
    local argc = tonumber(ARGV[i])
    if not skip and not err then
      local reply = redis.pcall(unpack(ARGV, i + 1, i + argc))
      if type(reply) == 'table' and reply.err then err = reply.err .. ' (' .. ARGV[i + 1] .. ')' end
    end
    i = i + 1 + argc
  end
  if err then
    redis.call('HSET', KEYS[2], field .. '@' .. offset_text, token(key) .. token(value) .. err)
    refused[#refused + 1] = r - 1
    refused[#refused + 1] = err
  end
end
while i < #ARGV do
  local field, next = ARGV[i], tonumber(ARGV[i + 1])
  if stored[field] == nil then
    stored[field] = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
  end
  if next > stored[field] then redis.call('HSET', KEYS[1], field, next) end
  i = i + 2
end
return refused
)lua";

std::string optional_bytes(const std::optional<std::string>& bytes) {
    return bytes ? "=" + *bytes : std::string();
}

// One "-" or "<length>:<bytes>" token of a refused record's entry; false if malformed.
bool take_token(std::string_view& text, std::optional<std::string_view>& out) {
    if (!text.empty() && text[0] == '-') {
        out.reset();
        text.remove_prefix(1);
        return true;
    }
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    size_t length = 0;
    for (size_t i = 0; i < colon; ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        length = length * 10 + static_cast<size_t>(text[i] - '0');
    }
    if (text.size() - colon - 1 < length) return false;
    out = text.substr(colon + 1, length);
    text.remove_prefix(colon + 1 + length);
    return true;
}

Template compile(const Options& options, const std::string& name) {
    try {
        return Template(options.str(name));
    } catch (const std::invalid_argument& e) {
        throw options.error(name, e.what());
    }
}

// A field's value as Redis stores it: strings as they are, anything else as JSON.
std::string field_text(json::Value value) {
    std::string text;
    value.append_text(text);
    return text;
}

std::string partition_field(const std::string& topic, int32_t partition) {
    return topic + "/" + std::to_string(partition);
}

}  // namespace

const OptionTable& redis_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_redis_sink(const Options& options, const ConnectorContext& ctx) {
    RedisSink::Settings s;
    s.url = redis_url_option(options, ctx.config.redis);
    s.timeout = connect_timeout_option(options, ctx.config.redis);
    const std::string command = options.str("command");
    using C = RedisSink::Command;
    s.command = command == "hset"    ? C::Hset
                : command == "rpush" ? C::Rpush
                : command == "lpush" ? C::Lpush
                : command == "xadd"  ? C::Xadd
                : command == "sadd"  ? C::Sadd
                : command == "zadd"  ? C::Zadd
                                     : C::Set;
    s.key = compile(options, "key");
    if (options.has("value")) {
        if (s.command == C::Hset || s.command == C::Xadd)
            throw options.error(
                "value",
                command +
                    " writes the record's fields; value is for set, rpush, lpush, sadd and zadd");
        s.value = compile(options, "value");
    }
    if (s.command == C::Zadd) {
        if (!options.has("score"))
            throw options.error("score", "zadd needs a score template, e.g. '{ts}'");
        s.score = compile(options, "score");
    } else if (options.has("score")) {
        throw options.error("score", "only zadd has a score");
    }
    if (options.has("ttl")) s.ttl = options.duration("ttl");
    s.delete_on_tombstone = options.boolean("delete_on_tombstone");
    s.exactly_once = options.boolean("exactly_once");
    if (s.exactly_once && s.url.cluster)
        throw options.error("exactly_once",
                            "needs one server: on a Redis Cluster the batch's keys, its offsets "
                            "and its refused records would span slots, which one script cannot");
    s.offsets_key = options.str("offsets_key");
    return std::make_unique<RedisSink>(std::move(s));
}

RedisSink::RedisSink(Settings settings)
    : settings_(std::move(settings)), client_(settings_.url, settings_.timeout) {}

bool RedisSink::needs_fields() const {
    return settings_.command == Command::Hset || settings_.command == Command::Xadd ||
           settings_.key.needs_fields() || (settings_.value && settings_.value->needs_fields()) ||
           (settings_.score && settings_.score->needs_fields());
}

void RedisSink::connect() {
    client_.connect();
}

void RedisSink::ensure_connected() {
    if (client_.connected()) return;
    spdlog::warn("redis sink {}: reconnecting to {}", settings_.key.text(), settings_.url.redacted);
    client_.connect();
}

bool RedisSink::build_commands(const Record& record, const json::Value* fields, Pending& out,
                               Rejection& why) {
    scratch_.clear();
    if (!settings_.key.render(record, fields, scratch_, error_)) {
        why = {"template", "key: " + error_};
        return false;
    }
    const std::string key = scratch_;
    if (!record.value) {
        if (settings_.delete_on_tombstone) out.commands.push_back({"DEL", key});
        return true;
    }
    auto render = [&](const std::optional<Template>& t, const char* what, std::string& text) {
        if (!t) {
            text.assign(record.value->data(), record.value->size());
            return true;
        }
        text.clear();
        if (t->render(record, fields, text, error_)) return true;
        why = {"template", std::string(what) + ": " + error_};
        return false;
    };
    const std::string ttl = std::to_string(settings_.ttl.count());
    std::string value;
    switch (settings_.command) {
        case Command::Hset:
        case Command::Xadd: {
            if (!fields || !fields->is_object() || fields->size() == 0) {
                why = {"not_object", "hset and xadd write the fields of a JSON object"};
                return false;
            }
            std::vector<std::string> command = settings_.command == Command::Hset
                                                   ? std::vector<std::string>{"HSET", key}
                                                   : std::vector<std::string>{"XADD", key, "*"};
            std::string scratch;
            for (const json::Member field : fields->children()) {
                command.emplace_back(field.key.string(scratch));
                command.push_back(field_text(field.value));
            }
            out.commands.push_back(std::move(command));
            break;
        }
        case Command::Set:
            if (!render(settings_.value, "value", value)) return false;
            if (settings_.ttl.count() > 0)
                out.commands.push_back({"SET", key, value, "PX", ttl});
            else
                out.commands.push_back({"SET", key, value});
            return true;
        case Command::Zadd: {
            std::string score;
            if (!render(settings_.score, "score", score) ||
                !render(settings_.value, "value", value))
                return false;
            out.commands.push_back({"ZADD", key, score, value});
            break;
        }
        default: {
            if (!render(settings_.value, "value", value)) return false;
            const char* name = settings_.command == Command::Rpush   ? "RPUSH"
                               : settings_.command == Command::Lpush ? "LPUSH"
                                                                     : "SADD";
            out.commands.push_back({name, key, value});
        }
    }
    if (settings_.ttl.count() > 0) out.commands.push_back({"PEXPIRE", key, ttl});
    return true;
}

bool RedisSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                     Rejection& why) {
    Pending p{batch, {}, record.topic, record.partition, record.offset, std::nullopt, std::nullopt};
    if (!build_commands(record, fields, p, why)) return false;
    if (p.commands.empty() && !settings_.exactly_once) {
        listener_->delivered(batch);  // a tombstone without delete_on_tombstone: nothing to do
        return true;
    }
    if (record.key) p.key.emplace(*record.key);
    if (record.value) p.value.emplace(*record.value);
    pending_.push_back(std::move(p));
    return true;
}

void RedisSink::poll(std::chrono::milliseconds) {
    if (settings_.exactly_once && !recovered_ && !dead_letter_refused_earlier()) return;
    flush();
}

void RedisSink::flush() {
    if (pending_.empty()) return;
    std::chrono::milliseconds backoff(100);
    std::vector<std::string> refused;
    for (int attempt = 1;; ++attempt) {
        refused.assign(pending_.size(), std::string());
        try {
            ensure_connected();
            if (settings_.exactly_once)
                apply(refused);
            else
                write(refused);
            break;
        } catch (const RedisError& e) {
            // A stopping run does not wait out an outage: what is not written stays in the
            // source, for the next run.
            if (client_.connected() || attempt >= kMaxAttempts || stop_requested().load()) {
                for (const auto& p : pending_) listener_->failed(p.batch, e.what());
                pending_.clear();
                return;
            }
            spdlog::warn("redis sink {}: {} (attempt {} of {}, retrying in {} ms)",
                         settings_.key.text(), e.what(), attempt, kMaxAttempts, backoff.count());
            sleep_unless_stopped(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
            retried_ += pending_.size();
        }
    }
    for (size_t i = 0; i < pending_.size(); ++i) {
        Pending& p = pending_[i];
        if (refused[i].empty()) {
            listener_->delivered(p.batch);
            continue;
        }
        Record original;
        if (p.key) original.key = *p.key;
        if (p.value) original.value = *p.value;
        original.topic = p.topic;
        original.partition = p.partition;
        original.offset = p.offset;
        listener_->rejected(p.batch, std::move(original), Rejection{"redis", refused[i]});
    }
    if (settings_.exactly_once) forget_refused(refused);
    pending_.clear();
}

// exactly_once: the records the script kept as refused are forgotten once the dead letter holds
// them; if it fails, they stay for the next run.
void RedisSink::forget_refused(const std::vector<std::string>& refused) {
    std::vector<std::string> hdel{"HDEL", refused_hash_};
    for (size_t i = 0; i < pending_.size(); ++i)
        if (!refused[i].empty())
            hdel.push_back(partition_field(pending_[i].topic, pending_[i].partition) + "@" +
                           std::to_string(pending_[i].offset));
    if (hdel.size() == 2 || !listener_->settle_dead_letters()) return;
    try {
        client_.command(hdel);
    } catch (const RedisError& e) {
        // Kept: the next run sends them to the dead letter again (twice there, never lost).
        spdlog::warn("redis sink {}: forgetting refused records: {}", settings_.key.text(),
                     e.what());
    }
}

// exactly_once, before the first batch: records an earlier run kept as refused, whose dead
// letters it may not have sent, go to the dead letter now. False (the batch failed) if they
// cannot.
bool RedisSink::dead_letter_refused_earlier() {
    std::string error;
    try {
        ensure_connected();
        RedisReply all = client_.command({"HGETALL", refused_hash_});
        std::vector<std::string> hdel{"HDEL", refused_hash_};
        for (size_t e = 0; e + 1 < all->elements; e += 2) {
            const std::string field(all->element[e]->str, all->element[e]->len);
            std::string_view entry(all->element[e + 1]->str, all->element[e + 1]->len);
            const size_t at = field.rfind('@'), slash = field.rfind('/', at);
            Record record;
            if (at == std::string::npos || slash == std::string::npos ||
                !take_token(entry, record.key) || !take_token(entry, record.value))
                throw RedisError("malformed entry '" + field + "' in " + refused_hash_);
            record.topic = field.substr(0, slash);
            record.partition = std::stoi(field.substr(slash + 1, at - slash - 1));
            record.offset = std::stoll(field.substr(at + 1));
            spdlog::warn("redis sink {}: {} was refused by an earlier run; dead-lettering it now",
                         settings_.key.text(), field);
            listener_->rejected_earlier(std::move(record), Rejection{"redis", std::string(entry)});
            hdel.push_back(field);
        }
        if (hdel.size() > 2) {
            if (!listener_->settle_dead_letters())
                error = "the dead letter failed to take records refused by an earlier run";
            else
                client_.command(hdel);
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (error.empty()) {
        recovered_ = true;
        return true;
    }
    for (const auto& p : pending_) listener_->failed(p.batch, error);
    pending_.clear();
    return false;
}

void RedisSink::apply(std::vector<std::string>& refused) {
    std::vector<std::string> args{"EVAL",        kApplyScript,  "2",
                                  offsets_hash_, refused_hash_, std::to_string(pending_.size())};
    std::map<std::string, int64_t> next;  // "topic/partition" -> next offset after this batch
    for (const auto& p : pending_) {
        std::string field = partition_field(p.topic, p.partition);
        int64_t& n = next[field];
        n = std::max(n, p.offset + 1);
        args.push_back(std::move(field));
        args.push_back(std::to_string(p.offset));
        args.push_back(optional_bytes(p.key));
        args.push_back(optional_bytes(p.value));
        args.push_back(std::to_string(p.commands.size()));
        for (const auto& c : p.commands) {
            args.push_back(std::to_string(c.size()));
            args.insert(args.end(), c.begin(), c.end());
        }
    }
    for (const auto& [field, offset] : next) {
        args.push_back(field);
        args.push_back(std::to_string(offset));
    }
    RedisReply reply = client_.command(args);
    for (size_t e = 0; e + 1 < reply->elements; e += 2) {
        const auto index = static_cast<size_t>(reply->element[e]->integer);
        if (index < refused.size())
            refused[index].assign(reply->element[e + 1]->str, reply->element[e + 1]->len);
    }
}

void RedisSink::write(std::vector<std::string>& refused) {
    for (const auto& p : pending_)
        for (const auto& c : p.commands) client_.send(c);
    for (size_t k = 0; k < pending_.size(); ++k)
        for (size_t c = 0; c < pending_[k].commands.size(); ++c) {
            RedisReply r = client_.any_reply();
            if (r->type == REDIS_REPLY_ERROR && refused[k].empty())
                refused[k] = std::string(r->str, r->len) + " (" + pending_[k].commands[c][0] + ")";
        }
}

std::vector<PartitionOffset> RedisSink::stored_offsets(
    const std::vector<PartitionOffset>& partitions) {
    ensure_connected();
    std::vector<std::string> hmget{"HMGET", offsets_hash_};
    for (const auto& p : partitions) hmget.push_back(partition_field(p.topic, p.partition));
    RedisReply stored = client_.command(hmget);
    std::vector<PartitionOffset> out;
    for (size_t i = 0; i < partitions.size(); ++i) {
        const redisReply* r = stored->element[i];
        out.push_back(
            {partitions[i].topic, partitions[i].partition,
             r->type == REDIS_REPLY_STRING ? std::stoll(std::string(r->str, r->len)) : -1});
    }
    return out;
}

}  // namespace kbridge
