#pragma once
// Sink `redis`: cache updates. One command per record (SET, HSET, RPUSH, LPUSH, XADD, SADD,
// ZADD), key and value from templates, an optional TTL, DEL on tombstones; a batch goes out as one
// pipeline. With exactly_once the batch, the consumer's offsets and the records Redis refused are
// applied in one Lua script, which skips records below the stored offsets.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "connectors/redis/client.h"
#include "core/registry.h"
#include "core/sink.h"
#include "formats/template.h"

namespace kbridge {

const OptionTable& redis_sink_options();
std::unique_ptr<Sink> make_redis_sink(const Options& options, const ConnectorContext& ctx);

class RedisSink : public Sink, private OffsetStore {
  public:
    enum class Command { Set, Hset, Rpush, Lpush, Xadd, Sadd, Zadd };
    struct Settings {
        RedisUrl url;
        std::chrono::milliseconds timeout{10000};  // connect_timeout
        Command command = Command::Set;
        Template key{"{_key}"};
        std::optional<Template> value;  // none: the record's value (hset, xadd: its fields)
        std::optional<Template> score;  // zadd
        std::chrono::milliseconds ttl{0};
        bool delete_on_tombstone = false;
        bool exactly_once = false;
        std::string offsets_key = "kbridge:offsets";
    };
    explicit RedisSink(Settings settings);

    void connect() override;
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override;
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return "redis:" + settings_.key.text(); }
    bool reachable() const override { return client_.connected(); }
    OffsetStore* offset_store() override { return settings_.exactly_once ? this : nullptr; }

  private:
    struct Pending {
        BatchState* batch;
        std::vector<std::vector<std::string>> commands;  // the record's commands, in order
        std::string topic;
        int32_t partition;
        int64_t offset;
        std::optional<std::string> key, value;  // the original bytes, for the dead letter
    };

    void bind_group(const std::string& group) override {
        offsets_hash_ = settings_.offsets_key + ":" + group;
        refused_hash_ = offsets_hash_ + ":refused";
    }
    std::vector<PartitionOffset> stored_offsets(
        const std::vector<PartitionOffset>& partitions) override;

    bool build_commands(const Record& record, const json::Value* fields, Pending& out,
                        Rejection& why);
    void flush();
    // Sends the batch as one pipeline, noting what Redis refused.
    void write(std::vector<std::string>& refused);
    // exactly_once: the batch, its offsets and what Redis refused of it, in one script.
    void apply(std::vector<std::string>& refused);
    void forget_refused(const std::vector<std::string>& refused);
    bool dead_letter_refused_earlier();
    void ensure_connected();

    Settings settings_;
    RedisClient client_;
    std::string offsets_hash_, refused_hash_;
    bool recovered_ = false;  // records refused by an earlier run were dead-lettered
    std::vector<Pending> pending_;
    std::string scratch_, error_;
};

}  // namespace kbridge
