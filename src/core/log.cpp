#include "core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace kbridge {
namespace {

bool g_json = false;

// The message as a JSON string body: quotes, backslashes and control characters escaped.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        for (char c : msg.payload) {
            switch (c) {
                case '"': dest.append(std::string_view("\\\"")); break;
                case '\\': dest.append(std::string_view("\\\\")); break;
                case '\n': dest.append(std::string_view("\\n")); break;
                case '\r': dest.append(std::string_view("\\r")); break;
                case '\t': dest.append(std::string_view("\\t")); break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        char escaped[8];
                        std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                        dest.append(std::string_view(escaped));
                    } else {
                        dest.push_back(c);
                    }
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

}  // namespace

bool json_logs() { return g_json; }

void setup_logging(const std::string& level, const std::string& format) {
    const auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off")
        throw std::invalid_argument("unknown log level '" + level + "' (trace, debug, info, warn, error)");
    auto logger = spdlog::stderr_color_mt("kbridge");
    if (format == "json") {
        g_json = true;
        auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
        formatter->add_flag<JsonMessageFlag>('*').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","message":"%*"})");
        logger->set_formatter(std::move(formatter));
    } else if (format == "text") {
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    } else {
        throw std::invalid_argument("unknown log format '" + format + "' (text, json)");
    }
    logger->set_level(parsed);
    spdlog::set_default_logger(logger);
}

}  // namespace kbridge
