#pragma once
// Source `postgres_cdc`: change data capture from PostgreSQL's logical replication (the built-in
// pgoutput plugin). Changes go out in commit order; the slot's flush position is confirmed only
// up to transactions every change of which the sink acknowledged, and a checkpoint of (commit
// LSN, index of the change in its transaction) in the state dir lets a restart skip exactly the
// changes already delivered.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "connectors/postgres/connection.h"
#include "connectors/postgres_cdc/changes.h"
#include "connectors/postgres_cdc/replication.h"
#include "core/registry.h"
#include "core/source.h"
#include "state/position_store.h"

namespace kbridge {

const OptionTable& postgres_cdc_options();
std::unique_ptr<Source> make_postgres_cdc_source(const Options& options,
                                                 const ConnectorContext& ctx);
class PostgresCdcSource;
// The postgres_cdc source of `pipeline`, for `kbridge state`; none when it has another source.
std::unique_ptr<PostgresCdcSource> postgres_cdc_of(const Config& config,
                                                   const std::string& pipeline,
                                                   const std::string& state_dir);

class PostgresCdcSource : public Source {
  public:
    struct Settings {
        std::string url;
        std::chrono::milliseconds connect_timeout{10000}, query_timeout{300000};
        std::vector<std::string> tables;  // schema.table
        std::string publication, slot;
        bool snapshot = true;
        Envelope envelope = Envelope::Row;
        std::chrono::milliseconds heartbeat_interval{0};  // 0: none
        std::chrono::milliseconds status_interval{10000};
        size_t batch_size = 5000;
        bool once = false;
        std::string state_dir, pipeline;
    };
    explicit PostgresCdcSource(Settings settings);

    void connect() override;
    void check() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    void close() override;
    std::optional<uint64_t> lag() override;
    // kbridge_cdc_slot_lag_bytes (the server's WAL end minus the confirmed position) and
    // kbridge_cdc_seconds_since_last_change.
    std::vector<std::pair<std::string, double>> gauges() override;
    Format format() const override { return Format::Json; }
    bool values_are_valid_json() const override { return true; }
    std::string describe() const override { return "postgres_cdc:" + settings_.slot; }
    bool reachable() const override { return sql_.is_connected() && stream_.connected(); }
    // exactly_once into Kafka: the checkpoint is what the sink committed with the changes, not
    // the state dir's file, and the slot is confirmed only up to it.
    bool use_position_committer(PositionCommitter* committer) override {
        committer_ = committer;
        return true;
    }

    // `kbridge state show`: the slot, its confirmed position and lag, and the publication.
    std::string slot_report();
    // `kbridge state reset --drop-slot`: drops the slot and the publication, if they exist.
    void drop_slot_and_publication();

    // Where a restart resumes: every change of transactions committed before `commit_lsn`, and
    // the first `index` changes of the one committed at it, were delivered. `flush`: the slot's
    // position confirmed to PostgreSQL.
    struct Checkpoint {
        pgoutput::Lsn commit_lsn = 0;
        uint32_t index = 0;
        pgoutput::Lsn flush = 0;
    };

  private:
    // Connecting.
    void check_server();
    void check_tables();
    void ensure_publication();
    std::optional<std::string> slot_plugin();
    void load_checkpoint();
    void start_snapshot(const std::string& snapshot_name, pgoutput::Lsn consistent_point);
    void start_streaming();
    CdcTable& table_from_catalog(uint32_t oid, const std::string& qualified);
    JsonType json_type(Oid type);

    // Reading.
    struct Pending;  // records of the batch being built
    ReadStatus read_snapshot(Batch& batch);
    ReadStatus read_stream(Batch& batch, std::chrono::milliseconds wait);
    // Handles one stream message; false when a --once run reached its end.
    bool handle(std::string_view bytes, Pending& out);
    void on_relation(const pgoutput::Relation& relation);
    void emit(Pending& out, const CdcTable& table, const ChangeSource& source,
              const pgoutput::Tuple* row, const pgoutput::Tuple* old_row, char old_kind);
    bool skip_change();
    void finish(Pending& out, Batch& batch);
    void acknowledge(const Checkpoint& reached);
    // The state dir's checkpoint (not kept with exactly_once: the sink commits it).
    void save_checkpoint(const Checkpoint& checkpoint, const std::string& snapshot);
    // What a crash cannot undo: acknowledged, or with exactly_once committed.
    Checkpoint durable() const;
    // Where the source resumes after what it gave so far, for the sink that commits it.
    void mark_resume(Batch& batch, bool snapshot_done);
    void send_status(bool reply_requested);
    void heartbeat();

    Settings settings_;
    PostgresConnection sql_;
    ReplicationStream stream_;
    PositionStore store_;
    PositionCommitter* committer_ = nullptr;
    Position loaded_;  // the checkpoint read at connect
    std::string database_;

    // Snapshot phase.
    std::unique_ptr<PostgresConnection> snapshot_conn_;
    bool snapshotting_ = false;
    size_t snapshot_table_ = 0;
    pgoutput::Lsn snapshot_lsn_ = 0;
    std::vector<std::optional<std::string_view>> copy_fields_;

    // Streaming.
    std::map<uint32_t, CdcTable> tables_;  // by relation id
    std::map<Oid, JsonType> types_;
    bool in_transaction_ = false;
    pgoutput::Begin transaction_;
    uint32_t change_index_ = 0;
    Checkpoint read_;             // after the last change read
    Checkpoint acked_;            // after the last change acknowledged
    Checkpoint resume_;           // what this connection's stream skips up to
    pgoutput::Lsn received_ = 0;  // the furthest WAL position seen in the stream
    pgoutput::Lsn server_end_ = 0;
    pgoutput::Lsn confirmed_ = 0;  // the flush position last sent to the server
    size_t unacked_batches_ = 0;
    bool dirty_ = false;
    SteadyClock::time_point last_status_, last_save_, last_change_, last_heartbeat_;

    // --once.
    pgoutput::Lsn once_target_ = 0;
    std::string once_marker_;
    bool once_reached_ = false;
};

}  // namespace kbridge
