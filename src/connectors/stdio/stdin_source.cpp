#include "connectors/stdio/stdin_source.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
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
    {"file", OptionType::String, "", "read this file instead of standard input"},
    {"max_line_bytes", OptionType::Integer, "",
     "longer lines go to the dead letter as too_large, unread (default: what the sink accepts, "
     "a kafka sink's message.max.bytes; else 16 MiB)"},
});

constexpr size_t kReadChunk = 1 << 20;

}  // namespace

const OptionTable& stdin_source_options() {
    return kOptions;
}

std::unique_ptr<Source> make_stdin_source(const Options& options, const ConnectorContext&) {
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1) throw options.error("batch_size", "must be at least 1");
    std::optional<size_t> max_line;
    if (options.has("max_line_bytes")) {
        const int64_t bytes = options.integer("max_line_bytes");
        if (bytes < 1) throw options.error("max_line_bytes", "must be at least 1");
        max_line = static_cast<size_t>(bytes);
    }
    CsvFormat csv;
    const Format format = parse_format(options, csv);
    int fd = STDIN_FILENO;
    if (options.has("file")) {
        fd = ::open(options.str("file").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            throw options.error("file",
                                "cannot open " + options.str("file") + ": " + std::strerror(errno));
    }
    auto source =
        std::make_unique<StdinSource>(fd, format, static_cast<size_t>(batch_size), max_line);
    if (fd != STDIN_FILENO) source->own_fd();
    source->set_csv(std::move(csv));
    return source;
}

ReadStatus StdinSource::read(Batch& batch, std::chrono::milliseconds wait) {
    std::vector<Line> lines;
    take_lines(lines);
    if (lines.empty() && !eof_) {
        fill(wait);
        take_lines(lines);
    }
    if (!lines.empty()) build(batch, lines);
    // What was handed out goes; what stays is at most a line being read and a chunk.
    if (next_ > 0) {
        buffer_.erase(0, next_);
        scanned_ -= next_;
        next_ = 0;
    }
    if (!lines.empty()) return ReadStatus::Records;
    return eof_ && buffer_.empty() && !skipping_ && !skipped_ ? ReadStatus::End : ReadStatus::Idle;
}

void StdinSource::fill(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR)
        throw std::runtime_error(std::string("stdin: ") + std::strerror(errno));
    if (ready <= 0) return;
    const size_t had = buffer_.size();
    buffer_.resize(had + kReadChunk);
    const ssize_t n = ::read(fd_, buffer_.data() + had, kReadChunk);
    buffer_.resize(had + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n == 0) eof_ = true;
    if (n < 0 && errno != EINTR && errno != EAGAIN)
        throw std::runtime_error(std::string("stdin: ") + std::strerror(errno));
    if (skipping_) skip_chunk(had);
}

// Inside a line too long to hold: counts the new bytes from `from` and drops them, up to the
// newline that ends the line (or the end of input).
void StdinSource::skip_chunk(size_t from) {
    Skipping& s = *skipping_;
    const size_t newline = buffer_.find('\n', from);
    const size_t end = newline == std::string::npos ? buffer_.size() : newline;
    if (end > from) {
        if (s.prefix.size() < kRefusedPrefix)
            s.prefix.append(buffer_, from, std::min(kRefusedPrefix - s.prefix.size(), end - from));
        s.length += end - from;
        s.ends_in_cr = buffer_[end - 1] == '\r';
    }
    if (newline == std::string::npos && !eof_) {
        buffer_.resize(from);
        return;
    }
    const uint64_t length = s.length - (s.ends_in_cr ? 1 : 0);
    if (s.prefix.size() > length) s.prefix.resize(length);  // it held the '\r' of a \r\n
    skipped_ = refused_line(std::move(s.prefix), length, s.number);
    skipping_.reset();
    buffer_.erase(from, newline == std::string::npos ? std::string::npos : newline + 1 - from);
}

// Whole lines only, each byte scanned once; the last line needs no newline once the input has
// ended.
void StdinSource::take_lines(std::vector<Line>& lines) {
    if (skipped_) {
        lines.push_back(std::move(*skipped_));
        skipped_.reset();
    }
    if (skipping_) return;
    while (lines.size() < batch_size_) {
        const size_t newline = buffer_.find('\n', scanned_);
        if (newline != std::string::npos) {
            add_line(lines, next_, newline);
            next_ = scanned_ = newline + 1;
            continue;
        }
        scanned_ = buffer_.size();
        const size_t partial = buffer_.size() - next_;
        if (eof_) {
            if (partial > 0) add_line(lines, next_, buffer_.size());
            next_ = buffer_.size();
        } else if (partial > max_line_ + 1) {  // + 1: a '\r' of its \r\n ending may follow
            skipping_ = Skipping{buffer_.substr(next_, std::min(partial, kRefusedPrefix)), partial,
                                 ++lines_seen_, buffer_.back() == '\r'};
            buffer_.resize(next_);
            scanned_ = next_;
        }
        return;
    }
}

void StdinSource::add_line(std::vector<Line>& lines, size_t begin, size_t end) {
    ++lines_seen_;
    if (end > begin && buffer_[end - 1] == '\r') --end;
    if (end == begin) return;  // empty lines are skipped
    const size_t size = end - begin;
    if (size > max_line_) {
        lines.push_back(
            refused_line(buffer_.substr(begin, std::min(size, kRefusedPrefix)), size, lines_seen_));
        return;
    }
    Line line;
    line.begin = begin;
    line.size = size;
    line.number = lines_seen_;
    lines.push_back(std::move(line));
}

StdinSource::Line StdinSource::refused_line(std::string prefix, uint64_t length,
                                            uint64_t number) const {
    Line line;
    line.refused = true;
    line.size = prefix.size();
    line.prefix = std::move(prefix);
    line.length = length;
    line.number = number;
    return line;
}

void StdinSource::build(Batch& batch, std::vector<Line>& lines) const {
    size_t bytes = 0;
    for (const Line& l : lines) bytes += l.size;
    batch.storage.reserve(bytes);
    for (const Line& l : lines) {
        const char* from = l.refused ? l.prefix.data() : buffer_.data() + l.begin;
        batch.storage.insert(batch.storage.end(), from, from + l.size);
    }
    size_t at = 0;
    for (const Line& l : lines) {
        Record r;
        r.value.emplace(batch.storage.data() + at, l.size);
        r.offset = static_cast<int64_t>(l.number);  // the line number: {_offset}, reports
        at += l.size;
        if (l.refused) {
            r.headers.push_back({"kbridge.original.size", std::to_string(l.length)});
            r.headers.push_back({"kbridge.line.number", std::to_string(l.number)});
            batch.refused.emplace_back(
                batch.records.size(),
                Rejection{"too_large",
                          "line " + std::to_string(l.number) + " is " + std::to_string(l.length) +
                              " bytes, over max_line_bytes " + std::to_string(max_line_) +
                              " (the record keeps its first " + std::to_string(l.size) +
                              " bytes)"});
        }
        batch.records.push_back(std::move(r));
    }
}

}  // namespace kbridge
