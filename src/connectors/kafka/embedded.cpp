#include "connectors/kafka/embedded.h"

#include <stdexcept>

namespace kbridge {

EmbeddedKafka::EmbeddedKafka(int brokers) : brokers_(brokers) {
    KafkaConf conf(rd_kafka_conf_new());
    char error[512];
    // The owner never connects anywhere; keep it from logging about having no brokers.
    rd_kafka_conf_set(conf.get(), "log_level", "0", error, sizeof error);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error);
    if (!rk) throw std::runtime_error(std::string("embedded kafka: ") + error);
    conf.release();
    owner_.reset(rk);
    cluster_ = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster_) throw std::runtime_error("embedded kafka: could not start the mock cluster");
}

EmbeddedKafka::~EmbeddedKafka() {
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

std::string EmbeddedKafka::bootstraps() const {
    return rd_kafka_mock_cluster_bootstraps(cluster_);
}

void EmbeddedKafka::create_topic(const std::string& name, int partitions) {
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, brokers_ < 3 ? brokers_ : 3);
    if (err)
        throw std::runtime_error("embedded kafka: create topic '" + name +
                                 "': " + rd_kafka_err2str(err));
}

}  // namespace kbridge
