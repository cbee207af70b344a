#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/offsets.h"
#include "core/positions.h"
#include "core/record.h"
#include "formats/csv.h"

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
    // `kbridge check`: connects and finds what it needs, taking nothing; throws saying what is
    // missing.
    virtual void check() { connect(); }
    // Fills `batch` (given empty). May wait up to `wait` for the first record when idle.
    virtual ReadStatus read(Batch& batch, std::chrono::milliseconds wait) = 0;
    // After the last ack of a run: makes the acks durable and gives back what was taken from
    // the source but never handed out (e.g. a prefetched batch), so a clean stop leaves the
    // source as if those records had never been read.
    virtual void close() {}
    // Records still waiting in the source, for progress; none when unknown.
    virtual std::optional<uint64_t> backlog() { return std::nullopt; }
    // Records behind (list length, consumer lag, rows not yet exported) from what the source
    // learnt on its read path, without a request of its own; for metrics. None: unknown.
    virtual std::optional<uint64_t> lag() { return std::nullopt; }
    // Records handed out and not yet acknowledged, as the source's server counts them (a Redis
    // stream group's pending entries); none: not kept. Read like lag().
    virtual std::optional<uint64_t> pending() { return std::nullopt; }
    // Records taken over from other workers that stopped acknowledging; none: not done.
    virtual std::optional<uint64_t> claimed() { return std::nullopt; }
    // Seconds the source has been kept from records that wait for it (e.g. a PostgreSQL
    // transaction holding an incremental export's horizon); 0: not held up; none: unknown. Read
    // like lag(), from the run loop.
    virtual std::optional<double> blocked_seconds() { return std::nullopt; }
    // The source's own gauges for /metrics (name, value), e.g. postgres_cdc's slot lag; read
    // like lag(), from the run loop.
    virtual std::vector<std::pair<std::string, double>> gauges() { return {}; }
    // False while held up for longer than the source tolerates: /health then answers 503.
    virtual bool healthy() { return true; }
    virtual Format format() const = 0;
    // True when every value is a JSON object by construction (PostgreSQL's row_to_json): it
    // then needs parsing only if a sink reads its fields.
    virtual bool values_are_valid_json() const { return false; }
    // Names the source in dead-letter headers and logs, e.g. "redis_list:user_behavior".
    virtual std::string describe() const = 0;
    // False once the connection to the endpoint is lost or was never made: after such an error
    // a follow-mode run connects again instead of stopping.
    virtual bool reachable() const { return true; }
    // Which of several parallel workers of one pipeline this is (redis_list's consumer); each
    // worker holds its own lock. Empty: one run per pipeline.
    virtual std::string worker() const { return ""; }
    // Kafka sources take their start offsets from an exactly-once sink; false: not supported.
    virtual bool use_offset_store(OffsetStore*) { return false; }
    // A sink that commits the source's positions with its records (exactly_once) becomes where
    // the source's position is kept; false: the source has no such positions.
    virtual bool use_position_committer(PositionCommitter*) { return false; }
    // The sink's Sink::max_value_bytes(), told before connect(): a source that can skip a longer
    // record unread may refuse it instead of holding it whole.
    virtual void set_sink_value_limit(size_t bytes) { (void)bytes; }
    // With format() == Csv: how lines become fields.
    const CsvFormat& csv() const { return csv_; }
    void set_csv(CsvFormat csv) { csv_ = std::move(csv); }

  private:
    CsvFormat csv_;
};

}  // namespace kbridge
