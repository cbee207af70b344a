#pragma once
// Source `redis_list`: crash-safe reading of a Redis list. Each batch moves atomically into this
// worker's in-flight list and leaves it only when acknowledged; a restarted worker first sends
// again whatever its in-flight list still holds.
#include <memory>
#include <string>

#include "config/options.h"
#include "connectors/redis/client.h"
#include "core/registry.h"
#include "core/source.h"

namespace kbridge {

const OptionTable& redis_list_options();
std::unique_ptr<Source> make_redis_list_source(const Options& options, const ConnectorContext& ctx);
// Where a worker keeps the records it has taken but not yet seen acknowledged.
std::string redis_in_flight_key(const std::string& list, const std::string& consumer);

class RedisListSource : public Source {
public:
    struct Settings {
        RedisUrl url;
        std::string key;
        std::string consumer;
        size_t batch_size = 1000;
        bool pop_left = true;
        Format format = Format::Json;
        bool once = false;
    };
    explicit RedisListSource(Settings settings);

    void connect() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    std::optional<uint64_t> backlog() override;
    Format format() const override { return settings_.format; }
    std::string describe() const override { return "redis_list:" + settings_.key; }

private:
    void take(const RedisReply& items, Batch& batch);
    RedisReply move_batch(size_t count);

    Settings settings_;
    std::string in_flight_key_;
    RedisClient client_;
    std::string script_sha_;
    uint64_t left_from_last_run_ = 0;  // in-flight records found at connect, sent first
    uint64_t taken_ = 0;               // records put into batches (recovered ones included)
    uint64_t acked_ = 0;               // records trimmed from the in-flight list
};

}  // namespace kbridge
