#pragma once
// Sink `stdout`: one record per line, for shell pipelines (kbridge run ... | jq). A record counts
// as written once its line has been flushed to the pipe.
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

class StdoutSink : public Sink {
  public:
    StdoutSink(std::FILE* out, std::optional<CsvFormat> csv) : out_(out), csv_(std::move(csv)) {}
    void connect() override {}
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override { return csv_.has_value(); }
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return "stdout"; }

  private:
    std::FILE* out_;
    std::optional<CsvFormat> csv_;  // set: lines of these columns instead of the values as read
    std::string line_;
    std::vector<BatchState*> written_;  // one entry per record, reported at the next flush
};

}  // namespace kbridge
