#include "connectors/kafka/transactions.h"

#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

namespace kbridge {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

struct TransactionFailure {
    std::string message;
    bool retriable = false;
    bool requires_abort = false;
};

// Takes librdkafka's error object (freeing it); none when the call succeeded.
std::optional<TransactionFailure> take(rd_kafka_error_t* error) {
    if (!error) return std::nullopt;
    TransactionFailure failure{rd_kafka_error_string(error),
                               rd_kafka_error_is_retriable(error) != 0,
                               rd_kafka_error_txn_requires_abort(error) != 0};
    rd_kafka_error_destroy(error);
    return failure;
}

int timeout_ms(milliseconds timeout) {
    return static_cast<int>(std::min<int64_t>(timeout.count(), INT32_MAX));
}

struct MetadataDeleter {
    void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
using Metadata = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

// The partition count of `topic`, 0 when the cluster does not have it. Asks for every topic: a
// request naming it could create it, with the broker's defaults rather than compacted.
int partitions_of(rd_kafka_t* rk, const std::string& topic, milliseconds timeout) {
    const rd_kafka_metadata_t* raw = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &raw, timeout_ms(timeout));
    Metadata metadata(raw);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        throw KafkaUnreachable("kafka offsets topic " + topic +
                               ": metadata: " + rd_kafka_err2str(err));
    if (err)
        throw std::runtime_error("kafka offsets topic " + topic +
                                 ": metadata: " + rd_kafka_err2str(err));
    for (int i = 0; i < metadata->topic_cnt; ++i)
        if (metadata->topics[i].topic == topic && !metadata->topics[i].err)
            return metadata->topics[i].partition_cnt;
    return 0;
}

}  // namespace

void KafkaTransactions::start(rd_kafka_t* producer, milliseconds timeout) {
    producer_ = producer;
    open_ = false;
    sent_since_advance_ = false;
    pending_.reset();
    if (auto failure = take(rd_kafka_init_transactions(producer, timeout_ms(timeout)))) {
        const std::string what = "kafka transactions of '" + settings_.transactional_id +
                                 "' cannot start: " + failure->message;
        if (failure->retriable) throw KafkaUnreachable(what);
        throw std::runtime_error(what);
    }
    ensure_offsets_topic(timeout);
    committed_ = read_position(timeout);
    if (committed_)
        spdlog::info("kafka: {} resumes at the position committed in {}",
                     settings_.transactional_id, settings_.offsets_topic);
}

void KafkaTransactions::ensure_offsets_topic(milliseconds timeout) {
    if (partitions_of(producer_, settings_.offsets_topic, timeout) > 0) return;
    char error[512];
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(settings_.offsets_topic.c_str(), 1, -1, error, sizeof error);
    if (!topic) throw std::runtime_error("kafka offsets topic: " + std::string(error));
    std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> owned(
        topic, rd_kafka_NewTopic_destroy);
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    KafkaQueue queue(rd_kafka_queue_new(producer_));
    std::unique_ptr<rd_kafka_AdminOptions_t, void (*)(rd_kafka_AdminOptions_t*)> options(
        rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_CREATETOPICS),
        rd_kafka_AdminOptions_destroy);
    rd_kafka_AdminOptions_set_request_timeout(options.get(), 3000, error, sizeof error);
    rd_kafka_CreateTopics(producer_, &topic, 1, options.get(), queue.get());
    std::unique_ptr<rd_kafka_event_t, void (*)(rd_kafka_event_t*)> event(
        rd_kafka_queue_poll(queue.get(), 4000), rd_kafka_event_destroy);
    std::string why = event ? "" : "no answer";
    if (event && rd_kafka_event_error(event.get())) why = rd_kafka_event_error_string(event.get());
    if (event && why.empty()) {
        size_t count = 0;
        const auto** results = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(event.get()), &count);
        const rd_kafka_resp_err_t err =
            count ? rd_kafka_topic_result_error(results[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            why = rd_kafka_topic_result_error_string(results[0]);
    }
    if (why.empty()) {
        spdlog::info("kafka: created the compacted offsets topic {}", settings_.offsets_topic);
        return;
    }
    spdlog::warn(
        "kafka: could not create the offsets topic {} ({}); the first commit creates it with "
        "the broker's defaults: make it compacted (cleanup.policy=compact)",
        settings_.offsets_topic, why);
}

std::optional<Position> KafkaTransactions::read_position(milliseconds timeout) const {
    KafkaSettings reader = settings_.connection;
    reader.properties["isolation.level"] = "read_committed";
    reader.properties["enable.partition.eof"] = "true";
    reader.properties["enable.auto.commit"] = "false";
    // librdkafka's consumer wants a group even when it only reads what it assigned itself; it
    // never joins nor commits.
    reader.properties["group.id"] = "kbridge-offsets-reader";
    KafkaConf conf = make_kafka_conf(reader);
    char error[512];
    KafkaHandle consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error));
    if (!consumer) throw std::runtime_error(std::string("kafka offsets reader: ") + error);
    conf.release();  // rd_kafka_new took it
    const std::string& topic = settings_.offsets_topic;
    const int partitions = partitions_of(consumer.get(), topic, timeout);
    if (partitions == 0) return std::nullopt;
    KafkaPartitionList assignment(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p)
        rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (const rd_kafka_resp_err_t err = rd_kafka_assign(consumer.get(), assignment.get()))
        throw std::runtime_error("kafka offsets topic " + topic + ": " + rd_kafka_err2str(err));
    std::optional<std::string> last;
    std::map<int32_t, bool> at_end;
    const auto deadline = SteadyClock::now() + timeout;
    while (static_cast<int>(at_end.size()) < partitions) {
        if (SteadyClock::now() >= deadline)
            throw KafkaUnreachable(
                "kafka offsets topic " + topic + ": not read to its end within " +
                std::to_string(timeout.count() / 1000) +
                " s (read_committed waits for open transactions of other producers)");
        rd_kafka_message_t* raw = rd_kafka_consumer_poll(consumer.get(), 100);
        if (!raw) continue;
        std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> message(
            raw, rd_kafka_message_destroy);
        if (raw->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end[raw->partition] = true;
        } else if (raw->err) {
            throw std::runtime_error("kafka offsets topic " + topic + ": " +
                                     rd_kafka_message_errstr(raw));
        } else if (raw->key && std::string_view(static_cast<const char*>(raw->key), raw->key_len) ==
                                   settings_.transactional_id) {
            if (raw->payload)
                last.emplace(static_cast<const char*>(raw->payload), raw->len);
            else
                last.reset();  // a tombstone: the position was reset
        }
    }
    rd_kafka_consumer_close(consumer.get());
    if (!last) return std::nullopt;
    try {
        return decode_position(*last);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("kafka offsets topic " + topic + ", key " +
                                 settings_.transactional_id + ": " + e.what());
    }
}

void KafkaTransactions::reset_position(milliseconds timeout) const {
    KafkaConf conf = make_kafka_conf(settings_.connection);
    rd_kafka_resp_err_t delivery = RD_KAFKA_RESP_ERR__TIMED_OUT;  // until a report says otherwise
    rd_kafka_conf_set_opaque(conf.get(), &delivery);
    rd_kafka_conf_set_dr_msg_cb(conf.get(),
                                [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                    *static_cast<rd_kafka_resp_err_t*>(opaque) = message->err;
                                });
    char error[512];
    KafkaHandle producer(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error));
    if (!producer) throw std::runtime_error(std::string("kafka producer: ") + error);
    conf.release();  // rd_kafka_new took it
    const std::string& key = settings_.transactional_id;
    if (const rd_kafka_resp_err_t err = rd_kafka_producev(
            producer.get(), RD_KAFKA_V_TOPIC(settings_.offsets_topic.c_str()),
            RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(nullptr, 0), RD_KAFKA_V_END))
        throw std::runtime_error("kafka offsets topic " + settings_.offsets_topic + ": " +
                                 rd_kafka_err2str(err));
    rd_kafka_flush(producer.get(), timeout_ms(timeout));
    if (delivery)
        throw std::runtime_error("kafka offsets topic " + settings_.offsets_topic +
                                 ": the reset of " + key + " was not written (" +
                                 rd_kafka_err2str(delivery) + ")");
}

void KafkaTransactions::before_send() {
    if (open_) return;
    if (auto failure = take(rd_kafka_begin_transaction(producer_)))
        throw std::runtime_error("kafka: cannot begin a transaction: " + failure->message);
    open_ = true;
    opened_at_ = SteadyClock::now();
}

void KafkaTransactions::advance(const ResumePoint& point) {
    pending_ = point;
    sent_since_advance_ = false;
}

bool KafkaTransactions::commit_due() const {
    if (!pending_ || sent_since_advance_) return false;
    if (!open_) return pending_->boundary && pending_->position != committed_;
    const auto open_for = SteadyClock::now() - opened_at_;
    if (pending_->boundary) return open_for >= settings_.commit_interval;
    return open_for >= settings_.transaction_timeout / 2;
}

void KafkaTransactions::poll(const std::function<bool()>& settle) {
    if (!commit_due()) return;
    if (!pending_->boundary && !split_told_) {
        spdlog::warn(
            "kafka: a transaction of the source outlasts half of transaction.timeout.ms ({} ms): "
            "it is committed in parts, which read_committed consumers may see apart; raise "
            "transaction.timeout.ms (up to the brokers' transaction.max.timeout.ms) to keep it "
            "whole",
            settings_.transaction_timeout.count());
        split_told_ = true;
    }
    commit(settle);
}

void KafkaTransactions::commit(const std::function<bool()>& settle) {
    if (!settle()) {
        abort("the dead letter did not take the records refused in it");
        throw std::runtime_error(
            "kafka: the transaction was aborted, as the dead letter failed; the next run "
            "resumes at the last committed position");
    }
    before_send();  // a position alone (the source moved without records) commits too
    const std::string value = encode_position(pending_->position);
    const std::string& key = settings_.transactional_id;
    while (true) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_, RD_KAFKA_V_TOPIC(settings_.offsets_topic.c_str()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
            RD_KAFKA_V_OPAQUE(nullptr), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            throw std::runtime_error("kafka offsets topic " + settings_.offsets_topic + ": " +
                                     rd_kafka_err2str(err));
        rd_kafka_poll(producer_, 100);
    }
    for (int attempt = 1;; ++attempt) {
        auto failure =
            take(rd_kafka_commit_transaction(producer_, timeout_ms(settings_.transaction_timeout)));
        if (!failure) break;
        if (failure->retriable && attempt < 3) continue;
        if (failure->requires_abort) {
            abort(failure->message);
            throw std::runtime_error("kafka: the transaction was aborted (" + failure->message +
                                     "); the next run resumes at the last committed position");
        }
        throw std::runtime_error("kafka: the transaction cannot commit: " + failure->message);
    }
    open_ = false;
    committed_ = pending_->position;
}

void KafkaTransactions::abort(const std::string& why) {
    if (!open_) return;
    spdlog::info("kafka: aborting the open transaction: {}", why);
    open_ = false;
    if (auto failure =
            take(rd_kafka_abort_transaction(producer_, timeout_ms(settings_.transaction_timeout))))
        throw std::runtime_error(
            "kafka: the transaction cannot be aborted (" + failure->message +
            "); the brokers end it after transaction.timeout.ms, or the next start fences it");
}

void KafkaTransactions::finish(bool run_failed, const std::function<bool()>& settle) {
    if (run_failed) {
        abort("the run failed; the next run sends again what it held");
        return;
    }
    if (pending_ && !sent_since_advance_ && pending_->boundary &&
        (open_ || pending_->position != committed_)) {
        commit(settle);
        return;
    }
    abort("the run stopped inside a transaction of the source; the next run sends it again");
}

std::optional<Position> KafkaTransactions::restart() {
    abort("the source starts again at the last committed position");
    pending_.reset();
    sent_since_advance_ = false;
    return committed_;
}

}  // namespace kbridge
