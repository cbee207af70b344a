#include "connectors/kafka/handles.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>

#include "core/secrets.h"

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
            throw std::invalid_argument("kafka property '" + name + "': " + scrub_secrets(error));
    };
    for (const auto& [name, value] : settings.properties)
        if (is_secret_key(name)) remember_secret(value);
    set("bootstrap.servers", settings.brokers);
    for (const auto& [name, value] : settings.properties) set(name, value);
    return conf;
}

std::string invalid_topic_reason(std::string_view name) {
    constexpr size_t kMaxTopicLength = 249;
    if (name.empty()) return "a topic name may not be empty";
    if (name == "." || name == "..") return "a topic name may not be '.' or '..'";
    if (name.size() > kMaxTopicLength)
        return "a topic name has at most 249 characters (this one has " +
               std::to_string(name.size()) + ")";
    for (const char c : name) {
        const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (allowed) continue;
        char shown[16];
        std::snprintf(shown, sizeof shown, c >= ' ' && c < 0x7f ? "'%c'" : "byte 0x%02x",
                      static_cast<unsigned char>(c));
        return std::string(
                   "a topic name may only contain ASCII letters, digits, '.', '_' and "
                   "'-' (not ") +
               shown + ")";
    }
    return "";
}

}  // namespace kbridge
