#pragma once
// Sink `postgres_table`: each flush is one transaction. Rows go in by COPY (straight into the
// table for inserts; through a temporary stage table for upserts, updates and deletes, where the
// last record of a key in a batch wins). A record the database refuses (a constraint, a value
// that does not coerce) is found by bisection under savepoints and dead-lettered with the
// server's message; the rest commit. With exactly_once the Kafka offsets are written in the same
// transaction and records below them are skipped, so a replay never applies twice.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "connectors/postgres/connection.h"
#include "core/registry.h"
#include "core/sink.h"
#include "formats/template.h"

namespace kbridge {

const OptionTable& postgres_sink_options();
std::unique_ptr<Sink> make_postgres_sink(const Options& options, const ConnectorContext& ctx);

class PostgresTableSink : public Sink, private OffsetStore {
  public:
    enum class Mode { Insert, Upsert, Update };
    struct Settings {
        std::string url;
        std::chrono::milliseconds connect_timeout{10000}, query_timeout{300000};
        std::string table;
        Mode mode = Mode::Insert;
        std::vector<std::string> key_columns;                            // empty: the primary key
        std::vector<std::pair<std::string, Template>> column_templates;  // empty: fields by name
        bool delete_on_tombstone = false;
        size_t batch_size = 10000;
        bool exactly_once = false;
        std::string offsets_table = "kbridge_offsets";
    };
    explicit PostgresTableSink(Settings settings);

    void connect() override;
    bool send(const Record& record, const json::Value* fields, BatchState* batch,
              Rejection& why) override;
    bool needs_fields() const override;
    void poll(std::chrono::milliseconds wait) override;
    std::string describe() const override { return "postgres_table:" + settings_.table; }
    bool reachable() const override { return conn_.is_connected(); }
    OffsetStore* offset_store() override { return settings_.exactly_once ? this : nullptr; }

    // For a sink of several connections (PostgresLanes), which waits on all of them at once:
    // what this connection waits for (0: nothing in flight).
    short wanted_events() const;
    int socket() { return PQsocket(conn_.get()); }
    // send() never waits: a full batch waits in line while the one before is written, so that
    // the other connections' records keep coming (the runner's in-flight limit bounds the line).
    void queue_full_batches() { queue_full_batches_ = true; }

  private:
    struct Column {
        std::string name, quoted;
        bool is_array = false;  // a JSON array becomes a PostgreSQL array literal
        // Refused before sending (check_nulls_): NULL, or absent with nothing to default to.
        bool refuses_null = false, has_default = false;
        const char* integer_type = nullptr;  // smallint, integer or bigint: text needs a digit
    };
    // One cell of COPY text per column, in cells_; kAbsent: the record does not name the column.
    static constexpr int32_t kNull = -1, kAbsent = -2;
    struct Cell {
        uint32_t begin = 0;
        int32_t length = kAbsent;
    };
    // The original bytes (for the dead letter) live in originals_: [begin, begin + length).
    struct Bytes {
        size_t begin = 0;
        int64_t length = -1;  // -1: none
    };
    struct Pending {
        BatchState* batch;
        bool tombstone;
        uint32_t topic;  // index into topics_
        int32_t partition;
        int64_t offset;
        Bytes key, value;
    };
    struct Rejected {
        size_t index;
        std::string message;
    };
    struct Buffer {  // a batch being encoded
        std::vector<Pending> pending;
        std::vector<Cell> cells;
        std::string text, originals;
        void clear() {  // keeps the capacity, for the next batch
            pending.clear();
            cells.clear();
            text.clear();
            originals.clear();
        }
    };

    void bind_group(const std::string& group) override { group_ = group; }
    std::vector<PartitionOffset> stored_offsets(
        const std::vector<PartitionOffset>& partitions) override;

    void introspect();
    void prepare_session();
    void ensure_connected();
    bool encode_value(const json::Value* fields, const Record& record, Rejection& why);
    bool encode_key(const Record& record, Rejection& why);
    std::string precheck() const;       // of the record being encoded: why the table must refuse it
    Cell& encoded_cell(size_t column);  // of the record being encoded
    void put_cell(size_t column, std::optional<std::string_view> text);
    void put_json(size_t column, json::Value value);

    void flush();
    void finish_inflight();
    void start_next();
    void start_async();
    bool result_ready(std::chrono::milliseconds wait);
    bool send_queued(std::chrono::milliseconds wait);
    void stop_sending();
    void give_up_if_stalled();
    void progress(std::chrono::milliseconds wait);
    void recover(const PostgresError& e, bool commit_sent);
    void copy_rows(const std::vector<size_t>& records, bool staged, const std::string& before = "",
                   const std::string& after = "");
    std::vector<std::string> staged_statements(const std::vector<size_t>& records);
    std::string offsets_statement();
    void write(std::vector<size_t>& records, std::vector<Rejected>& rejected);
    std::vector<size_t> fence(const std::vector<size_t>& records);
    std::string fence_query(const std::vector<size_t>& records);
    static std::map<std::pair<std::string, int32_t>, int64_t> stored_next(const PGresult* stored);
    std::vector<size_t> unapplied(const std::vector<size_t>& records, const PGresult* stored);
    void send_transaction(const std::vector<size_t>& todo, const std::string& begin);
    void report_refused(const std::vector<Rejected>& rejected, std::vector<bool>& reported);
    void fail_unreported(const std::vector<bool>& reported, const std::string& error);
    void isolate(const std::vector<size_t>& records, std::vector<Rejected>& rejected);
    void apply(const std::vector<size_t>& records);
    void apply_insert(const std::vector<size_t>& records);
    void apply_staged(const std::vector<size_t>& records);
    void delete_one(size_t record);
    bool committed_before(const std::vector<size_t>& records);
    void append_copy_line(size_t record, const std::vector<size_t>& columns, std::string& out,
                          const char* prefix);
    std::vector<size_t> used_columns(const std::vector<size_t>& records) const;
    void clear();
    Bytes keep(std::optional<std::string_view> bytes);
    std::optional<std::string_view> view(Bytes bytes) const;

    Settings settings_;
    PostgresConnection conn_;
    std::string table_;  // quoted
    std::vector<Column> columns_;
    std::vector<size_t> keys_;  // indexes into columns_
    // NULLs are refused before sending: no trigger or rule could fill them in (insert, upsert).
    bool check_nulls_ = false;
    std::string group_;
    Buffer in_;              // being encoded by send()
    bool awaiting_ = false;  // a batch's transaction is sent; its results are not all in
    bool fencing_ = false;   // exactly_once: what is awaited is the stored offsets (fenced_)
    std::chrono::steady_clock::time_point awaiting_since_;  // the awaited query was sent
    std::optional<std::chrono::steady_clock::time_point> stop_seen_;
    PgResult fenced_;
    bool sending_ = false;  // the COPY is queued in libpq (non-blocking), not all sent yet
    // The batch being written:
    std::vector<Pending> pending_;
    std::vector<Cell> cells_;  // columns_.size() per pending record
    std::string cell_text_;
    std::string originals_;
    std::vector<std::string> topics_;
    std::string scratch_, error_;
    JsonDecoder key_decoder_;  // record keys that are JSON objects naming key columns
    std::string copy_buffer_;
    std::deque<Buffer> full_;  // full batches waiting for the one in flight (queue_full_batches)
    static constexpr size_t kSpareBuffers = 2;
    std::vector<Buffer> spare_;  // emptied buffers of batches written, for the next ones
    bool queue_full_batches_ = false;
};

}  // namespace kbridge
