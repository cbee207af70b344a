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
// ,"pipeline":...,"source":...,"sink":... of the thread's LogContext, if any.
thread_local const std::string* t_context = nullptr;
// ,"name":value,... of the log_event() call being logged on this thread.
thread_local const std::string* t_event = nullptr;

// `text` as a JSON string body: quotes, backslashes and control characters escaped.
template <typename Out>
void append_escaped(std::string_view text, Out& dest) {
    for (char c : text) {
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

std::string json_string(std::string_view text) {
    std::string out = "\"";
    append_escaped(text, out);
    return out + "\"";
}

class JsonMessageFlag : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        append_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

// The fields of the thread's context and of the event being logged, each with a leading comma.
class JsonFieldsFlag : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg&, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (t_context) dest.append(std::string_view(*t_context));
        if (t_event) dest.append(std::string_view(*t_event));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonFieldsFlag>();
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

LogField log_field(std::string name, const std::string& text) {
    return {std::move(name), json_string(scrub_secrets(text))};
}
LogField log_field(std::string name, const char* text) {
    return log_field(std::move(name), std::string(text));
}
LogField log_field(std::string name, int64_t number) {
    return {std::move(name), std::to_string(number)};
}
LogField log_field(std::string name, uint64_t number) {
    return {std::move(name), std::to_string(number)};
}
LogField log_field(std::string name, int number) {
    return {std::move(name), std::to_string(number)};
}
LogField log_field(std::string name, double number) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", number);
    return {std::move(name), text};
}

LogContext::LogContext(const std::string& pipeline, const std::string& source,
                       const std::string& sink)
    : fields_(",\"pipeline\":" + json_string(pipeline) + ",\"source\":" + json_string(source) +
              ",\"sink\":" + json_string(sink)),
      outer_(t_context) {
    t_context = &fields_;
}

LogContext::~LogContext() {
    t_context = outer_;
}

void log_event(spdlog::level::level_enum level, const std::vector<LogField>& fields,
               const std::string& message) {
    std::string encoded;
    for (const auto& f : fields) encoded += "," + json_string(f.name) + ":" + f.json;
    const std::string* outer = t_event;
    t_event = &encoded;
    spdlog::log(level, "{}", message);
    t_event = outer;
}

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
        formatter->add_flag<JsonMessageFlag>('*');
        formatter->add_flag<JsonFieldsFlag>('&').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","message":"%*"%&})");
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
