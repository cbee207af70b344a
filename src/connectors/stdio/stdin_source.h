#pragma once
// Source `stdin`: one record per line, for shell pipelines (zcat events.gz | kbridge run ...).
// Records cannot go back into a pipe, so a failed run names how many lines it had read; the end
// of input ends the run in either mode.
//
// Input is scanned once, chunk by chunk, whatever the line lengths. A line longer than
// max_line_bytes is never held whole: it is streamed past, counting its bytes, and becomes a
// refused record (too_large) holding its first kRefusedPrefix bytes, so memory stays bounded by
// max_line_bytes plus a read chunk.
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& stdin_source_options();
std::unique_ptr<Source> make_stdin_source(const Options& options, const ConnectorContext& ctx);

class StdinSource : public Source {
  public:
    // Without a sink limit and without max_line_bytes: lines up to this are taken.
    static constexpr size_t kDefaultMaxLine = 16 << 20;
    // How much of a refused line its dead-letter record keeps.
    static constexpr size_t kRefusedPrefix = 64 << 10;

    // `max_line_bytes`: none means the sink's limit, or kDefaultMaxLine without one.
    StdinSource(int fd, Format format, size_t batch_size,
                std::optional<size_t> max_line_bytes = std::nullopt)
        : fd_(fd),
          format_(format),
          batch_size_(batch_size),
          max_line_(max_line_bytes.value_or(kDefaultMaxLine)),
          max_line_given_(max_line_bytes.has_value()) {}
    ~StdinSource() override {
        if (owns_fd_) ::close(fd_);
    }
    // Closes the descriptor with the source (a file it opened).
    void own_fd() { owns_fd_ = true; }
    void connect() override {}
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    Format format() const override { return format_; }
    std::string describe() const override { return "stdin"; }
    void set_sink_value_limit(size_t bytes) override {
        if (!max_line_given_) max_line_ = bytes;
    }

  private:
    // A line of the input: bytes in buffer_, or (too long) what is kept of it.
    struct Line {
        size_t begin = 0, size = 0;  // in buffer_
        bool refused = false;
        std::string prefix;   // refused: its first kRefusedPrefix bytes
        uint64_t length = 0;  // refused: its length in bytes, without the line ending
        uint64_t number = 0;  // 1-based, counting empty lines
    };
    struct Skipping {
        std::string prefix;
        uint64_t length = 0;
        uint64_t number = 0;
        bool ends_in_cr = false;  // its last byte so far was '\r' (part of a \r\n ending)
    };

    void fill(std::chrono::milliseconds wait);
    void skip_chunk(size_t from);
    void take_lines(std::vector<Line>& lines);
    void add_line(std::vector<Line>& lines, size_t begin, size_t end);
    Line refused_line(std::string prefix, uint64_t length, uint64_t number) const;
    void build(Batch& batch, std::vector<Line>& lines) const;

    int fd_;
    Format format_;
    size_t batch_size_;
    size_t max_line_;
    bool max_line_given_;
    std::string buffer_;  // read but not yet handed out, from next_
    size_t next_ = 0;     // start of the first line not handed out
    size_t scanned_ = 0;  // buffer_ from next_ up to here holds no newline
    uint64_t lines_seen_ = 0;
    std::optional<Skipping> skipping_;  // inside a line too long to hold
    std::optional<Line> skipped_;       // a refused line that ended, to hand out next
    bool eof_ = false;
    bool owns_fd_ = false;
};

}  // namespace kbridge
