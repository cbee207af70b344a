#pragma once
// Sink `stderr`: a dead letter for shell use (`kbridge produce`). Each refused record becomes one
// line on stderr naming its place (a stdin line number, a Kafka topic/partition/offset) and why;
// nothing of the record is kept. The run's summary counts them as dead-lettered.
#include <memory>
#include <vector>

#include "config/options.h"
#include "core/registry.h"
#include "core/sink.h"

namespace kbridge {

const OptionTable& stderr_sink_options();
std::unique_ptr<Sink> make_stderr_sink(const Options& options, const ConnectorContext& ctx);

class StderrSink : public Sink {
  public:
    void connect() override {}
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override { return false; }
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return "stderr"; }

  private:
    std::vector<BatchState*> written_;
};

}  // namespace kbridge
