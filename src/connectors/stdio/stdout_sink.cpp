#include "connectors/stdio/stdout_sink.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "formats/csv.h"

namespace kbridge {
namespace {

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "stdout"},
    {"format",
     OptionType::Choice,
     "json",
     "how values are written, one per line",
     {"json", "raw", "csv"}},
});

}  // namespace

const OptionTable& stdout_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_stdout_sink(const Options& options, const ConnectorContext&) {
    CsvFormat csv;
    if (parse_format(options, csv) == Format::Csv)
        return std::make_unique<StdoutSink>(stdout, std::move(csv));
    return std::make_unique<StdoutSink>(stdout, std::nullopt);
}

bool StdoutSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                      Rejection& why) {
    if (!record.value) {
        written_.push_back(batch);  // a tombstone has no line to print
        return true;
    }
    if (csv_) {
        if (!fields) {
            why = {"no_fields", "format csv writes fields, and a raw record has none"};
            return false;
        }
        line_.clear();
        csv_from_fields(*fields, *csv_, line_);
        line_ += '\n';
        std::fwrite(line_.data(), 1, line_.size(), out_);
        written_.push_back(batch);
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
