#pragma once
// Source `postgres_table`: rows as row_to_json objects, streamed by binary COPY from one
// snapshot per read. Incremental modes keep a position (the last exported incrementing value
// and/or timestamp) and a transaction horizon, so rows committed late by long transactions are
// still exported.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "connectors/postgres/connection.h"
#include "connectors/postgres/row_json.h"
#include "core/registry.h"
#include "core/source.h"
#include "state/position_store.h"

namespace kbridge {

const OptionTable& postgres_table_options();
std::unique_ptr<Source> make_postgres_table_source(const Options& options,
                                                   const ConnectorContext& ctx);

class PostgresTableSource : public Source {
  public:
    enum class Mode { Bulk, Incrementing, Timestamp, TimestampIncrementing };
    struct Settings {
        std::string url;
        std::chrono::milliseconds connect_timeout{10000}, query_timeout{300000};
        std::string table;  // or query
        std::string query;
        Mode mode = Mode::Bulk;
        std::string incrementing_column;
        std::string timestamp_column;
        std::vector<std::string> columns;
        std::string where;
        std::vector<std::string> key_columns;
        size_t fetch_size = 5000;
        std::chrono::milliseconds poll_interval{5000};
        std::chrono::milliseconds stall_warning{60000};
        std::chrono::milliseconds stall_unhealthy{15 * 60000};
        bool once = false;
        std::string state_dir;
        std::string pipeline;
    };
    explicit PostgresTableSource(Settings settings);

    void connect() override;
    ReadStatus read(Batch& batch, std::chrono::milliseconds wait) override;
    void close() override;
    std::optional<uint64_t> backlog() override;
    // Rows of the export in progress not read yet (bulk: from the planner's estimate); 0
    // between follow-mode polls, as of the last one.
    std::optional<uint64_t> lag() override;
    // Follow mode, incremental: how long the transaction horizon has not moved while rows
    // committed after it wait (the horizon is server-wide: any database's open transaction).
    std::optional<double> blocked_seconds() override;
    bool healthy() override;
    Format format() const override { return Format::Json; }
    bool values_are_valid_json() const override { return true; }
    std::string describe() const override;
    bool reachable() const override { return conn_.is_connected(); }
    // `state set`: the names the mode keeps, and values the columns' types take, tried on the
    // server in the condition the next export uses; throws std::invalid_argument naming the
    // refused NAME=VALUE (or std::runtime_error when the server cannot be asked).
    void check_position(const Position& position);

  private:
    void start_export();
    std::string export_condition(const std::string& snapshot_xmin);
    std::string copy_statement(const std::string& where);
    std::string inner_select(const std::string& where);
    void describe_columns();
    std::string position_condition();
    void save_acked(bool force);

    // The position after each row of a batch (a column's last value when a row has none).
    struct RowPositions {
        static constexpr uint32_t kNone = UINT32_MAX;
        struct Place {
            uint32_t begin, size;
        };
        std::string text;
        std::vector<std::pair<Place, Place>> rows;  // incrementing, timestamp
        void add(const std::optional<std::string_view>& incrementing,
                 const std::optional<std::string_view>& timestamp);
        std::pair<std::optional<std::string>, std::optional<std::string>> after(size_t row) const;
    };
    bool incremental() const { return settings_.mode != Mode::Bulk; }
    void watch_horizon(bool held);
    std::string horizon_holder();

    Settings settings_;
    PostgresConnection conn_;
    PositionStore store_;
    Position position_;  // as acknowledged; what is stored
    bool position_dirty_ = false;
    std::chrono::steady_clock::time_point last_save_;
    std::vector<std::string> key_columns_;
    std::optional<RowJson> row_json_;  // none: PostgreSQL builds the JSON (row_to_json)
    std::vector<Oid> column_types_;
    std::vector<std::string> column_names_;
    bool exporting_ = false;
    std::string export_horizon_;           // the snapshot xmin of the export in progress
    std::optional<uint64_t> export_rows_;  // its size, when known
    uint64_t export_rows_read_ = 0;
    Position read_position_;  // of the last row read
    std::chrono::steady_clock::time_point next_export_;
    bool exported_once_ = false;
    std::vector<std::optional<std::string_view>> fields_;
    // The horizon as last seen, since when, and whether rows committed after it wait.
    std::string held_horizon_;
    std::chrono::steady_clock::time_point held_since_, next_stall_warning_;
    bool rows_wait_ = false;
};

}  // namespace kbridge
