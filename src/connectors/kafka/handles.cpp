#include "connectors/kafka/handles.h"

#include <stdexcept>

namespace kbridge {

KafkaConf make_kafka_conf(const KafkaSettings& settings) {
    KafkaConf conf(rd_kafka_conf_new());
    char error[512];
    auto set = [&](const std::string& name, const std::string& value) {
        if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), error, sizeof error) !=
            RD_KAFKA_CONF_OK)
            throw std::invalid_argument("kafka property '" + name + "': " + error);
    };
    set("bootstrap.servers", settings.brokers);
    for (const auto& [name, value] : settings.properties) set(name, value);
    return conf;
}

}  // namespace kbridge
