#pragma once
// Source `stdin`: one record per line, for shell pipelines (zcat events.gz | kbridge run ...).
// Records cannot go back into a pipe, so a failed run names how many lines it had read; the end
// of input ends the run in either mode.
#include <memory>
#include <string>

#include "config/options.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& stdin_source_options();
std::unique_ptr<Source> make_stdin_source(const Options& options, const ConnectorContext& ctx);

class StdinSource : public Source {
  public:
    StdinSource(int fd, Format format, size_t batch_size)
        : fd_(fd), format_(format), batch_size_(batch_size) {}
    void connect() override {}
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    Format format() const override { return format_; }
    std::string describe() const override { return "stdin"; }

  private:
    int fd_;
    Format format_;
    size_t batch_size_;
    std::string buffer_;  // read but not yet handed out
    bool eof_ = false;
};

}  // namespace kbridge
