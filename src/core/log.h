#pragma once
#include <spdlog/common.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kbridge {

// Logs go to stderr as text or as one JSON object per line (journald, ELK). Throws
// std::invalid_argument on an unknown level or format.
void setup_logging(const std::string& level, const std::string& format);
bool json_logs();

// A field of a JSON log line besides time, level and message; `json` is the value encoded.
struct LogField {
    std::string name;
    std::string json;
};
LogField log_field(std::string name, const std::string& text);  // secrets scrubbed
LogField log_field(std::string name, const char* text);
LogField log_field(std::string name, int64_t number);
LogField log_field(std::string name, uint64_t number);
LogField log_field(std::string name, int number);
LogField log_field(std::string name, double number);

// While it lives, every line this thread logs carries "pipeline", "source" and "sink" (JSON
// format; the text format names the pipeline in the message as before).
class LogContext {
  public:
    LogContext(const std::string& pipeline, const std::string& source, const std::string& sink);
    ~LogContext();
    LogContext(const LogContext&) = delete;
    LogContext& operator=(const LogContext&) = delete;

  private:
    std::string fields_;
    const std::string* outer_;
};

// Logs `message` with event fields (an "event" name, counts, durations, an "error_class") that
// JSON lines carry as fields of their own.
void log_event(spdlog::level::level_enum level, const std::vector<LogField>& fields,
               const std::string& message);

}  // namespace kbridge
