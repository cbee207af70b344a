#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/positions.h"

namespace kbridge {

struct Header {
    std::string name;
    std::string value;
};

// A record as it moves through a pipeline: bytes plus where it came from. Fields are decoded from
// the value by the pipeline's format when a sink needs them. Key and value are views into the
// batch's storage (or, in a delivery report, the report's message): whoever keeps them copies.
struct Record {
    std::optional<std::string_view> key;
    std::optional<std::string_view> value;  // none: a tombstone
    std::vector<Header> headers;
    // Set by sources that have them (Kafka); templates read them as {_topic} etc.
    std::string topic;
    int32_t partition = -1;
    int64_t offset = -1;
    int64_t timestamp = -1;
};

// Why a record cannot be written, ever: it goes to the dead-letter sink or stops the run.
struct Rejection {
    std::string reason;  // short class: invalid_json, missing_field, too_large, ...
    std::string detail;  // human message naming the field or the broker error
};

enum class Format { Json, Raw, Csv };

// What read() gives: records and the way to acknowledge them once, after they are durable.
struct Batch {
    std::vector<Record> records;
    std::vector<char> storage;  // the bytes the records view; a vector never moves them
    // Records the source itself refuses (by index into records, ascending), e.g. a line too
    // long to hold: the runner sends them to the dead letter as they are, or stops the run.
    std::vector<std::pair<size_t, Rejection>> refused;
    // Acknowledges the batch's first `count` records (all of them, or those before a record
    // the run stopped at): the source gives the rest again. Unset: nothing to acknowledge.
    std::function<void(size_t count)> ack;
    // Set by a source that resumes at positions of its own once it has a PositionCommitter: where
    // it resumes after this batch (also on an empty one: a transaction may have ended).
    std::optional<ResumePoint> resume;
};

}  // namespace kbridge
