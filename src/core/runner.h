#pragma once
// Drives one pipeline: reads batches, decodes, hands records to the sink, routes rejected records
// to the dead-letter sink, and acknowledges each batch to its source, in read order, only once
// every record of it is durable downstream.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/sink.h"
#include "core/source.h"
#include "formats/json.h"
#include "state/quarantine.h"

namespace kbridge {

struct BatchState {
    size_t size = 0;      // records read
    size_t pending = 0;   // records without a final outcome yet
    int64_t read_ms = 0;  // steady clock when it was read, for the latency histogram
    bool failed = false;
    // Set when the run stopped at a record while handing the batch out (nothing was sent after
    // it): the records before it are acknowledged once delivered, so a rerun starts at it.
    std::optional<size_t> stopped_at;
    // A record failed after it was sent: which records are durable is unknown, so none is
    // acknowledged.
    bool failed_after_send = false;
    std::function<void(size_t)> ack;
};

struct PipelineStats {
    std::atomic<uint64_t> read{0};
    std::atomic<uint64_t> delivered{0};
    std::atomic<uint64_t> dead_lettered{0};
    std::atomic<uint64_t> filtered{0};  // dropped by a transforms filter, acknowledged
    double seconds = 0;
    std::atomic<bool> connected{false};    // every connector of the pipeline is connected
    std::atomic<int64_t> heartbeat_ms{0};  // steady clock of the run loop's last turn (watchdog)
    // Seconds from reading a batch to acknowledging it: counts per upper bound (the last: +Inf).
    static constexpr double kLatencyBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5,   1,    2.5,   5,    10};
    std::atomic<uint64_t> latency_buckets[std::size(kLatencyBounds) + 1] = {};
    std::atomic<uint64_t> latency_sum_us{0};
    std::atomic<int64_t> lag{-1};            // Source::lag(); -1: unknown
    std::atomic<int64_t> pending{-1};        // Source::pending(); -1: unknown
    std::atomic<int64_t> claimed{-1};        // Source::claimed(); -1: not done
    std::atomic<int64_t> blocked_ms{-1};     // Source::blocked_seconds(); -1: unknown
    std::atomic<bool> source_healthy{true};  // Source::healthy()
    std::atomic<uint64_t> retried{0};
    std::atomic<uint64_t> reconnects{0};  // follow mode: outages of an endpoint retried
    // Unix time in ms the pipeline last acknowledged a batch or found its source caught up with
    // nothing in flight; 0: not yet.
    std::atomic<int64_t> last_success_unix_ms{0};
    mutable std::mutex source_gauges_mutex;
    std::vector<std::pair<std::string, double>> source_gauges;  // Source::gauges()
};

struct RunSettings {
    bool once = false;
    bool progress = false;  // a live line on stderr (a terminal, --once)
    size_t max_in_flight = 50000;
    size_t dry_run_records =
        0;                  // > 0: print that many records as the sink would write them, no more
    std::string state_dir;  // where records too large for any sink are quarantined
};

class PipelineRunner : private DeliveryListener {
  public:
    PipelineRunner(std::string name, std::unique_ptr<Source> source, std::unique_ptr<Sink> sink,
                   std::unique_ptr<Sink> dead_letter, RunSettings settings);
    ~PipelineRunner() override;

    // Returns the exit code: 0 when every record read was delivered or dead-lettered.
    int run(const std::atomic<bool>& stop);
    const PipelineStats& stats() const { return stats_; }
    const std::string& name() const { return name_; }
    // The `type:` of its source and sink, for metric labels and log fields.
    void set_types(std::string source, std::string sink);
    const std::string& source_type() const { return source_type_; }
    const std::string& sink_type() const { return sink_type_; }
    // A reload's runner of the same pipeline carries on the counts of the one it replaces
    // (call before run(); `earlier` has finished).
    void continue_from(const PipelineRunner& earlier);
    // The endpoints it cannot reach and keeps retrying; empty while connected or connecting
    // the first time. Safe from other threads.
    std::string unreachable() const;
    // Seconds since the run started (its total once it ended); safe from other threads.
    double elapsed_seconds() const;
    // The steady clock in milliseconds, as heartbeat_ms holds it.
    static int64_t steady_ms();

  private:
    class DeadLetterListener : public DeliveryListener {
      public:
        explicit DeadLetterListener(PipelineRunner& runner) : runner_(runner) {}
        void delivered(BatchState* batch) override;
        void rejected(BatchState* batch, Record record, const Rejection& why) override;
        void failed(BatchState* batch, const std::string& error) override;
        void rejected_earlier(Record record, const Rejection& why) override;

      private:
        PipelineRunner& runner_;
    };

    void delivered(BatchState* batch) override;
    void rejected(BatchState* batch, Record record, const Rejection& why) override;
    void failed(BatchState* batch, const std::string& error) override;
    void filtered(BatchState* batch) override;
    void abandoned(BatchState* batch) override;
    bool settle_dead_letters() override;
    void rejected_earlier(Record record, const Rejection& why) override;

    // False when the run stopped at one of its records (nothing after it was sent).
    bool dispatch(Batch& batch);
    void preview(Batch& batch);
    // False when the record could go nowhere: the run stops at it.
    bool dead_letter(BatchState* batch, Record record, const Rejection& why);
    // A record's final outcome is a failure: the run stops, and of the batch at most the
    // records before a record it stopped at while dispatching are acknowledged.
    void fail(BatchState* batch, const std::string& error);
    // A failure reported after sending: nothing of the batch is acknowledged.
    void fail_sent(BatchState* batch, const std::string& error);
    void stop_batch(BatchState* batch, const std::string& error);
    void poll(std::chrono::milliseconds wait);
    void ack_completed();
    void drain();
    void connect_endpoints();
    void loop(const std::atomic<bool>& stop);
    std::string unreachable_endpoint();
    void settle_after_loss();
    void wait_for(const std::atomic<bool>& stop, std::chrono::milliseconds pause);
    bool records_pending() const;
    void show_progress(bool final_line);
    size_t in_flight() const { return in_flight_; }
    void beat();
    void observe_latency(int64_t read_ms);
    void sample_gauges(bool now);

    void set_unreachable(const std::string& endpoints);

    std::string name_;
    std::string source_type_, sink_type_;
    std::unique_ptr<Source> source_;
    std::unique_ptr<Sink> sink_;
    std::unique_ptr<Sink> dead_letter_;
    DeadLetterListener dead_letter_listener_{*this};
    RunSettings settings_;
    Quarantine quarantine_;
    JsonDecoder decoder_;
    std::vector<char> csv_json_;  // the batch's csv records as JSON objects
    std::deque<std::unique_ptr<BatchState>> batches_;
    size_t in_flight_ = 0;
    bool fatal_ = false;
    bool output_closed_ = false;  // the sink's reader went away: stop as if asked to
    size_t previewed_ = 0;
    int64_t last_sample_ms_ = 0;
    bool ever_connected_ = false;
    bool source_connected_ = false;
    bool sink_connected_ = false;
    bool dead_letter_connected_ = false;
    size_t dead_letters_in_flight_ = 0;  // sent to the dead letter, not reported on yet
    BatchState earlier_;  // records refused in an earlier run: counted, never acknowledged
    PipelineStats stats_;
    std::optional<uint64_t> total_;
    std::chrono::steady_clock::time_point started_, last_progress_;
    std::atomic<int64_t> started_ms_{0};
    std::atomic<bool> finished_{false};
    double earlier_seconds_ = 0;  // run by the runners this one continues (reloads)
    uint64_t earlier_retried_ = 0;
    mutable std::mutex unreachable_mutex_;
    std::string unreachable_;
};

}  // namespace kbridge
