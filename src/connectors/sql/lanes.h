#pragma once
// A SQL sink with `connections` > 1: each Kafka partition is written by one of several
// connections (partition modulo their count), each with its own transactions, so that one
// connection's load, commit or WAL flush overlaps another's. A partition's records keep their
// order; records of different partitions, which Kafka never ordered, may commit in any order.
#include <functional>
#include <memory>
#include <vector>

#include "connectors/sql/sink.h"

namespace kbridge {

class SqlLanes : public Sink, private OffsetStore {
  public:
    SqlLanes(const SqlSettings& settings,
             const std::function<std::unique_ptr<SqlDialect>()>& dialect);

    void set_listener(DeliveryListener* listener) override;
    void set_dead_letter_available(bool available) override;
    void connect() override;
    void check() override { lanes_.front()->check(); }
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool preview(const Record& record, const json::Value* fields, std::string& out,
                 Rejection& why) override;
    bool needs_fields() const override { return lanes_.front()->needs_fields(); }
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return lanes_.front()->describe(); }
    bool reachable() const override;
    OffsetStore* offset_store() override { return exactly_once_ ? this : nullptr; }
    uint64_t retried() const override;

  private:
    void bind_group(const std::string& group) override;
    std::vector<PartitionOffset> stored_offsets(
        const std::vector<PartitionOffset>& partitions) override;

    std::vector<std::unique_ptr<SqlSink>> lanes_;
    bool exactly_once_;
    size_t tried_ = 0;  // connections connect() has tried
};

}  // namespace kbridge
