#include "connectors/kafka/handles.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace kbridge {

namespace {

// librdkafka's own lines go through the same logger as ours (one format, JSON included).
void log_line(const rd_kafka_t*, int level, const char* facility, const char* text) {
    const auto spd = level <= 3   ? spdlog::level::err
                     : level == 4 ? spdlog::level::warn
                     : level <= 6 ? spdlog::level::info
                                  : spdlog::level::debug;
    spdlog::log(spd, "kafka {}: {}", facility, text);
}

}  // namespace

KafkaConf make_kafka_conf(const KafkaSettings& settings) {
    KafkaConf conf(rd_kafka_conf_new());
    rd_kafka_conf_set_log_cb(conf.get(), &log_line);
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
