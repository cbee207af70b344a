#include "connectors/stdio/stdout_sink.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "stdout"},
    {"format", OptionType::Choice, "json", "how values are written, one per line", {"json", "raw"}},
};

}  // namespace

const OptionTable& stdout_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_stdout_sink(const Options&, const ConnectorContext&) {
    return std::make_unique<StdoutSink>(stdout);
}

bool StdoutSink::send(const Record& record, const simdjson::dom::element*, BatchState* batch,
                      Rejection& why) {
    if (!record.value) {
        written_.push_back(batch);  // a tombstone has no line to print
        return true;
    }
    if (record.value->find('\n') != std::string_view::npos) {
        why = {"newline", "a value with a line break cannot be one line of output"};
        return false;
    }
    std::fwrite(record.value->data(), 1, record.value->size(), out_);
    std::fputc('\n', out_);
    written_.push_back(batch);
    return true;
}

void StdoutSink::poll(std::chrono::milliseconds) {
    if (written_.empty()) return;
    if (std::fflush(out_) != 0 || std::ferror(out_)) {
        const std::string error = std::string("writing to stdout: ") + std::strerror(errno);
        for (BatchState* b : written_) listener_->failed(b, error);
    } else {
        for (BatchState* b : written_) listener_->delivered(b);
    }
    written_.clear();
}

}  // namespace kbridge
