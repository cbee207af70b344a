#pragma once
// The SQL sink core, shared by every database (`postgres_table`, `sqlite_table`, `mysql_table`):
// each batch is one transaction. A record the database refuses (a constraint, a value that does
// not coerce) is found by halving the batch under savepoints and dead-lettered with the
// database's message; the rest commit. Transient errors are retried after reconnecting; a COMMIT
// whose outcome a lost connection hides is resolved from the stored offsets, retried where
// applying twice is harmless, and otherwise stops the run. With exactly_once the Kafka offsets
// are written in the same transaction and records below them are skipped, so a replay never
// applies twice. The dialect (dialect.h) speaks the database's SQL.
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/sql/batch.h"
#include "connectors/sql/dialect.h"
#include "connectors/sql/encoder.h"
#include "connectors/sql/settings.h"
#include "core/sink.h"

namespace kbridge {

class SqlSink : public Sink, private OffsetStore {
  public:
    SqlSink(SqlSettings settings, std::unique_ptr<SqlDialect> dialect);
    ~SqlSink() override;

    void connect() override;
    void check() override;
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override;
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return settings_.type + ":" + settings_.table; }
    bool reachable() const override { return dialect_->connected(); }
    OffsetStore* offset_store() override { return settings_.exactly_once ? this : nullptr; }

    // For a sink of several connections (SqlLanes), which waits on all of them at once: what
    // this connection waits for (0: nothing in flight), and on which socket.
    short wanted_events() const;
    int socket() const { return dialect_->socket(); }
    // send() never waits: a full batch waits in line while the one before is written, so that
    // the other connections' records keep coming (the runner's in-flight limit bounds the line).
    void queue_full_batches() { queue_full_batches_ = true; }

  private:
    // The fast path of the batch being written: the whole transaction is sent without waiting
    // for the server, which goes on to COMMIT by itself; anything unusual takes the careful
    // path, flush(), which retries, reconnects and isolates refused records.
    enum class FastPath {
        Idle,        // nothing in flight
        Fencing,     // exactly_once: BEGIN and the locking read of the stored offsets are sent
        Sending,     // the rows, statements and COMMIT are queued, not all sent yet
        Committing,  // all is sent; COMMIT's answer is awaited (a lost connection: in doubt)
    };
    struct Rejected {
        size_t index;
        std::string message;
    };

    void bind_group(const std::string& group) override { group_ = group; }
    std::vector<PartitionOffset> stored_offsets(
        const std::vector<PartitionOffset>& partitions) override;

    void resolve_shape(TableShape shape);
    void ensure_connected();
    SqlBatch::Bytes keep(std::optional<std::string_view> bytes);
    std::vector<size_t> all() const;

    void start_next();
    void start_fast();
    void write_blocking();
    void queue(const std::vector<size_t>& todo, bool begin);
    void progress(std::chrono::milliseconds wait);
    void finish_inflight();
    void give_up_if_stalled();
    void recover(const SqlError& e, bool commit_sent);
    void deliver_all();

    void flush();
    void isolate(const std::vector<size_t>& records, std::vector<Rejected>& rejected);
    void apply(const std::vector<size_t>& records);
    std::vector<size_t> unapplied(const std::vector<size_t>& records, const StoredOffsets& stored);
    bool committed_before(const std::vector<size_t>& records);
    std::vector<PartitionOffset> next_offsets() const;
    void report_refused(const std::vector<Rejected>& rejected, std::vector<bool>& reported);
    void fail_unreported(const std::vector<bool>& reported, const std::string& error);
    void fail_all(const std::string& error);

    SqlSettings settings_;
    std::unique_ptr<SqlDialect> dialect_;
    TableShape shape_;
    RowEncoder encoder_{settings_, shape_};
    std::string group_;
    std::vector<std::string> topics_;  // the batches' topic names, by index
    SqlBatch in_{&topics_};            // being encoded by send()
    SqlBatch current_{&topics_};       // being written
    FastPath state_ = FastPath::Idle;
    std::chrono::steady_clock::time_point sent_at_;  // the awaited request was sent
    std::optional<std::chrono::steady_clock::time_point> stop_seen_;
    std::deque<SqlBatch> full_;  // full batches waiting for the one in flight (queue_full_batches)
    static constexpr size_t kSpareBatches = 2;
    std::vector<SqlBatch> spare_;  // emptied batches already written, for the next ones
    bool queue_full_batches_ = false;
};

// One SqlSink, or SqlLanes of settings.connections sinks, each with a dialect from `dialect`.
std::unique_ptr<Sink> make_sql_sink(const SqlSettings& settings,
                                    const std::function<std::unique_ptr<SqlDialect>()>& dialect);

}  // namespace kbridge
