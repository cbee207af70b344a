#include "connectors/kafka/sink.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "core/runner.h"
#include "formats/csv.h"

namespace kbridge {
namespace {

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "kafka"},
    {"topic", OptionType::String, "", "topic template, e.g. orders.{region}", {}, true},
    {"key", OptionType::String, "", "key template, e.g. {user_id}; default: the record's key"},
    {"headers", OptionType::StringMap, "", "header name -> template"},
    {"format", OptionType::Choice, "json", "how values are written", {"json", "raw", "csv"}},
    {"brokers", OptionType::String, "", "bootstrap servers (default: kafka.brokers)"},
    {"properties", OptionType::StringMap, "",
     "librdkafka producer properties (over kafka.properties)"},
    {"partition", OptionType::Integer, "-1",
     "write every record to this partition (-1: the partitioner's choice, by key)"},
    {"connect_timeout", OptionType::Duration, "10s",
     "how long a --once run waits for the brokers before failing (0: no check)"},
    {"exactly_once", OptionType::Boolean, "false",
     "produce in Kafka transactions, each committed with the source's position in "
     "offsets_topic, where a restart resumes (postgres_cdc sources; read with "
     "isolation.level=read_committed)"},
    {"offsets_topic", OptionType::String, "kbridge_offsets",
     "with exactly_once: the compacted topic of the committed positions"},
    {"transactional_id", OptionType::String, "",
     "with exactly_once: the producer's transactional.id and the key of its position, unique "
     "per pipeline (default: kbridge-<pipeline>)"},
    {"commit_interval", OptionType::Duration, "100ms",
     "with exactly_once: a transaction commits at the first end of a source transaction this "
     "long after it began"},
});

// Broker or client refusals that will never succeed for this record, whatever the retries.
bool is_record_rejection(rd_kafka_resp_err_t err) {
    switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
            return true;
        default:
            return false;
    }
}

Template compile(const Options& options, const std::string& name, const std::string& text) {
    try {
        return Template(text);
    } catch (const std::invalid_argument& e) {
        throw options.error(name, e.what());
    }
}

// Kafka's rules checked at validate: the whole name when the template is static, else the text
// outside its {fields} (a space there makes every rendering invalid).
void check_topic_template(const Options& options, const std::string& text) {
    std::string fixed;
    bool templated = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const bool doubled = i + 1 < text.size() && text[i + 1] == text[i];
        if ((text[i] == '{' || text[i] == '}') && doubled) {
            fixed += text[i++];
        } else if (text[i] == '{') {
            templated = true;
            i = text.find('}', i);  // the template compiled, so it is there
        } else {
            fixed += text[i];
        }
    }
    std::string why;
    if (!templated) {
        why = invalid_topic_reason(fixed);
    } else if (!fixed.empty()) {
        why = invalid_topic_reason(fixed);
        if (why.rfind("a topic name may only", 0) != 0) why.clear();  // a field may add to it
    }
    if (!why.empty()) throw options.error("topic", "'" + text + "': " + why);
}

KafkaTransactions::Settings transaction_settings(const Options& options,
                                                 const ConnectorContext& ctx,
                                                 const KafkaSettings& producer) {
    KafkaTransactions::Settings t;
    // The offsets reader is a consumer: it takes the file's properties (security), not the
    // producer's own.
    t.connection.brokers = producer.brokers;
    t.connection.properties = ctx.config.kafka.string_map("properties");
    t.offsets_topic = options.str("offsets_topic");
    if (const std::string why = invalid_topic_reason(t.offsets_topic); !why.empty())
        throw options.error("offsets_topic", why);
    t.transactional_id = options.has("transactional_id") ? options.str("transactional_id")
                                                         : "kbridge-" + ctx.pipeline;
    if (t.transactional_id.empty()) throw options.error("transactional_id", "may not be empty");
    t.commit_interval = options.duration("commit_interval");
    const auto timeout = producer.properties.find("transaction.timeout.ms");
    if (timeout != producer.properties.end()) {
        try {
            t.transaction_timeout = std::chrono::milliseconds(std::stoll(timeout->second));
        } catch (const std::exception&) {
            throw options.error("properties", "transaction.timeout.ms must be a number");
        }
    }
    if (options.has("partition") && options.integer("partition") != -1)
        throw options.error("partition", "exactly_once keeps the partitioner's choice");
    return t;
}

}  // namespace

const OptionTable& kafka_sink_options() {
    return kOptions;
}

KafkaSettings kafka_settings(const Options& options, const ConnectorContext& ctx) {
    KafkaSettings settings;
    settings.brokers =
        options.has("brokers") ? options.str("brokers") : ctx.config.kafka.str("brokers");
    if (settings.brokers == "embedded") settings.brokers = ctx.embedded_bootstraps;
    settings.properties = ctx.config.kafka.string_map("properties");
    for (auto& [name, value] : options.string_map("properties")) settings.properties[name] = value;
    return settings;
}

std::unique_ptr<Sink> make_kafka_sink(const Options& options, const ConnectorContext& ctx) {
    std::optional<Template> key;
    if (options.has("key")) key = compile(options, "key", options.str("key"));
    std::vector<std::pair<std::string, Template>> headers;
    for (const auto& [name, text] : options.string_map("headers"))
        headers.emplace_back(name, compile(options, "headers", text));
    Template topic = compile(options, "topic", options.str("topic"));
    check_topic_template(options, options.str("topic"));
    auto sink = std::make_unique<KafkaSink>(kafka_settings(options, ctx), std::move(topic),
                                            std::move(key), std::move(headers));
    CsvFormat csv;
    if (parse_format(options, csv) == Format::Csv) sink->write_csv(std::move(csv));
    sink->check_brokers_at_start(ctx.once, options.duration("connect_timeout"));
    const int64_t partition = options.integer("partition");
    if (partition < -1 || partition > INT32_MAX)
        throw options.error("partition", "must be a partition number, or -1");
    sink->set_partition(static_cast<int32_t>(partition));
    KafkaSettings settings = kafka_settings(options, ctx);
    try {
        make_kafka_conf(settings);
    } catch (const std::invalid_argument& e) {
        throw options.error("properties", e.what());
    }
    if (options.boolean("exactly_once"))
        sink->use_transactions(transaction_settings(options, ctx, settings), ctx.dry_run);
    return sink;
}

KafkaSink::KafkaSink(KafkaSettings settings, Template topic, std::optional<Template> key,
                     std::vector<std::pair<std::string, Template>> headers)
    : settings_(std::move(settings)),
      topic_(std::move(topic)),
      key_(std::move(key)),
      headers_(std::move(headers)) {
    // Never lose or reorder a record on retries unless the user says otherwise.
    settings_.properties.emplace("enable.idempotence", "true");
    settings_.properties.emplace("acks", "all");
}

KafkaSink::~KafkaSink() {
    listener_ = nullptr;  // reports after the run are of no one's concern; the source keeps them
    topics_.clear();
    if (producer_) rd_kafka_flush(producer_.get(), 5000);
}

void KafkaSink::connect() {
    // An exactly-once source asks for its position first, which connects.
    if (producer_ && reachable_) return;
    topics_.clear();
    producer_.reset();
    if (settings_.brokers.empty()) throw std::runtime_error("kafka sink: no brokers");
    KafkaConf conf = make_kafka_conf(settings_);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSink::on_delivery);
    rd_kafka_conf_set_opaque(conf.get(), this);
    char error[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error);
    if (!rk) throw std::runtime_error(std::string("kafka producer: ") + error);
    conf.release();  // rd_kafka_new took it
    producer_.reset(rk);
    now_ms_ = wall_clock_ms();
    if (transactions_ && !dry_run_ && !fail_fast_check_) {
        try {
            transactions_->start(rk, start_timeout());
        } catch (const KafkaUnreachable&) {
            // Follow mode tries again, as after any outage; the next producer fences this one.
            reachable_ = false;
            throw;
        }
        reachable_ = true;
        return;
    }
    // Without this a --once run against unreachable brokers would wait out message.timeout.ms
    // (5 minutes) before the first delivery report said so.
    if (connect_timeout_.count() == 0) return;
    const rd_kafka_metadata_t* metadata = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk, 0, nullptr, &metadata, static_cast<int>(connect_timeout_.count()));
    if (metadata) rd_kafka_metadata_destroy(metadata);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    const std::string what = "kafka brokers " + settings_.brokers + " unreachable for " +
                             std::to_string(connect_timeout_.count()) + " ms (" +
                             rd_kafka_err2str(err) + ")";
    if (fail_fast_) throw std::runtime_error(what);
    spdlog::warn("{}; librdkafka keeps trying", what);
}

void KafkaSink::check() {
    fail_fast_ = true;
    fail_fast_check_ = true;
    connect();
    if (transactions_) transactions_->read_position(start_timeout());
}

std::chrono::milliseconds KafkaSink::start_timeout() const {
    return connect_timeout_.count() > 0 ? connect_timeout_ : std::chrono::milliseconds(30000);
}

std::optional<Position> KafkaSink::restart_position() {
    connect();
    if (dry_run_) return transactions_->read_position(start_timeout());
    return transactions_->restart();
}

std::optional<Position> KafkaSink::peek_position() {
    return transactions_->read_position(start_timeout());
}

bool KafkaSink::settle_dead_letters() {
    return listener_ ? listener_->settle_dead_letters() : true;
}

void KafkaSink::finish(bool run_failed) {
    if (!transactions_ || dry_run_ || !producer_) return;
    transactions_->finish(run_failed, [this] { return settle_dead_letters(); });
}

rd_kafka_topic_t* KafkaSink::topic_handle(const std::string& name) {
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second.get();
    rd_kafka_topic_t* topic = rd_kafka_topic_new(producer_.get(), name.c_str(), nullptr);
    if (!topic)
        throw std::runtime_error("kafka topic '" + name +
                                 "': " + rd_kafka_err2str(rd_kafka_last_error()));
    topics_.emplace(name, KafkaTopic(topic));
    return topic;
}

bool KafkaSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                     Rejection& why) {
    topic_buffer_.clear();
    key_buffer_.clear();
    if (!topic_.render(record, fields, topic_buffer_, error_buffer_)) {
        why = {"template", "topic: " + error_buffer_};
        return false;
    }
    if (!topics_.count(topic_buffer_) && !valid_topic(topic_buffer_, why)) return false;
    std::optional<std::string_view> key = record.key;
    if (key_) {
        if (!key_->render(record, fields, key_buffer_, error_buffer_)) {
            why = {"template", "key: " + error_buffer_};
            return false;
        }
        key = key_buffer_;
    }
    rd_kafka_headers_t* headers = nullptr;
    if (!headers_.empty() || !record.headers.empty()) {
        headers = rd_kafka_headers_new(headers_.size() + record.headers.size());
        for (const auto& h : record.headers)
            rd_kafka_header_add(headers, h.name.data(), h.name.size(), h.value.data(),
                                h.value.size());
        for (const auto& [name, tmpl] : headers_) {
            header_buffer_.clear();
            if (!tmpl.render(record, fields, header_buffer_, error_buffer_)) {
                rd_kafka_headers_destroy(headers);
                why = {"template", "header " + name + ": " + error_buffer_};
                return false;
            }
            rd_kafka_header_add(headers, name.data(), name.size(), header_buffer_.data(),
                                header_buffer_.size());
        }
    }
    std::optional<std::string_view> out_value = record.value;
    if (csv_ && record.value) {
        if (!fields) {
            if (headers) rd_kafka_headers_destroy(headers);
            why = {"no_fields", "format csv writes fields, and a raw record has none"};
            return false;
        }
        value_buffer_.clear();
        csv_from_fields(*fields, *csv_, value_buffer_);
        out_value = value_buffer_;
    }
    rd_kafka_topic_t* topic = topic_handle(topic_buffer_);
    if (transactions_) transactions_->before_send();
    const void* value = out_value ? out_value->data() : nullptr;
    const size_t value_size = out_value ? out_value->size() : 0;
    const void* key_data = key ? key->data() : nullptr;
    const size_t key_size = key ? key->size() : 0;
    while (true) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_.get(), RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition_),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(const_cast<void*>(value), value_size),
            RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(batch),
            RD_KAFKA_V_TIMESTAMP(record.timestamp > 0 ? record.timestamp : now_ms_),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (transactions_) transactions_->sent();
            return true;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            // librdkafka's queue is our backpressure: serve reports until there is room.
            rd_kafka_poll(producer_.get(), 100);
            continue;
        }
        if (headers) rd_kafka_headers_destroy(headers);
        if (is_record_rejection(err)) {
            why = {"too_large", std::string("kafka: ") + rd_kafka_err2str(err)};
            return false;
        }
        throw std::runtime_error("kafka produce to '" + topic_buffer_ +
                                 "': " + rd_kafka_err2str(err));
    }
}

bool KafkaSink::preview(const Record& record, const json::Value* fields, std::string& out,
                        Rejection& why) {
    std::string topic, key;
    if (!topic_.render(record, fields, topic, error_buffer_)) {
        why = {"template", "topic: " + error_buffer_};
        return false;
    }
    if (!valid_topic(topic, why)) return false;
    if (key_ && !key_->render(record, fields, key, error_buffer_)) {
        why = {"template", "key: " + error_buffer_};
        return false;
    }
    if (!key_ && record.key) key = std::string(*record.key);
    out = "topic=" + topic + " key=" + (key_ || record.key ? key : std::string("(none)"));
    for (const auto& [name, tmpl] : headers_) {
        std::string value;
        if (!tmpl.render(record, fields, value, error_buffer_)) {
            why = {"template", "header " + name + ": " + error_buffer_};
            return false;
        }
        out += " header " + name + "=" + value;
    }
    std::string value = record.value ? std::string(*record.value) : std::string("(tombstone)");
    if (csv_ && record.value && fields) {
        value.clear();
        csv_from_fields(*fields, *csv_, value);
    }
    out += " value=" + value;
    return true;
}

bool KafkaSink::valid_topic(const std::string& topic, Rejection& why) {
    const std::string reason = invalid_topic_reason(topic);
    if (reason.empty()) return true;
    const std::string shown = topic.size() > 100 ? topic.substr(0, 100) + "..." : topic;
    why = {"invalid_topic",
           "topic template '" + topic_.text() + "' gave '" + shown + "': " + reason};
    return false;
}

std::optional<size_t> KafkaSink::max_value_bytes() const {
    const auto it = settings_.properties.find("message.max.bytes");
    if (it == settings_.properties.end()) return 1000000;  // librdkafka's default
    try {
        return static_cast<size_t>(std::stoull(it->second));
    } catch (const std::exception&) {
        return std::nullopt;  // make_kafka_conf() refuses it with a proper message
    }
}

bool KafkaSink::needs_fields() const {
    if (csv_ || topic_.needs_fields() || (key_ && key_->needs_fields())) return true;
    for (const auto& header : headers_)
        if (header.second.needs_fields()) return true;
    return false;
}

void KafkaSink::poll(std::chrono::milliseconds wait) {
    rd_kafka_poll(producer_.get(), static_cast<int>(wait.count()));
    now_ms_ = wall_clock_ms();
    if (transactions_ && !dry_run_) transactions_->poll([this] { return settle_dead_letters(); });
}

int64_t KafkaSink::wall_clock_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void KafkaSink::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    if (!self->listener_) return;
    auto* batch = static_cast<BatchState*>(message->_private);
    // A position record of exactly_once: its fate is the transaction's, which commit() learns.
    if (!batch) return;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        self->listener_->delivered(batch);
        return;
    }
    const std::string error = "kafka delivery to '" +
                              std::string(rd_kafka_topic_name(message->rkt)) +
                              "': " + rd_kafka_err2str(message->err);
    if (!is_record_rejection(message->err)) {
        self->listener_->failed(batch, error);
        return;
    }
    Record original;
    if (message->key)
        original.key.emplace(static_cast<const char*>(message->key), message->key_len);
    if (message->payload)
        original.value.emplace(static_cast<const char*>(message->payload), message->len);
    self->listener_->rejected(batch, std::move(original), Rejection{"rejected", error});
}

}  // namespace kbridge
