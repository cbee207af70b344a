#include "connectors/kafka/source.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "connectors/kafka/sink.h"
#include "formats/csv.h"

namespace kbridge {
namespace {

using std::chrono::milliseconds;

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "kafka"},
    {"topics", OptionType::StringList, "", "topics to consume", {}, true},
    {"group", OptionType::String, "", "consumer group (default: kbridge.<pipeline>)"},
    {"start", OptionType::Choice, "earliest", "where a new group starts", {"earliest", "latest"}},
    {"join_group", OptionType::Boolean, "true",
     "false: read every partition without waiting for the group's rebalance (one process only)"},
    {"batch_size", OptionType::Integer, "5000", "records per batch at most"},
    {"batch_timeout", OptionType::Duration, "200ms", "how long a batch waits to fill"},
    {"format", OptionType::Choice, "json", "how values are decoded", {"json", "raw", "csv"}},
    {"brokers", OptionType::String, "", "bootstrap servers (default: kafka.brokers)"},
    {"properties", OptionType::StringMap, "",
     "librdkafka consumer properties (over kafka.properties)"},
    {"commit", OptionType::Boolean, "true",
     "false: read without a consumer group, assigning the partitions directly, and commit "
     "nothing (kcat -C)"},
    {"offset", OptionType::String, "beginning",
     "with commit: false, where each partition starts: beginning, end, -N (its last N records), "
     "@TIMESTAMP_MS (the first record at or after that time) or an offset"},
    {"partitions", OptionType::StringList, "", "with commit: false, only these partitions"},
    {"max_records", OptionType::Integer, "0", "end the run after this many records (0: no limit)"},
});

// A --once run that gets no partition: with nothing to read it ends after this; with records to
// read it waits a session timeout and this margin (a member that died holding partitions is then
// timed out and they come to this run), then ends only if the group's committed offsets move
// (live members are reading), and gives up (exit 1) after twice the session timeout.
constexpr auto kAssignmentWait = std::chrono::seconds(30);
constexpr auto kRebalanceMargin = std::chrono::seconds(10);
constexpr auto kProgressCheckInterval = std::chrono::seconds(5);
constexpr int64_t kDefaultSessionTimeoutMs = 45000;  // librdkafka's session.timeout.ms
constexpr auto kCommitInterval = std::chrono::seconds(1);
constexpr int kMetadataTimeoutMs = 10000;
// The queue ran dry: the fetchers may be waiting to look at it again (see wake_fetchers()).
constexpr auto kDryWakeInterval = std::chrono::milliseconds(10);

// Without a group there is no rebalance protocol (librdkafka says NULL).
bool cooperative(rd_kafka_t* rk) {
    const char* protocol = rd_kafka_rebalance_protocol(rk);
    return protocol && std::strcmp(protocol, "COOPERATIVE") == 0;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

std::string partition_names(const rd_kafka_topic_partition_list_t* list) {
    std::string out;
    for (int i = 0; i < list->cnt; ++i)
        out += (i ? " " : "") + std::string(list->elems[i].topic) + "[" +
               std::to_string(list->elems[i].partition) + "]";
    return out.empty() ? "none" : out;
}

}  // namespace

const OptionTable& kafka_source_options() {
    return kOptions;
}

bool parse_start_offset(const std::string& text, StartOffset& out, std::string& error) {
    auto number = [&](const std::string& digits, int64_t& value) {
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
            digits.size() > 18)
            return false;
        value = std::stoll(digits);
        return true;
    };
    out = StartOffset{};
    if (text == "beginning") return true;
    if (text == "end") {
        out.kind = StartOffset::Kind::End;
        return true;
    }
    const char first = text.empty() ? '\0' : text[0];
    const StartOffset::Kind kind = first == '-'   ? StartOffset::Kind::Last
                                   : first == '@' ? StartOffset::Kind::Time
                                                  : StartOffset::Kind::Offset;
    const std::string digits = kind == StartOffset::Kind::Offset ? text : text.substr(1);
    if (!number(digits, out.value)) {
        error = "'" + text +
                "' is not an offset: beginning, end, -N (the last N), @TIMESTAMP_MS or a number";
        return false;
    }
    out.kind = kind;
    return true;
}

std::unique_ptr<Source> make_kafka_source(const Options& options, const ConnectorContext& ctx) {
    KafkaSource::Settings s;
    s.kafka = kafka_settings(options, ctx);
    s.topics = options.string_list("topics");
    if (s.topics.empty()) throw options.error("topics", "name at least one topic");
    for (const auto& topic : s.topics) {
        if (topic.rfind('^', 0) == 0) continue;  // a regular expression librdkafka matches
        const std::string why = invalid_topic_reason(topic);
        if (!why.empty()) throw options.error("topics", "'" + topic + "': " + why);
    }
    s.group = options.has("group") ? options.str("group") : "kbridge." + ctx.pipeline;
    s.start = options.str("start");
    s.join_group = options.boolean("join_group");
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1 || batch_size > 1000000)
        throw options.error("batch_size", "must be between 1 and 1000000");
    s.batch_size = static_cast<size_t>(batch_size);
    s.batch_timeout = options.duration("batch_timeout");
    s.once = ctx.once;
    s.commit = options.boolean("commit");
    std::string error;
    if (!parse_start_offset(options.str("offset"), s.offset, error))
        throw options.error("offset", error);
    for (const auto& p : options.string_list("partitions")) {
        int64_t id = -1;
        try {
            id = std::stoll(p);
        } catch (const std::exception&) {
        }
        if (id < 0 || id > INT32_MAX || std::to_string(id) != p)
            throw options.error("partitions", "'" + p + "' is not a partition number");
        s.partitions.push_back(static_cast<int32_t>(id));
    }
    if (s.commit && (options.has("offset") || options.has("partitions")))
        throw options.error(options.has("offset") ? "offset" : "partitions",
                            "applies to reading without a group (commit: false); a group starts "
                            "where it committed, else at `start`");
    if (!s.commit && options.has("group"))
        throw options.error("group", "a group needs commit: true");
    if (!s.commit) s.join_group = false;
    const int64_t max_records = options.integer("max_records");
    if (max_records < 0) throw options.error("max_records", "must be 0 or more");
    s.max_records = static_cast<uint64_t>(max_records);
    CsvFormat csv;
    s.format = parse_format(options, csv);
    try {
        make_kafka_conf(s.kafka);
    } catch (const std::invalid_argument& e) {
        throw options.error("properties", e.what());
    }
    auto source = std::make_unique<KafkaSource>(std::move(s));
    source->set_csv(std::move(csv));
    return source;
}

KafkaSource::KafkaSource(Settings settings) : settings_(std::move(settings)) {
    // Offsets move only when a batch is durable downstream, by our own commits.
    settings_.kafka.properties["enable.auto.commit"] = "false";
    settings_.kafka.properties["enable.auto.offset.store"] = "false";
    // librdkafka's consumer assigns only with a group id; without commit: false's group this
    // one is never joined nor committed to.
    settings_.kafka.properties["group.id"] =
        settings_.commit ? settings_.group : "kbridge.no-commit." + std::to_string(::getpid());
    settings_.kafka.properties.emplace("auto.offset.reset", settings_.start);
    // A group consumer's partitions share one queue. Bound it by bytes only (librdkafka's
    // 100000 messages default is a few MB of small records). 8 MB, refilled as it drains (see
    // wake_fetchers), keeps a sink busy as well as 32 MB did, at ~100 MB peak RSS instead of
    // ~240 MB: every page of a larger queue is a page fault, paid in CPU the sink needs.
    settings_.kafka.properties.emplace("queued.min.messages", "1000000");
    settings_.kafka.properties.emplace("queued.max.messages.kbytes", "8192");
    if (settings_.once) settings_.kafka.properties["enable.partition.eof"] = "true";
    // A quarter of the queue: it is refilled long before it runs dry. librdkafka itself rejects
    // a queue size that is not a number.
    const unsigned long long queue_kbytes = std::strtoull(
        settings_.kafka.properties["queued.max.messages.kbytes"].c_str(), nullptr, 10);
    wake_every_ = std::max<size_t>(queue_kbytes * 1024 / 4, 256 << 10);
}

KafkaSource::~KafkaSource() {
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
}

std::string KafkaSource::describe() const {
    std::string topics;
    for (const auto& t : settings_.topics) topics += (topics.empty() ? "" : ",") + t;
    return "kafka:" + topics;
}

bool KafkaSource::use_offset_store(OffsetStore* store) {
    store_ = store;
    store_->bind_group(settings_.group);
    return true;
}

void KafkaSource::connect() {
    if (settings_.kafka.brokers.empty()) throw std::runtime_error("kafka source: no brokers");
    KafkaConf conf = make_kafka_conf(settings_.kafka);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSource::on_rebalance);
    rd_kafka_conf_set_opaque(conf.get(), this);
    char error[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error);
    if (!rk) throw std::runtime_error(std::string("kafka consumer: ") + error);
    conf.release();
    consumer_.reset(rk);
    rd_kafka_poll_set_consumer(rk);
    connected_ = last_commit_ = std::chrono::steady_clock::now();
    if (settings_.once || !settings_.join_group) read_watermarks();
    if (!settings_.join_group) {
        // At the first read, as a group's assignment would come: an exactly-once sink must be
        // connected to say where each partition starts.
        assign_at_first_read_ = true;
        return;
    }
    KafkaPartitionList topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(settings_.topics.size())));
    for (const auto& t : settings_.topics)
        rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get());
    if (err)
        throw std::runtime_error("kafka subscribe to " + describe() + ": " + rd_kafka_err2str(err));
}

// Without a rebalance to wait for (3 s on brokers with the default
// group.initial.rebalance.delay.ms); each partition starts at the group's committed offset, or at
// `start`, or where an exactly-once sink stored it.
void KafkaSource::assign_every_partition() {
    KafkaPartitionList all(
        rd_kafka_topic_partition_list_new(static_cast<int>(end_at_start_.size())));
    for (const auto& [tp, high] : end_at_start_) {
        const auto& only = settings_.partitions;
        if (only.empty() || std::find(only.begin(), only.end(), tp.second) != only.end())
            rd_kafka_topic_partition_list_add(all.get(), tp.first.c_str(), tp.second);
    }
    if (!settings_.commit) set_start_offsets(all.get());
    assign(all.get());
    if (!settings_.once || settings_.commit) return;
    // A partition that starts at (or past) its end has nothing for this run.
    for (int i = 0; i < all->cnt; ++i) {
        const auto& p = all->elems[i];
        auto a = assigned_.find({p.topic, p.partition});
        if (a != assigned_.end() && p.offset >= a->second.end) a->second.done = true;
    }
}

// Without a group: each partition's start from `offset`, resolved against the watermarks read
// at connect (so -e ends where the start was computed), or the brokers' offsets for a time.
void KafkaSource::set_start_offsets(rd_kafka_topic_partition_list_t* partitions) {
    const StartOffset& start = settings_.offset;
    if (start.kind == StartOffset::Kind::Time) {
        for (int i = 0; i < partitions->cnt; ++i) partitions->elems[i].offset = start.value;
        const rd_kafka_resp_err_t err =
            rd_kafka_offsets_for_times(consumer_.get(), partitions, kMetadataTimeoutMs);
        if (err)
            throw std::runtime_error("kafka source " + describe() + ": offsets for time " +
                                     std::to_string(start.value) + ": " + rd_kafka_err2str(err));
    }
    for (int i = 0; i < partitions->cnt; ++i) {
        auto& p = partitions->elems[i];
        const TopicPartition tp{p.topic, p.partition};
        const int64_t low = low_at_start_[tp], high = end_at_start_[tp];
        spdlog::debug("kafka source {}: {}[{}] from {} (watermarks {}..{})", describe(), p.topic,
                      p.partition, p.offset, low, high);
        switch (start.kind) {
            case StartOffset::Kind::Beginning:
                p.offset = low;
                break;
            case StartOffset::Kind::End:
                p.offset = high;
                break;
            case StartOffset::Kind::Last:
                p.offset = std::max(low, high - start.value);
                break;
            case StartOffset::Kind::Time:
                if (p.err) {
                    throw std::runtime_error("kafka source " + describe() +
                                             ": offsets for time: " + rd_kafka_err2str(p.err));
                }
                // Nothing at or after that time: the end. A logical answer means what it says.
                if (p.offset == RD_KAFKA_OFFSET_BEGINNING)
                    p.offset = low;
                else if (p.offset < 0)
                    p.offset = high;
                break;
            case StartOffset::Kind::Offset:
                p.offset = start.value;
                break;
        }
    }
}

void KafkaSource::check() {
    if (settings_.kafka.brokers.empty()) throw std::runtime_error("kafka source: no brokers");
    KafkaConf conf = make_kafka_conf(settings_.kafka);
    char error[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error);
    if (!rk) throw std::runtime_error(std::string("kafka consumer: ") + error);
    conf.release();
    consumer_.reset(rk);
    read_watermarks();
    consumer_.reset();
}

std::vector<KafkaSource::PartitionState> KafkaSource::partition_states() {
    check();  // the watermarks of every partition, or an error naming what is missing
    KafkaConf conf = make_kafka_conf(settings_.kafka);
    char error[512];
    KafkaHandle consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error));
    if (!consumer) throw std::runtime_error(std::string("kafka consumer: ") + error);
    conf.release();
    KafkaPartitionList committed(
        rd_kafka_topic_partition_list_new(static_cast<int>(end_at_start_.size())));
    for (const auto& [tp, high] : end_at_start_)
        rd_kafka_topic_partition_list_add(committed.get(), tp.first.c_str(), tp.second);
    if (const rd_kafka_resp_err_t err =
            rd_kafka_committed(consumer.get(), committed.get(), kMetadataTimeoutMs))
        throw std::runtime_error("kafka group " + settings_.group +
                                 ": committed offsets: " + rd_kafka_err2str(err));
    std::vector<PartitionState> out;
    for (int i = 0; i < committed->cnt; ++i) {
        const auto& p = committed->elems[i];
        const TopicPartition tp{p.topic, p.partition};
        out.push_back(
            {p.topic, p.partition, low_at_start_[tp], end_at_start_[tp], p.err ? -1 : p.offset});
    }
    return out;
}

// --once ends at the high watermarks of its start; the backlog (for progress) is what lies
// between them and the group's committed offsets.
void KafkaSource::read_watermarks() {
    rd_kafka_t* rk = consumer_.get();
    KafkaPartitionList all(rd_kafka_topic_partition_list_new(16));
    for (const auto& name : settings_.topics) {
        KafkaTopic topic(rd_kafka_topic_new(rk, name.c_str(), nullptr));
        const rd_kafka_metadata_t* metadata = nullptr;
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk, 0, topic.get(), &metadata, kMetadataTimeoutMs);
        if (err)
            throw std::runtime_error("kafka " + settings_.kafka.brokers + ": metadata of topic '" +
                                     name + "': " + rd_kafka_err2str(err));
        std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> owned(
            metadata, rd_kafka_metadata_destroy);
        if (metadata->topic_cnt != 1 || metadata->topics[0].err ||
            metadata->topics[0].partition_cnt == 0)
            throw std::runtime_error(
                "kafka topic '" + name + "' does not exist (" +
                rd_kafka_err2str(metadata->topic_cnt ? metadata->topics[0].err
                                                     : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) +
                ")");
        for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) {
            const int32_t id = metadata->topics[0].partitions[p].id;
            int64_t low = 0, high = 0;
            err = rd_kafka_query_watermark_offsets(rk, name.c_str(), id, &low, &high,
                                                   kMetadataTimeoutMs);
            if (err)
                throw std::runtime_error("kafka topic '" + name + "' partition " +
                                         std::to_string(id) +
                                         ": watermarks: " + rd_kafka_err2str(err));
            end_at_start_[{name, id}] = high;
            low_at_start_[{name, id}] = low;
            rd_kafka_topic_partition_list_add(all.get(), name.c_str(), id)->offset = low;
        }
    }
    for (const int32_t wanted : settings_.partitions) {
        const bool known = std::any_of(end_at_start_.begin(), end_at_start_.end(),
                                       [&](const auto& e) { return e.first.second == wanted; });
        if (!known)
            throw std::runtime_error("kafka source " + describe() + ": no partition " +
                                     std::to_string(wanted));
    }
    if (!settings_.once || !settings_.commit) return;
    // The group's committed offsets; without one a new group starts at `start`.
    KafkaPartitionList committed(rd_kafka_topic_partition_list_copy(all.get()));
    if (rd_kafka_committed(rk, committed.get(), kMetadataTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    uint64_t backlog = 0;
    for (int i = 0; i < all->cnt; ++i) {
        const auto& p = committed->elems[i];
        committed_at_start_[{p.topic, p.partition}] = p.offset;
        const int64_t high = end_at_start_[{p.topic, p.partition}];
        int64_t from = p.offset >= 0
                           ? p.offset
                           : (settings_.start == "earliest" ? all->elems[i].offset : high);
        if (high > from) backlog += static_cast<uint64_t>(high - from);
    }
    backlog_ = backlog;
}

void KafkaSource::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    try {
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            self->assign(partitions);
        } else {
            self->revoke(partitions);
        }
    } catch (const std::exception& e) {
        // Thrown through librdkafka's C frames it would be lost: read() rethrows it.
        self->rebalance_error_ = e.what();
        const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        if (cooperative) {
            rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, partitions);
            if (error) rd_kafka_error_destroy(error);
        } else {
            rd_kafka_assign(rk, nullptr);
        }
    }
}

void KafkaSource::assign(rd_kafka_topic_partition_list_t* partitions) {
    ++generation_;
    if (store_ && partitions->cnt > 0) {
        std::vector<PartitionOffset> wanted;
        for (int i = 0; i < partitions->cnt; ++i)
            wanted.push_back({partitions->elems[i].topic, partitions->elems[i].partition, -1});
        for (const auto& stored : store_->stored_offsets(wanted)) {
            if (stored.next_offset < 0) continue;
            rd_kafka_topic_partition_t* p = rd_kafka_topic_partition_list_find(
                partitions, stored.topic.c_str(), stored.partition);
            if (p) p->offset = stored.next_offset;
        }
    }
    for (int i = 0; i < partitions->cnt; ++i) {
        const TopicPartition tp{partitions->elems[i].topic, partitions->elems[i].partition};
        Assigned a;
        if (settings_.once) {
            auto end = end_at_start_.find(tp);
            // A partition added since the start holds nothing this run must wait for.
            a.end = end == end_at_start_.end() ? 0 : end->second;
        }
        assigned_[tp] = a;
    }
    spdlog::info("kafka source {} (group {}{}): assigned {}{}", describe(), settings_.group,
                 settings_.join_group ? "" : ", not joined", partition_names(partitions),
                 store_ ? " at the offsets stored with the sink's data" : "");
    rd_kafka_t* rk = consumer_.get();
    if (cooperative(rk)) {
        rd_kafka_error_t* error = rd_kafka_incremental_assign(rk, partitions);
        if (error) {
            const std::string message = rd_kafka_error_string(error);
            rd_kafka_error_destroy(error);
            throw std::runtime_error("kafka assign: " + message);
        }
    } else if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, partitions)) {
        throw std::runtime_error(std::string("kafka assign: ") + rd_kafka_err2str(err));
    }
}

void KafkaSource::revoke(rd_kafka_topic_partition_list_t* partitions) {
    rd_kafka_t* rk = consumer_.get();
    // What is durable for these partitions is committed while they are still ours; a lost
    // assignment (session timed out) may already belong to someone else: commit nothing.
    if (!rd_kafka_assignment_lost(rk)) {
        try {
            commit(true);
        } catch (const std::exception& e) {
            spdlog::warn("kafka source {}: commit before giving up partitions: {}", describe(),
                         e.what());
        }
    }
    ++generation_;  // acks of batches read before now commit nothing
    for (int i = 0; i < partitions->cnt; ++i) {
        const TopicPartition tp{partitions->elems[i].topic, partitions->elems[i].partition};
        assigned_.erase(tp);
        acked_.erase(tp);
    }
    spdlog::info("kafka source {} (group {}): revoked {}", describe(), settings_.group,
                 partition_names(partitions));
    if (cooperative(rk)) {
        rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, partitions);
        if (error) rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(rk, nullptr);
    }
}

void KafkaSource::commit(bool synchronous) {
    if (!settings_.commit) acked_.clear();
    if (acked_.empty() || !consumer_) return;
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(acked_.size())));
    for (const auto& [tp, next] : acked_)
        rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = next;
    acked_.clear();
    last_commit_ = std::chrono::steady_clock::now();
    // From outside the group a refused commit must stop the run, not pass unseen: the broker
    // refuses them while the group has members, which would then read the same partitions.
    const bool wait = synchronous || (!settings_.join_group && !store_);
    const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), wait ? 0 : 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        const bool outsider =
            !settings_.join_group && (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                                      err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
        throw std::runtime_error(
            "kafka commit of group " + settings_.group + " (" + partition_names(list.get()) +
            "): " + rd_kafka_err2str(err) +
            (outsider ? " (with join_group: false the group must have no members: other "
                        "consumers in it read the same partitions; give this pipeline a group "
                        "of its own)"
                      : ""));
    }
}

void KafkaSource::check_fatal() {
    char reason[512];
    if (rd_kafka_fatal_error(consumer_.get(), reason, sizeof reason))
        throw std::runtime_error("kafka consumer fatal error: " + std::string(reason));
    if (!rebalance_error_.empty()) throw std::runtime_error(rebalance_error_);
}

bool KafkaSource::all_done() const {
    if (assigned_.empty()) return false;
    return std::all_of(assigned_.begin(), assigned_.end(),
                       [](const auto& a) { return a.second.done; });
}

// Messages not yet read in the assigned partitions: the high watermarks the fetches brought
// back against the read positions, both known locally.
std::optional<uint64_t> KafkaSource::lag() {
    if (assigned_.empty()) return std::nullopt;
    KafkaPartitionList positions(
        rd_kafka_topic_partition_list_new(static_cast<int>(assigned_.size())));
    for (const auto& [tp, a] : assigned_)
        rd_kafka_topic_partition_list_add(positions.get(), tp.first.c_str(), tp.second);
    if (rd_kafka_position(consumer_.get(), positions.get())) return std::nullopt;
    uint64_t lag = 0;
    for (int i = 0; i < positions->cnt; ++i) {
        const auto& p = positions->elems[i];
        int64_t low = -1, high = -1;
        if (rd_kafka_get_watermark_offsets(consumer_.get(), p.topic, p.partition, &low, &high) ||
            high < 0)
            return std::nullopt;  // no fetch answered yet
        const int64_t from = p.offset >= 0 ? p.offset : std::max<int64_t>(low, 0);
        if (high > from) lag += static_cast<uint64_t>(high - from);
    }
    return lag;
}

ReadStatus KafkaSource::read(Batch& batch, milliseconds wait) {
    check_fatal();
    if (assign_at_first_read_) {
        assign_at_first_read_ = false;
        assign_every_partition();
    }
    if (settings_.max_records && handed_out_ >= settings_.max_records) return ReadStatus::End;
    const auto now = std::chrono::steady_clock::now();
    if (!acked_.empty() && now - last_commit_ >= kCommitInterval) commit(false);
    if (settings_.once) {
        if (all_done()) return ReadStatus::End;
        if (assigned_.empty() && now - connected_ > kAssignmentWait && nothing_to_do(now))
            return ReadStatus::End;
    }
    // One message at a time, so that a rebalance (served inside the poll) falls between two
    // messages: what was collected before it is fetched again from the new assignment's
    // offsets, so it is dropped rather than handed out stale.
    uint64_t generation = generation_;
    std::vector<rd_kafka_message_t*> kept;
    size_t bytes = 0;
    bool ran_dry = false;
    std::map<TopicPartition, int64_t> next_offsets;  // of what was kept
    // Messages come in runs of one partition: its state is looked up once per run.
    const rd_kafka_topic_t* run_topic = nullptr;
    int32_t run_partition = -1;
    Assigned* run = nullptr;
    int64_t* run_next = nullptr;
    const auto deadline = now + std::min(wait, settings_.batch_timeout);
    const size_t limit = settings_.max_records
                             ? static_cast<size_t>(std::min<uint64_t>(
                                   settings_.batch_size, settings_.max_records - handed_out_))
                             : settings_.batch_size;
    while (kept.size() < limit) {
        // The clock is read only when there is a deadline to wait for.
        const int timeout_ms = wait.count() > 0 ? remaining_ms(deadline) : 0;
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), timeout_ms);
        if (generation != generation_) {
            for (auto* k : kept) rd_kafka_message_destroy(k);
            kept.clear();
            next_offsets.clear();
            bytes = 0;
            generation = generation_;
            run_topic = nullptr;
        }
        if (!m) {
            if (timeout_ms > 0) continue;
            ran_dry = true;
            break;
        }
        const bool partition_message = !m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (partition_message && (m->rkt != run_topic || m->partition != run_partition)) {
            auto a = assigned_.find({rd_kafka_topic_name(m->rkt), m->partition});
            run = a == assigned_.end() ? nullptr : &a->second;
            run_next = nullptr;
            run_topic = m->rkt;
            run_partition = m->partition;
        }
        bool keep = false, now_done = false;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            now_done = run != nullptr;
        } else if (m->err) {
            const std::string what = rd_kafka_message_errstr(m);
            if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                rd_kafka_message_destroy(m);
                for (auto* k : kept) rd_kafka_message_destroy(k);
                throw std::runtime_error("kafka source " + describe() + ": " + what);
            }
            spdlog::warn("kafka source {}: {}", describe(), what);
        } else if (run) {
            keep = !settings_.once || m->offset < run->end;
            now_done = settings_.once && m->offset + 1 >= run->end;
        }
        if (keep) {
            if (!run_next) run_next = &next_offsets[{rd_kafka_topic_name(m->rkt), m->partition}];
            *run_next = std::max(*run_next, m->offset + 1);
            kept.push_back(m);
            bytes += m->len + m->key_len;
        } else {
            rd_kafka_message_destroy(m);
        }
        if (now_done && !run->done) {
            run->done = true;
            if (settings_.once && all_done()) break;
        }
    }
    check_fatal();
    read_since_wake_ += bytes;
    if (read_since_wake_ >= wake_every_ ||
        (ran_dry && read_since_wake_ > 0 && now - last_wake_ >= kDryWakeInterval))
        wake_fetchers(now);
    if (kept.empty()) return settings_.once && all_done() ? ReadStatus::End : ReadStatus::Idle;

    handed_out_ += kept.size();
    batch.storage.reserve(bytes);
    for (auto* m : kept) {
        batch.storage.insert(batch.storage.end(), static_cast<const char*>(m->payload),
                             static_cast<const char*>(m->payload) + (m->payload ? m->len : 0));
    }
    const size_t values_end = batch.storage.size();
    for (auto* m : kept)
        if (m->key)
            batch.storage.insert(batch.storage.end(), static_cast<const char*>(m->key),
                                 static_cast<const char*>(m->key) + m->key_len);
    const char* base = batch.storage.data();
    size_t value_at = 0, key_at = values_end;
    batch.records.reserve(kept.size());
    // Where each record stood, for acknowledging only the records before one a run stopped at.
    std::vector<TopicPartition> partitions;
    std::vector<std::pair<uint32_t, int64_t>> places;  // partition index, offset
    places.reserve(kept.size());
    const rd_kafka_topic_t* place_topic = nullptr;
    int32_t place_partition = -1;
    for (auto* m : kept) {
        if (m->rkt != place_topic || m->partition != place_partition) {
            place_topic = m->rkt;
            place_partition = m->partition;
            const TopicPartition tp{rd_kafka_topic_name(m->rkt), m->partition};
            auto it = std::find(partitions.begin(), partitions.end(), tp);
            if (it == partitions.end()) it = partitions.insert(partitions.end(), tp);
            places.push_back({static_cast<uint32_t>(it - partitions.begin()), m->offset});
        } else {
            places.push_back({places.back().first, m->offset});
        }
        Record r;
        if (m->payload) r.value.emplace(base + value_at, m->len);
        value_at += m->payload ? m->len : 0;
        if (m->key) {
            r.key.emplace(base + key_at, m->key_len);
            key_at += m->key_len;
        }
        r.topic = rd_kafka_topic_name(m->rkt);
        r.partition = m->partition;
        r.offset = m->offset;
        rd_kafka_timestamp_type_t type;
        r.timestamp = rd_kafka_message_timestamp(m, &type);
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char* name;
            const void* value;
            size_t size;
            for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                               RD_KAFKA_RESP_ERR_NO_ERROR;
                 ++i)
                r.headers.push_back({name, value
                                               ? std::string(static_cast<const char*>(value), size)
                                               : std::string()});
        }
        batch.records.push_back(std::move(r));
        rd_kafka_message_destroy(m);
    }
    batch.ack = [this, generation, next_offsets = std::move(next_offsets),
                 partitions = std::move(partitions), places = std::move(places)](size_t count) {
        if (generation != generation_)
            return;  // read before a rebalance: the new owner reads it again
        auto acknowledge = [this](const TopicPartition& tp, int64_t next) {
            if (!assigned_.count(tp)) return;
            int64_t& acked = acked_[tp];
            acked = std::max(acked, next);
        };
        if (count == places.size()) {
            for (const auto& [tp, next] : next_offsets) acknowledge(tp, next);
            return;
        }
        for (size_t i = 0; i < count; ++i)
            acknowledge(partitions[places[i].first], places[i].second + 1);
    };
    return ReadStatus::Records;
}

std::chrono::milliseconds KafkaSource::session_timeout() const {
    const auto it = settings_.kafka.properties.find("session.timeout.ms");
    return milliseconds(it == settings_.kafka.properties.end()
                            ? kDefaultSessionTimeoutMs
                            : std::strtoll(it->second.c_str(), nullptr, 10));
}

// --once, no partition assigned yet. A member killed without leaving the group (-9, OOM) holds
// its partitions until the broker times its session out: a run started right after the crash
// must wait for them rather than report success with the backlog unread. True: end the run.
bool KafkaSource::nothing_to_do(std::chrono::steady_clock::time_point now) {
    auto seconds = [](auto d) {
        return std::chrono::duration_cast<std::chrono::seconds>(d).count();
    };
    const auto waited = now - connected_;
    if (backlog_ && *backlog_ == 0) {
        spdlog::info(
            "kafka source {}: group {} assigned no partition to this run in {} s and has "
            "no record to read; nothing to do",
            describe(), settings_.group, seconds(waited));
        return true;
    }
    if (waited < session_timeout() + kRebalanceMargin || now < next_progress_check_) return false;
    next_progress_check_ = now + kProgressCheckInterval;
    if (!backlog_ || group_committed_since_start()) {
        spdlog::warn(
            "kafka source {}: group {} assigned no partition to this run in {} s, longer "
            "than its session timeout: the group's other live members hold them all{}; "
            "nothing to do",
            describe(), settings_.group, seconds(waited),
            backlog_ ? " and are reading them (its committed offsets moved)" : "");
        return true;
    }
    if (waited < 2 * session_timeout() + kRebalanceMargin) return false;
    throw std::runtime_error(
        "kafka source " + describe() + ": group " + settings_.group + " has " +
        std::to_string(*backlog_) + " records to read, but assigned no partition to this run in " +
        std::to_string(seconds(waited)) +
        " s, over twice its session timeout, and its committed offsets have not moved since: "
        "the members holding the partitions are not reading them");
}

// Whether any partition's committed offset moved past where it was at the start of the run.
bool KafkaSource::group_committed_since_start() {
    KafkaPartitionList list(
        rd_kafka_topic_partition_list_new(static_cast<int>(committed_at_start_.size())));
    for (const auto& [tp, offset] : committed_at_start_)
        rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second);
    if (rd_kafka_committed(consumer_.get(), list.get(), kMetadataTimeoutMs)) return false;
    for (int i = 0; i < list->cnt; ++i) {
        const auto& p = list->elems[i];
        if (p.offset >= 0 && p.offset > committed_at_start_[{p.topic, p.partition}]) return true;
    }
    return false;
}

// librdkafka (before 2.1's fetch.queue.backoff.ms) stops fetching while its queue is over
// queued.max.messages.kbytes and looks again only when a broker thread wakes, at most a second
// later: with a sink faster than that, every refill of the queue cost up to a second of idling.
// Any request wakes the thread of the broker it goes to, so ask each of our partitions' leaders
// for an offset without waiting for the answer (librdkafka drops answers that come too late).
void KafkaSource::wake_fetchers(std::chrono::steady_clock::time_point now) {
    read_since_wake_ = 0;
    last_wake_ = now;
    if (assigned_.empty()) return;
    KafkaPartitionList partitions(
        rd_kafka_topic_partition_list_new(static_cast<int>(assigned_.size())));
    for (const auto& [tp, a] : assigned_)
        rd_kafka_topic_partition_list_add(partitions.get(), tp.first.c_str(), tp.second)->offset =
            RD_KAFKA_OFFSET_END;
    rd_kafka_offsets_for_times(consumer_.get(), partitions.get(), 0);
}

void KafkaSource::close() {
    if (!consumer_) return;
    std::string refused;
    try {
        commit(true);
    } catch (const std::exception& e) {
        // Everything read was delivered; only the group's bookmark is behind (e.g. a rebalance
        // as members leave together), so the next run reads some records again. From outside
        // the group that would repeat on every run: fail instead, unless the sink keeps offsets.
        if (!settings_.join_group && !store_)
            refused = e.what();
        else
            spdlog::warn("kafka source {}: {}; the next run reads those records again{}",
                         describe(), e.what(),
                         store_ ? " (the sink's stored offsets skip them)" : "");
    }
    const rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    if (err)
        spdlog::warn("kafka source {}: leaving group {}: {}", describe(), settings_.group,
                     rd_kafka_err2str(err));
    if (!refused.empty())
        throw std::runtime_error(refused + "; the next run reads those records again");
}

}  // namespace kbridge
