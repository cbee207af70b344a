#include "connectors/stdio/stderr_sink.h"

#include <cstdio>

namespace kbridge {
namespace {

const OptionTable kOptions = {
    {"type", OptionType::String, "", "stderr"},
};

std::string header(const Record& record, const std::string& name) {
    for (const auto& h : record.headers)
        if (h.name == name) return h.value;
    return "";
}

}  // namespace

const OptionTable& stderr_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_stderr_sink(const Options&, const ConnectorContext&) {
    return std::make_unique<StderrSink>();
}

bool StderrSink::send(const Record& record, const json::Value*, BatchState* batch, Rejection&) {
    std::string place;
    if (!record.topic.empty())
        place = record.topic + "/" + std::to_string(record.partition) + "/" +
                std::to_string(record.offset) + ": ";
    else if (record.offset >= 0)
        place = "line " + std::to_string(record.offset) + ": ";
    const std::string line = "kbridge: " + place + header(record, "kbridge.error.reason") + ": " +
                             header(record, "kbridge.error.message") + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    written_.push_back(batch);
    return true;
}

void StderrSink::poll(std::chrono::milliseconds) {
    std::fflush(stderr);
    for (BatchState* b : written_) listener_->delivered(b);
    written_.clear();
}

}  // namespace kbridge
