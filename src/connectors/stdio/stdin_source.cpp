#include "connectors/stdio/stdin_source.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "formats/csv.h"

namespace kbridge {
namespace {

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "stdin"},
    {"format", OptionType::Choice, "json", "how lines are decoded", {"json", "raw", "csv"}},
    {"batch_size", OptionType::Integer, "5000", "lines per batch at most"},
});

constexpr size_t kReadChunk = 1 << 20;

}  // namespace

const OptionTable& stdin_source_options() {
    return kOptions;
}

std::unique_ptr<Source> make_stdin_source(const Options& options, const ConnectorContext&) {
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1) throw options.error("batch_size", "must be at least 1");
    CsvFormat csv;
    const Format format = parse_format(options, csv);
    auto source =
        std::make_unique<StdinSource>(STDIN_FILENO, format, static_cast<size_t>(batch_size));
    source->set_csv(std::move(csv));
    return source;
}

ReadStatus StdinSource::read(Batch& batch, std::chrono::milliseconds wait) {
    if (!eof_ && buffer_.find('\n') == std::string::npos) {
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
        if (ready < 0 && errno != EINTR)
            throw std::runtime_error(std::string("stdin: ") + std::strerror(errno));
        if (ready > 0) {
            const size_t had = buffer_.size();
            buffer_.resize(had + kReadChunk);
            const ssize_t n = ::read(fd_, buffer_.data() + had, kReadChunk);
            buffer_.resize(had + static_cast<size_t>(std::max<ssize_t>(n, 0)));
            if (n == 0) eof_ = true;
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                throw std::runtime_error(std::string("stdin: ") + std::strerror(errno));
        }
    }
    // Whole lines only; the last line needs no newline once the input has ended.
    size_t begin = 0;
    std::vector<std::pair<size_t, size_t>> lines;
    while (lines.size() < batch_size_ && begin < buffer_.size()) {
        size_t end = buffer_.find('\n', begin);
        if (end == std::string::npos) {
            if (!eof_) break;
            end = buffer_.size();
        }
        size_t stop = end;
        if (stop > begin && buffer_[stop - 1] == '\r') --stop;
        if (stop > begin) lines.emplace_back(begin, stop - begin);
        begin = std::min(end + 1, buffer_.size());
    }
    if (lines.empty()) {
        buffer_.erase(0, begin);
        return eof_ && buffer_.empty() ? ReadStatus::End : ReadStatus::Idle;
    }
    size_t bytes = 0;
    for (const auto& l : lines) bytes += l.second;
    batch.storage.reserve(bytes + kValuePadding);
    for (const auto& l : lines)
        batch.storage.insert(batch.storage.end(), buffer_.begin() + l.first,
                             buffer_.begin() + l.first + l.second);
    batch.storage.resize(bytes + kValuePadding, '\0');
    size_t at = 0;
    for (const auto& l : lines) {
        Record r;
        r.value.emplace(batch.storage.data() + at, l.second);
        at += l.second;
        batch.records.push_back(std::move(r));
    }
    batch.contiguous_values = std::string_view(batch.storage.data(), bytes);
    buffer_.erase(0, begin);
    return ReadStatus::Records;
}

}  // namespace kbridge
