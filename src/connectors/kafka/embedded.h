#pragma once
// An in-process Kafka-protocol cluster (librdkafka's mock cluster) for demos and tests.
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h needs rdkafka.h first.
#include <librdkafka/rdkafka_mock.h>

#include <string>

#include "connectors/kafka/handles.h"

namespace kbridge {

class EmbeddedKafka {
  public:
    explicit EmbeddedKafka(int brokers = 3);
    ~EmbeddedKafka();
    EmbeddedKafka(const EmbeddedKafka&) = delete;
    EmbeddedKafka& operator=(const EmbeddedKafka&) = delete;

    std::string bootstraps() const;
    void create_topic(const std::string& name, int partitions);
    rd_kafka_mock_cluster_t* cluster() { return cluster_; }
    int broker_count() const { return brokers_; }

  private:
    int brokers_;
    KafkaHandle owner_;  // the mock cluster runs on this handle's thread
    rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

}  // namespace kbridge
