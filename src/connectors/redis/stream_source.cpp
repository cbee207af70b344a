#include "connectors/redis/stream_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "connectors/postgres/row_json.h"
#include "core/wait.h"
#include "formats/csv.h"

namespace kbridge {
namespace {

using std::chrono::milliseconds;

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "redis_stream"},
    {"streams", OptionType::StringList, "", "the streams to read, e.g. [orders]", {}, true},
    {"group", OptionType::String, "kbridge",
     "the consumer group; created (with the stream, MKSTREAM) if missing"},
    {"start",
     OptionType::Choice,
     "0",
     "where a new group starts: 0 (the whole stream) or $ (new entries only)",
     {"0", "$"}},
    {"consumer", OptionType::String, "",
     "this worker's name in the group (default: the pipeline name); one per parallel worker"},
    {"batch_size", OptionType::Integer, "1000", "entries read per stream and request (COUNT)"},
    {"claim_idle", OptionType::Duration, "60s",
     "take over (XAUTOCLAIM) entries pending this long with another consumer"},
    {"max_deliveries", OptionType::Integer, "5",
     "an entry delivered more often goes to the dead letter (max_deliveries); 0: no limit"},
    {"value", OptionType::String, "fields",
     "fields: the entry's fields as a JSON object; or the name of the one field that holds the "
     "payload"},
    {"delete_after_ack", OptionType::Boolean, "false",
     "XDEL each entry after XACK, for streams used as queues"},
    {"format", OptionType::Choice, "json", "how values are decoded", {"json", "raw", "csv"}},
    {"url", OptionType::String, "", "redis://[user:password@]host:port/db (default: redis.url)"},
    {"connect_timeout", OptionType::Duration, "",
     "bound on connecting and on any wait for an answer (default: redis.connect_timeout, 10s)"},
    {"cluster", OptionType::Boolean, "",
     "the url names a node of a Redis Cluster (default: redis.cluster; implied by several "
     "nodes)"},
});

constexpr milliseconds kInfoEvery(1000);

std::string text_of(const redisReply* r) {
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return std::string(r->str, r->len);
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return "";
}

bool is_array(const redisReply* r) {
    return r && r->type == REDIS_REPLY_ARRAY;
}

void append_bytes(std::vector<char>& out, std::string_view text) {
    out.insert(out.end(), text.begin(), text.end());
}

}  // namespace

bool parse_stream_id(std::string_view text, StreamId& out) {
    const size_t dash = text.find('-');
    auto number = [](std::string_view digits, uint64_t& n) {
        if (digits.empty() || digits.size() > 20) return false;
        n = 0;
        for (const char c : digits) {
            if (c < '0' || c > '9') return false;
            n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        return true;
    };
    if (dash == std::string_view::npos) {
        out.seq = 0;
        return number(text, out.ms);
    }
    return number(text.substr(0, dash), out.ms) && number(text.substr(dash + 1), out.seq);
}

const OptionTable& redis_stream_options() {
    return kOptions;
}

std::unique_ptr<Source> make_redis_stream_source(const Options& options,
                                                 const ConnectorContext& ctx) {
    RedisStreamSource::Settings s;
    s.url = redis_url_option(options, ctx.config.redis);
    s.timeout = connect_timeout_option(options, ctx.config.redis);
    s.streams = options.string_list("streams");
    if (s.streams.empty()) throw options.error("streams", "names no stream");
    for (size_t i = 0; i < s.streams.size(); ++i) {
        if (s.streams[i].empty()) throw options.error("streams", "a stream name is empty");
        if (std::find(s.streams.begin(), s.streams.begin() + i, s.streams[i]) !=
            s.streams.begin() + i)
            throw options.error("streams", "names '" + s.streams[i] + "' twice");
    }
    if (s.url.cluster)
        for (const auto& name : s.streams)
            if (cluster_slot(name) != cluster_slot(s.streams[0]))
                throw options.error("streams",
                                    "on a Redis Cluster one source reads streams of one slot: "
                                    "give them a common hash tag ({orders}.eu, {orders}.us) or "
                                    "use a pipeline per stream");
    s.group = options.str("group");
    if (s.group.empty()) throw options.error("group", "must not be empty");
    s.start = options.str("start");
    s.consumer = options.has("consumer") ? options.str("consumer") : ctx.pipeline;
    if (s.consumer.empty()) throw options.error("consumer", "must not be empty");
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1 || batch_size > 100000)
        throw options.error("batch_size", "must be between 1 and 100000");
    s.batch_size = static_cast<size_t>(batch_size);
    s.claim_idle = options.duration("claim_idle");
    if (s.claim_idle.count() < 1) throw options.error("claim_idle", "must be at least 1ms");
    s.max_deliveries = options.integer("max_deliveries");
    if (s.max_deliveries < 0) throw options.error("max_deliveries", "must be 0 (no limit) or more");
    const std::string value = options.str("value");
    if (value.empty()) throw options.error("value", "must be 'fields' or a field name");
    if (value != "fields") s.value_field = value;
    s.delete_after_ack = options.boolean("delete_after_ack");
    CsvFormat csv;
    s.format = parse_format(options, csv);
    if (s.value_field.empty() && s.format == Format::Csv)
        throw options.error("format",
                            "value: fields makes a JSON object of each entry; csv needs value: "
                            "<field> naming the field that holds a CSV line");
    s.once = ctx.once;
    s.preview = ctx.dry_run;
    auto source = std::make_unique<RedisStreamSource>(std::move(s));
    source->set_csv(std::move(csv));
    return source;
}

RedisStreamSource::RedisStreamSource(Settings settings)
    : settings_(std::move(settings)), client_(settings_.url, settings_.timeout) {
    for (const auto& name : settings_.streams) {
        streams_.emplace_back();
        streams_.back().name = name;
    }
    client_.route(settings_.streams[0]);
}

std::string RedisStreamSource::describe() const {
    std::string names;
    for (const auto& s : settings_.streams) names += (names.empty() ? "" : ",") + s;
    return "redis_stream:" + names;
}

size_t RedisStreamSource::stream_index(std::string_view name) const {
    for (size_t i = 0; i < streams_.size(); ++i)
        if (streams_[i].name == name) return i;
    throw RedisError("redis " + settings_.url.redacted + ": a reply names stream '" +
                     std::string(name) + "', which was not asked for");
}

void RedisStreamSource::drain_replies() {
    while (client_.replies_pending()) client_.reply();
}

void RedisStreamSource::check() {
    client_.connect();
    for (const auto& s : streams_) {
        const std::string type = text_of(client_.command({"TYPE", s.name}).get());
        if (type != "stream" && type != "none")
            throw RedisError("redis " + settings_.url.redacted + ": key " + s.name + " is a " +
                             type + ", not a stream");
    }
}

void RedisStreamSource::connect() {
    // Also after an outage: what was handed out and not acknowledged is pending again.
    client_.connect();
    own_pending_done_ = settings_.preview;
    next_claim_ = std::chrono::steady_clock::now();
    reading_new_ = false;
    handed_out_.clear();
    for (auto& s : streams_) {
        s.own_cursor = "0";
        s.own_done = false;
        s.claim_cursor = "0-0";
        s.in_flight = 0;
        if (settings_.preview) continue;
        // BUSYGROUP, the usual answer, says the group exists already.
        drain_replies();
        client_.send({"XGROUP", "CREATE", s.name, settings_.group, settings_.start, "MKSTREAM"});
        const RedisReply created = client_.any_reply();
        if (created->type == REDIS_REPLY_ERROR &&
            std::string_view(created->str, created->len).rfind("BUSYGROUP", 0) != 0)
            throw RedisError("redis " + settings_.url.redacted + ": creating group " +
                             settings_.group + " of stream " + s.name + ": " +
                             std::string(created->str, created->len));
    }
    if (settings_.once && !settings_.preview) {
        for (auto& s : streams_) {
            if (s.end || s.ended) continue;  // set by the first connect: the run's end stays
            const RedisReply last = client_.command({"XREVRANGE", s.name, "+", "-", "COUNT", "1"});
            StreamId id;
            if (is_array(last.get()) && last->elements == 1 &&
                parse_stream_id(text_of(last->element[0]->element[0]), id))
                s.end = id;
            else
                s.ended = true;  // empty at start: only pending entries are left to read
        }
    }
}

ReadStatus RedisStreamSource::read(Batch& batch, milliseconds wait) {
    if (settings_.preview) {
        if (previewed_) return ReadStatus::End;
        previewed_ = true;
        std::vector<RedisReply> replies;
        entries_.clear();
        fields_.clear();
        for (size_t i = 0; i < streams_.size(); ++i) {
            replies.push_back(client_.command({"XRANGE", streams_[i].name, "-", "+", "COUNT",
                                               std::to_string(settings_.batch_size)}));
            collect_entries(i, replies.back().get());
        }
        fill(batch);
        return batch.records.empty() ? ReadStatus::End : ReadStatus::Records;
    }
    if (reading_new_) {
        // Read ahead while the last batch was dispatched.
        const ReadStatus status = receive_new(batch);
        if (status != ReadStatus::Idle) return read_ahead_after(status);
    }
    if (std::chrono::steady_clock::now() - info_at_ >= kInfoEvery) refresh_group_info();
    if (!own_pending_done_) {
        const ReadStatus status = read_own_pending(batch);
        if (status == ReadStatus::Records) return status;
    }
    if (std::chrono::steady_clock::now() >= next_claim_ && claim(batch)) return ReadStatus::Records;
    // BLOCK 0 would wait for ever: without a wait the read does not block at all. A stop request
    // cuts the wait short (the client's waits watch for it).
    const bool block = !settings_.once && wait.count() > 0;
    if (!send_read_new(block ? wait : milliseconds(0))) return ReadStatus::End;
    return read_ahead_after(receive_new(batch));
}

ReadStatus RedisStreamSource::read_ahead_after(ReadStatus status) {
    if (status != ReadStatus::Records || !last_read_full_) return status;
    // What needs the connection to itself goes first: the group's numbers, a due claim.
    if (std::chrono::steady_clock::now() - info_at_ >= kInfoEvery) refresh_group_info();
    if (std::chrono::steady_clock::now() >= next_claim_) return status;
    send_read_new(milliseconds(0));
    return status;
}

// After a crash (or a lost connection) this consumer's pending entries were handed out and never
// acknowledged: they go first, read again from the start of its pending list.
ReadStatus RedisStreamSource::read_own_pending(Batch& batch) {
    while (batch.records.empty()) {
        std::vector<std::string> args{"XREADGROUP",    "GROUP",
                                      settings_.group, settings_.consumer,
                                      "COUNT",         std::to_string(settings_.batch_size),
                                      "STREAMS"};
        std::vector<size_t> asked;
        for (size_t i = 0; i < streams_.size(); ++i)
            if (!streams_[i].own_done) {
                asked.push_back(i);
                args.push_back(streams_[i].name);
            }
        if (asked.empty()) {
            own_pending_done_ = true;
            return ReadStatus::Idle;
        }
        for (const size_t i : asked) args.push_back(streams_[i].own_cursor);
        drain_replies();
        client_.send(args);
        reply_storage_.clear();
        reply_items_.clear();
        client_.reply_items(reply_storage_, reply_items_);
        std::vector<size_t> per_stream(streams_.size(), 0);
        collect_items(&per_stream);
        for (const size_t i : asked)
            if (per_stream[i] == 0) streams_[i].own_done = true;
        for (const auto& e : entries_) streams_[e.stream].own_cursor = std::string(e.id);
        if (entries_.empty()) continue;
        spdlog::info("{}: sending again {} entries pending with consumer {} since an earlier run",
                     describe(), entries_.size(), settings_.consumer);
        count_deliveries();
        fill(batch);
    }
    return ReadStatus::Records;
}

// Entries pending with other consumers (a worker that died) for longer than claim_idle become
// this consumer's. Ours still in flight may be idle that long too (a slow sink): they are not
// handed out twice.
bool RedisStreamSource::claim(Batch& batch) {
    std::vector<RedisReply> replies;
    entries_.clear();
    fields_.clear();
    bool more = false;
    for (size_t i = 0; i < streams_.size(); ++i) {
        Stream& s = streams_[i];
        replies.push_back(
            client_.command({"XAUTOCLAIM", s.name, settings_.group, settings_.consumer,
                             std::to_string(settings_.claim_idle.count()), s.claim_cursor, "COUNT",
                             std::to_string(settings_.batch_size)}));
        const redisReply* reply = replies.back().get();
        if (!is_array(reply) || reply->elements < 2 || !is_array(reply->element[1]))
            throw RedisError("redis " + settings_.url.redacted + ": XAUTOCLAIM of " + s.name +
                             " answered something else than [cursor, entries]");
        s.claim_cursor = text_of(reply->element[0]);
        more |= s.claim_cursor != "0-0";
        std::unordered_set<std::string_view> ours;
        if (reply->element[1]->elements > 0)
            for (const auto& [number, out] : handed_out_)
                for (size_t e = 0; e < out.stream.size(); ++e)
                    if (out.stream[e] == i) ours.insert(out.id(e));
        collect_entries(i, reply->element[1], &ours);
    }
    // A cursor not back at 0-0 means more to scan: on the next read, not after a pause.
    const milliseconds pause =
        std::clamp(settings_.claim_idle / 2, milliseconds(100), milliseconds(30000));
    next_claim_ = std::chrono::steady_clock::now() + (more ? milliseconds(0) : pause);
    if (entries_.empty()) return false;
    claimed_ += entries_.size();
    spdlog::info("{}: consumer {} took over {} entries pending elsewhere for over {}", describe(),
                 settings_.consumer, entries_.size(), duration_text(settings_.claim_idle));
    count_deliveries();
    fill(batch);
    return !batch.records.empty();
}

bool RedisStreamSource::send_read_new(milliseconds block) {
    std::vector<std::string> args{"XREADGROUP",    "GROUP",
                                  settings_.group, settings_.consumer,
                                  "COUNT",         std::to_string(settings_.batch_size)};
    if (block.count() > 0) {
        args.push_back("BLOCK");
        args.push_back(std::to_string(block.count()));
    }
    args.push_back("STREAMS");
    asked_.clear();
    for (size_t i = 0; i < streams_.size(); ++i)
        if (!streams_[i].ended) {
            asked_.push_back(i);
            args.push_back(streams_[i].name);
        }
    if (asked_.empty()) return false;
    args.insert(args.end(), asked_.size(), ">");
    replies_before_read_ = client_.replies_pending();
    client_.send(args);
    reading_new_ = true;
    read_blocks_ = block;
    return true;
}

ReadStatus RedisStreamSource::receive_new(Batch& batch) {
    reading_new_ = false;
    // Pipelined acknowledgements sent before the read answer first.
    for (; replies_before_read_ > 0; --replies_before_read_) client_.reply();
    reply_storage_.clear();
    reply_items_.clear();
    try {
        client_.reply_items(reply_storage_, reply_items_, read_blocks_);
    } catch (const RedisError& e) {
        // A blocked read whose stream went away under it (deleted, or migrated to another
        // Cluster node): nothing was read; the next read finds the stream where it is now.
        if (std::string(e.what()).find("UNBLOCKED") == std::string::npos) throw;
        return ReadStatus::Idle;
    }
    std::vector<size_t> per_stream(streams_.size(), 0);
    collect_items(&per_stream);
    last_read_full_ = false;
    for (const size_t i : asked_)
        if (per_stream[i] >= settings_.batch_size) last_read_full_ = true;
    if (settings_.once) {
        // --once ends each stream at the last entry it had at the start (or when it runs dry).
        for (const size_t i : asked_)
            if (per_stream[i] == 0) streams_[i].ended = true;
        for (const auto& e : entries_) {
            StreamId id;
            Stream& s = streams_[e.stream];
            if (s.end && parse_stream_id(e.id, id) && !(id < *s.end)) s.ended = true;
        }
    }
    fill(batch);
    if (!batch.records.empty()) return ReadStatus::Records;
    if (!settings_.once) return ReadStatus::Idle;
    for (const auto& s : streams_)
        if (!s.ended) return ReadStatus::Idle;
    return ReadStatus::End;
}

// A stop came while a read ahead was under way: its entries are this consumer's now, pending
// and never sent. They stay so (the next run sends them first), their delivery count set back
// as if never read, so that stopping never brings an entry nearer max_deliveries.
void RedisStreamSource::give_back_read_ahead() {
    if (!reading_new_) return;
    reading_new_ = false;
    for (; replies_before_read_ > 0; --replies_before_read_) client_.reply();
    reply_storage_.clear();
    reply_items_.clear();
    client_.reply_items(reply_storage_, reply_items_, read_blocks_);
    collect_items(nullptr);
    if (entries_.empty()) return;
    for (size_t i = 0; i < streams_.size(); ++i) {
        std::vector<std::string_view> args{"XCLAIM", streams_[i].name, settings_.group,
                                           settings_.consumer, "0"};
        for (const auto& e : entries_)
            if (e.stream == i) args.push_back(e.id);
        if (args.size() == 5) continue;
        args.insert(args.end(), {"RETRYCOUNT", "0", "JUSTID"});
        client_.send_views(args);
    }
    drain_replies();
    spdlog::info(
        "{}: {} entries read ahead and not sent stay pending with consumer {}; the next "
        "run sends them first",
        describe(), entries_.size(), settings_.consumer);
}

void RedisStreamSource::collect_items(std::vector<size_t>* per_stream) {
    entries_.clear();
    fields_.clear();
    const auto& items = reply_items_;
    if (items.empty() || items[0].type == REDIS_REPLY_NIL) return;  // nothing within BLOCK
    const auto bad = [&] {
        return RedisError("redis " + settings_.url.redacted +
                          ": XREADGROUP answered something else than [[stream, [[id, fields], "
                          "...]], ...]");
    };
    const auto is = [&](size_t at, int type, int depth) {
        return at < items.size() && items[at].type == type && items[at].depth == depth;
    };
    const auto text = [&](size_t at) {
        return std::string_view(reply_storage_.data() + items[at].offset,
                                static_cast<size_t>(items[at].n));
    };
    if (!is(0, REDIS_REPLY_ARRAY, 0)) throw bad();
    size_t at = 1;
    for (long long s = 0; s < items[0].n; ++s) {
        // [stream, [[id, fields], ...]]
        if (!is(at, REDIS_REPLY_ARRAY, 1) || items[at].n != 2 ||
            !is(at + 1, REDIS_REPLY_STRING, 2) || !is(at + 2, REDIS_REPLY_ARRAY, 2))
            throw bad();
        const size_t index = stream_index(text(at + 1));
        const long long count = items[at + 2].n;
        at += 3;
        for (long long e = 0; e < count; ++e) {
            // [id, [name, value, ...]], the fields nil when the entry was deleted while pending
            if (!is(at, REDIS_REPLY_ARRAY, 3) || items[at].n != 2 ||
                !is(at + 1, REDIS_REPLY_STRING, 4))
                throw bad();
            Entry entry{index, text(at + 1)};
            at += 2;
            if (is(at, REDIS_REPLY_NIL, 4)) {
                entry.deleted = true;
                ++at;
            } else {
                if (!is(at, REDIS_REPLY_ARRAY, 4)) throw bad();
                entry.first_field = fields_.size();
                entry.field_count = static_cast<size_t>(items[at].n);
                ++at;
                for (size_t f = 0; f < entry.field_count; ++f, ++at) {
                    if (!is(at, REDIS_REPLY_STRING, 5)) throw bad();
                    fields_.push_back(text(at));
                }
            }
            entries_.push_back(entry);
        }
        if (per_stream) (*per_stream)[index] += static_cast<size_t>(count);
    }
}

void RedisStreamSource::collect_entries(size_t stream, const redisReply* entries,
                                        const std::unordered_set<std::string_view>* skip) {
    for (size_t e = 0; is_array(entries) && e < entries->elements; ++e) {
        const redisReply* entry = entries->element[e];
        if (!is_array(entry) || entry->elements < 2 ||
            entry->element[0]->type != REDIS_REPLY_STRING)
            continue;
        Entry out{stream, std::string_view(entry->element[0]->str, entry->element[0]->len)};
        if (skip && skip->count(out.id)) continue;
        const redisReply* fields = entry->element[1];
        if (!is_array(fields)) {
            out.deleted = true;
        } else {
            out.first_field = fields_.size();
            out.field_count = fields->elements;
            for (size_t f = 0; f < fields->elements; ++f)
                fields_.emplace_back(fields->element[f]->str, fields->element[f]->len);
        }
        entries_.push_back(out);
    }
}

void RedisStreamSource::count_deliveries() {
    if (settings_.max_deliveries == 0 || entries_.empty()) return;
    // Per stream, the range of IDs the entries span; what else of this consumer's it holds is in
    // flight, so the count covers the whole range.
    std::map<size_t, std::pair<std::string, size_t>> first_and_count;
    std::map<size_t, std::string> last;
    for (const auto& e : entries_) {
        auto& f = first_and_count[e.stream];
        if (f.first.empty()) f.first = std::string(e.id);
        ++f.second;
        last[e.stream] = std::string(e.id);
    }
    drain_replies();
    for (const auto& [stream, f] : first_and_count)
        client_.send({"XPENDING", streams_[stream].name, settings_.group, f.first, last[stream],
                      std::to_string(f.second + streams_[stream].in_flight), settings_.consumer});
    std::map<std::pair<size_t, std::string>, int64_t> deliveries;
    for (const auto& [stream, f] : first_and_count) {
        const RedisReply reply = client_.reply();
        for (size_t i = 0; is_array(reply.get()) && i < reply->elements; ++i) {
            const redisReply* row = reply->element[i];
            if (is_array(row) && row->elements >= 4)
                deliveries[{stream, text_of(row->element[0])}] = row->element[3]->integer;
        }
    }
    for (auto& e : entries_) {
        const auto found = deliveries.find({e.stream, std::string(e.id)});
        if (found != deliveries.end()) e.deliveries = found->second;
    }
}

void RedisStreamSource::fill(Batch& batch) {
    struct Place {
        size_t offset, size;
    };
    std::vector<Place> places;
    std::vector<std::vector<std::string_view>> deleted(streams_.size());
    HandedOut out;
    places.reserve(entries_.size());
    out.stream.reserve(entries_.size());
    out.id_end.reserve(entries_.size());
    batch.records.reserve(batch.records.size() + entries_.size());
    // Batches are alike: room for the last one's bytes spares growing the buffer record by record.
    batch.storage.reserve(storage_hint_);
    for (const auto& e : entries_) {
        Stream& s = streams_[e.stream];
        if (e.deleted) {  // deleted from the stream while pending: nothing to send
            deleted[e.stream].push_back(e.id);
            continue;
        }
        const size_t offset = batch.storage.size();
        const std::string_view* fields = fields_.data() + e.first_field;
        std::optional<Rejection> refusal;
        const std::string_view* payload = nullptr;
        if (!settings_.value_field.empty()) {
            for (size_t f = 0; f + 1 < e.field_count; f += 2)
                if (fields[f] == settings_.value_field) payload = &fields[f + 1];
            if (!payload)
                refusal = Rejection{"missing_field", "entry " + std::string(e.id) + " of stream " +
                                                         s.name + " has no field '" +
                                                         settings_.value_field + "'"};
        }
        if (payload) {
            append_bytes(batch.storage, *payload);
        } else {
            // The whole entry: also what the dead letter gets when the payload field is missing.
            batch.storage.push_back('{');
            for (size_t f = 0; f + 1 < e.field_count; f += 2) {
                if (f) batch.storage.push_back(',');
                append_json_string(fields[f], batch.storage);
                batch.storage.push_back(':');
                append_json_string(fields[f + 1], batch.storage);
            }
            batch.storage.push_back('}');
        }
        if (settings_.max_deliveries > 0 && e.deliveries > settings_.max_deliveries)
            refusal =
                Rejection{"max_deliveries", "entry " + std::string(e.id) + " of stream " + s.name +
                                                " was delivered " + std::to_string(e.deliveries) +
                                                " times (max_deliveries " +
                                                std::to_string(settings_.max_deliveries) + ")"};
        if (refusal) batch.refused.emplace_back(batch.records.size(), std::move(*refusal));
        places.push_back({offset, batch.storage.size() - offset});
        Record record;
        record.headers.reserve(2);
        record.headers.push_back({"kbridge.redis.stream", s.name});
        record.headers.push_back({"kbridge.redis.id", std::string(e.id)});
        batch.records.push_back(std::move(record));
        ++s.in_flight;
        out.stream.push_back(e.stream);
        out.ids.append(e.id);
        out.id_end.push_back(out.ids.size());
    }
    storage_hint_ = std::max(storage_hint_, batch.storage.size());
    for (size_t i = 0; i < places.size(); ++i)
        batch.records[batch.records.size() - places.size() + i].value.emplace(
            batch.storage.data() + places[i].offset, places[i].size);
    for (size_t i = 0; i < deleted.size(); ++i) {
        if (deleted[i].empty()) continue;
        std::vector<std::string_view> args{"XACK", streams_[i].name, settings_.group};
        args.insert(args.end(), deleted[i].begin(), deleted[i].end());
        client_.send_views(args);  // its reply is checked with the next command's
    }
    if (out.stream.empty() || settings_.preview) return;  // a dry run acknowledges nothing
    const uint64_t number = next_batch_++;
    handed_out_.emplace(number, std::move(out));
    batch.ack = [this, number](size_t count) { acknowledge(number, count); };
}

void RedisStreamSource::acknowledge(uint64_t number, size_t count) {
    const auto found = handed_out_.find(number);
    if (found == handed_out_.end()) return;  // handed out before a reconnect: pending again
    const HandedOut& out = found->second;
    const size_t n = std::min(count, out.stream.size());
    std::vector<std::string_view> args;
    args.reserve(n + 3);
    for (size_t i = 0; i < streams_.size(); ++i) {
        args.assign({"XACK", streams_[i].name, settings_.group});
        for (size_t e = 0; e < n; ++e)
            if (out.stream[e] == i) args.push_back(out.id(e));
        const size_t acked = args.size() - 3;
        if (acked == 0) continue;
        // Pipelined: the replies are checked with the next command's, or at close().
        client_.send_views(args);
        streams_[i].in_flight -= std::min(streams_[i].in_flight, acked);
        if (!settings_.delete_after_ack) continue;
        args.erase(args.begin() + 1, args.begin() + 3);
        args[0] = "XDEL";
        args.insert(args.begin() + 1, streams_[i].name);
        client_.send_views(args);
    }
    handed_out_.erase(found);
}

// XINFO GROUPS: the group's pending entries and (Redis 7) its lag, summed over the streams.
void RedisStreamSource::refresh_group_info() {
    if (reading_new_) return;  // a read's reply comes first; the next read refreshes
    info_at_ = std::chrono::steady_clock::now();
    uint64_t pending = 0, lag = 0;
    bool lag_known = true;
    for (const auto& s : streams_) {
        const RedisReply groups = client_.command({"XINFO", "GROUPS", s.name});
        for (size_t g = 0; is_array(groups.get()) && g < groups->elements; ++g) {
            const redisReply* info = groups->element[g];
            std::map<std::string, const redisReply*> fields;
            for (size_t f = 0; is_array(info) && f + 1 < info->elements; f += 2)
                fields[text_of(info->element[f])] = info->element[f + 1];
            if (!fields.count("name") || text_of(fields["name"]) != settings_.group) continue;
            if (fields.count("pending")) pending += fields["pending"]->integer;
            if (fields.count("lag") && fields["lag"]->type == REDIS_REPLY_INTEGER)
                lag += fields["lag"]->integer;
            else
                lag_known = false;  // Redis < 7, or a lag Redis cannot tell (after XDEL)
        }
    }
    pending_ = pending;
    lag_ = lag_known ? std::optional<uint64_t>(lag) : std::nullopt;
}

std::optional<uint64_t> RedisStreamSource::backlog() {
    if (settings_.preview) return std::nullopt;
    refresh_group_info();
    if (!lag_) return std::nullopt;
    return *lag_ + pending_.value_or(0);
}

std::optional<uint64_t> RedisStreamSource::lag() {
    return lag_;
}

std::optional<uint64_t> RedisStreamSource::pending() {
    return pending_;
}

void RedisStreamSource::close() {
    give_back_read_ahead();
    drain_replies();
}

}  // namespace kbridge
