#pragma once
// Sink `stdout`: one record per line, for shell pipelines (kbridge run ... | jq). A record counts
// as written once its line has been flushed to the pipe. When the reader goes away (`| head`),
// the run ends quietly, exit 0, acknowledging only what was flushed before.
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "config/options.h"
#include "core/registry.h"
#include "core/sink.h"
#include "formats/csv.h"

namespace kbridge {

const OptionTable& stdout_sink_options();
std::unique_ptr<Sink> make_stdout_sink(const Options& options, const ConnectorContext& ctx);

// kcat's -f: %t %p %o %k %s %h %T %S %K and %%, with \n \t \r \\ escapes.
class LineFormat {
  public:
    // Throws std::invalid_argument naming an unknown %-token.
    explicit LineFormat(const std::string& text);
    void render(const Record& record, std::string& out) const;

  private:
    struct Part {
        char token;  // 0: literal
        std::string literal;
    };
    std::vector<Part> parts_;
};

class StdoutSink : public Sink {
  public:
    StdoutSink(std::FILE* out, std::optional<CsvFormat> csv,
               std::optional<LineFormat> line_format = std::nullopt)
        : out_(out), csv_(std::move(csv)), line_format_(std::move(line_format)) {}
    void connect() override {}
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override { return csv_.has_value(); }
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return "stdout"; }

  private:
    std::FILE* out_;
    std::optional<CsvFormat> csv_;  // set: lines of these columns instead of the values as read
    std::optional<LineFormat> line_format_;
    std::string line_;
    std::vector<BatchState*> written_;  // one entry per record, reported at the next flush
    int write_errno_ = 0;               // the first write error since the last flush
};

}  // namespace kbridge
