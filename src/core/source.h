#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "core/record.h"

namespace kbridge {

enum class ReadStatus {
    Records,  // the batch has records
    Idle,     // nothing right now (follow mode: ask again)
    End,      // --once: drained up to the end it had at the start
};

class Source {
public:
    virtual ~Source() = default;
    // Does the I/O of getting ready; constructors only check options.
    virtual void connect() = 0;
    // Fills `batch` (given empty). May wait up to `wait` for the first record when idle.
    virtual ReadStatus read(Batch& batch, std::chrono::milliseconds wait) = 0;
    // Records still waiting in the source, for progress; none when unknown.
    virtual std::optional<uint64_t> backlog() { return std::nullopt; }
    virtual Format format() const = 0;
    // Names the source in dead-letter headers and logs, e.g. "redis_list:user_behavior".
    virtual std::string describe() const = 0;
};

}  // namespace kbridge
