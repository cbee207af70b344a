#pragma once
// Puts a pipeline's transforms in front of its sink: every record's fields go through the chain
// before the sink sees them, whatever the source. A filtered record is reported to the runner
// as such (acknowledged, counted); a record a step cannot transform is refused like one whose
// template fails, so it goes to the dead letter with its original value.
#include <memory>

#include "core/sink.h"
#include "transforms/transforms.h"

namespace kbridge {

class TransformingSink : public Sink {
  public:
    TransformingSink(TransformChain chain, std::unique_ptr<Sink> inner)
        : chain_(std::move(chain)), inner_(std::move(inner)) {}

    void connect() override { inner_->connect(); }
    void check() override { inner_->check(); }
    void set_listener(DeliveryListener* listener) override {
        listener_ = listener;
        inner_->set_listener(listener);
    }
    void set_dead_letter_available(bool available) override {
        inner_->set_dead_letter_available(available);
    }
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool preview(const Record& record, const json::Value* fields, std::string& out,
                 Rejection& why) override;
    bool needs_fields() const override { return true; }
    void poll(std::chrono::milliseconds wait) override { inner_->poll(wait); }
    std::string describe() const override { return inner_->describe(); }
    bool reachable() const override { return inner_->reachable(); }
    std::optional<size_t> max_value_bytes() const override { return inner_->max_value_bytes(); }
    OffsetStore* offset_store() override { return inner_->offset_store(); }
    PositionCommitter* position_committer() override { return inner_->position_committer(); }
    void finish(bool run_failed) override { inner_->finish(run_failed); }
    uint64_t retried() const override { return inner_->retried(); }

  private:
    // Keep: `out` is the transformed record and `fields` its fields.
    TransformChain::Outcome transform(const Record& record, const json::Value* fields,
                                      json::Value& out_fields, Rejection& why);

    TransformChain chain_;
    std::unique_ptr<Sink> inner_;
    Record out_;
};

}  // namespace kbridge
