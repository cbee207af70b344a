#pragma once
// RAII over librdkafka's C handles.
#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace kbridge {

struct KafkaConfDeleter {
    void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct KafkaDeleter {
    void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
};
struct KafkaTopicDeleter {
    void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct KafkaQueueDeleter {
    void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct KafkaPartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t* l) const {
        rd_kafka_topic_partition_list_destroy(l);
    }
};
using KafkaQueue = std::unique_ptr<rd_kafka_queue_t, KafkaQueueDeleter>;
using KafkaPartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaPartitionListDeleter>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using KafkaTopic = std::unique_ptr<rd_kafka_topic_t, KafkaTopicDeleter>;

// The connection settings of one Kafka connector: its own brokers/properties over the file's
// `kafka:` defaults. "embedded" resolves to the in-process cluster's bootstrap servers.
struct KafkaSettings {
    std::string brokers;
    std::map<std::string, std::string> properties;
};

// Builds a conf; throws std::invalid_argument naming a bad property (value never printed, it may
// be a secret).
KafkaConf make_kafka_conf(const KafkaSettings& settings);

// Why Kafka would refuse `name` as a topic name ([a-zA-Z0-9._-], 1 to 249 characters, not "."
// or ".."), or "" when it would take it.
std::string invalid_topic_reason(std::string_view name);

}  // namespace kbridge
