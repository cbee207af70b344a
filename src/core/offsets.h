#pragma once
// Exactly-once between a Kafka source and a sink that keeps the consumer's offsets in the same
// transaction as the data it writes: on partition assignment the source seeks to what the sink
// stored, not to what Kafka's group coordinator remembers.
#include <cstdint>
#include <string>
#include <vector>

namespace kbridge {

struct PartitionOffset {
    std::string topic;
    int32_t partition = -1;
    int64_t next_offset = -1;  // the first offset not yet applied; -1: none stored
};

class OffsetStore {
  public:
    virtual ~OffsetStore() = default;
    // The consumer group whose offsets the sink writes with its data from now on.
    virtual void bind_group(const std::string& group) = 0;
    // The stored next offsets of these partitions (-1 where none is stored yet).
    virtual std::vector<PartitionOffset> stored_offsets(
        const std::vector<PartitionOffset>& partitions) = 0;
};

}  // namespace kbridge
