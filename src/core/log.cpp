#include "core/log.h"

#include <spdlog/details/null_mutex.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "core/secrets.h"

namespace kbridge {
namespace {

bool g_json = false;

// The message as a JSON string body: quotes, backslashes and control characters escaped.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        for (char c : msg.payload) {
            switch (c) {
                case '"':
                    dest.append(std::string_view("\\\""));
                    break;
                case '\\':
                    dest.append(std::string_view("\\\\"));
                    break;
                case '\n':
                    dest.append(std::string_view("\\n"));
                    break;
                case '\r':
                    dest.append(std::string_view("\\r"));
                    break;
                case '\t':
                    dest.append(std::string_view("\\t"));
                    break;
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

// Every line passes through scrub_secrets(): librdkafka's lines and the errors of libpq and
// hiredis quote what they were given, and a secret must not reach the log even then.
class ScrubbingSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
  public:
    explicit ScrubbingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        const std::string payload =
            scrub_secrets(std::string(msg.payload.data(), msg.payload.size()));
        spdlog::details::log_msg copy = msg;
        copy.payload = payload;
        inner_->log(copy);
    }
    void flush_() override { inner_->flush(); }
    void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter_(std::unique_ptr<spdlog::formatter> formatter) override {
        inner_->set_formatter(std::move(formatter));
    }

  private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

bool json_logs() {
    return g_json;
}

void setup_logging(const std::string& level, const std::string& format) {
    const auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off")
        throw std::invalid_argument("unknown log level '" + level +
                                    "' (trace, debug, info, warn, error)");
    // ScrubbingSink keeps no state of its own, so it needs no lock; the inner sink has one.
    auto logger = std::make_shared<spdlog::logger>(
        "kbridge",
        std::make_shared<ScrubbingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
    if (format == "json") {
        g_json = true;
        auto formatter =
            std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
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
