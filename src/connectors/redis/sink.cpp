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
     "apply each batch and the Kafka offsets in one MULTI/EXEC"},
    {"offsets_key", OptionType::String, "kbridge:offsets",
     "exactly_once: hash <offsets_key>:<group> of next offsets"},
    {"url", OptionType::String, "", "redis://[user:password@]host:port/db (default: redis.url)"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting and on any wait for an answer (default: redis.connect_timeout, 10s)"},
};

constexpr int kMaxAttempts = 10;

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
    const std::string url = options.has("url") ? options.str("url") : ctx.config.redis.str("url");
    try {
        s.url = parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
        if (options.has("url")) throw options.error("url", e.what());
        throw ctx.config.redis.error("url", e.what());
    }
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
            if (!write(refused)) continue;  // the offsets moved under our WATCH: read them again
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
    pending_.clear();
}

bool RedisSink::write(std::vector<std::string>& refused) {
    std::vector<bool> skip(pending_.size(), false);
    std::map<std::string, int64_t> next;  // "topic/partition" -> next offset after this batch
    if (settings_.exactly_once) {
        for (const auto& p : pending_) {
            int64_t& n = next[partition_field(p.topic, p.partition)];
            n = std::max(n, p.offset + 1);
        }
        client_.command({"WATCH", offsets_hash_});
        std::vector<std::string> hmget{"HMGET", offsets_hash_};
        for (const auto& [field, offset] : next) hmget.push_back(field);
        RedisReply stored = client_.command(hmget);
        std::map<std::string, int64_t> applied;
        size_t i = 0;
        for (const auto& entry : next) {
            const redisReply* r = stored->element[i++];
            if (r->type == REDIS_REPLY_STRING)
                applied[entry.first] = std::stoll(std::string(r->str, r->len));
        }
        for (size_t k = 0; k < pending_.size(); ++k) {
            auto it = applied.find(partition_field(pending_[k].topic, pending_[k].partition));
            skip[k] = it != applied.end() && pending_[k].offset < it->second;
        }
        client_.send({"MULTI"});
    }
    for (size_t k = 0; k < pending_.size(); ++k)
        if (!skip[k])
            for (const auto& c : pending_[k].commands) client_.send(c);
    if (!settings_.exactly_once) {
        for (size_t k = 0; k < pending_.size(); ++k)
            for (size_t c = 0; c < pending_[k].commands.size(); ++c) {
                RedisReply r = client_.any_reply();
                if (r->type == REDIS_REPLY_ERROR && refused[k].empty())
                    refused[k] =
                        std::string(r->str, r->len) + " (" + pending_[k].commands[c][0] + ")";
            }
        return true;
    }
    std::vector<std::string> hset{"HSET", offsets_hash_};
    for (const auto& [field, offset] : next) {
        hset.push_back(field);
        hset.push_back(std::to_string(offset));
    }
    client_.send(hset);
    client_.send({"EXEC"});
    client_.reply();  // MULTI
    size_t queued = 1;
    for (size_t k = 0; k < pending_.size(); ++k)
        if (!skip[k]) queued += pending_[k].commands.size();
    for (size_t q = 0; q < queued; ++q) client_.reply();  // QUEUED, or an error that aborts EXEC
    RedisReply exec = client_.reply();
    if (exec->type == REDIS_REPLY_NIL) return false;
    size_t at = 0;
    for (size_t k = 0; k < pending_.size(); ++k) {
        if (skip[k]) continue;
        for (size_t c = 0; c < pending_[k].commands.size(); ++c, ++at) {
            const redisReply* r = exec->element[at];
            if (r->type == REDIS_REPLY_ERROR && refused[k].empty())
                refused[k] = std::string(r->str, r->len) + " (" + pending_[k].commands[c][0] + ")";
        }
    }
    return true;
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
