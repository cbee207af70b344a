#pragma once
// The PostgreSQL dialect of the SQL sink core: introspection from the catalogs, COPY text for
// rows, a temporary stage table for upserts, updates and deletes (DISTINCT ON keeps the last
// record of a key), offsets read FOR UPDATE, and errors classified by SQLSTATE. Asynchronous:
// a batch's transaction goes out as one request while the next batch is encoded.
#include <string>
#include <vector>

#include "connectors/postgres/connection.h"
#include "connectors/sql/batch.h"
#include "connectors/sql/dialect.h"
#include "connectors/sql/settings.h"

namespace kbridge {

struct PostgresTarget {
    std::string url;
    std::chrono::milliseconds connect_timeout{10000}, query_timeout{300000};
};

class PostgresDialect : public SqlDialect {
  public:
    PostgresDialect(const PostgresTarget& target, const SqlSettings& settings);

    void connect() override;
    bool connected() const override { return conn_.is_connected(); }
    std::string name() const override { return "postgres"; }
    std::string endpoint() const override { return conn_.redacted_url(); }
    TableShape introspect() override;
    void prepare_session() override;
    SqlFailure classify(const SqlError& e) const override;

    bool offsets_table_exists() override;
    void create_offsets_table() override;
    std::vector<PartitionOffset> initial_offsets(const std::string& group,
                                                 const std::vector<PartitionOffset>& partitions,
                                                 bool create_rows) override;
    StoredOffsets read_offsets(const std::string& group) override;
    StoredOffsets lock_offsets(const std::string& group,
                               const TopicPartitions& partitions) override;
    void write_offsets(const std::string& group, const std::vector<PartitionOffset>& next) override;

    void begin() override { conn_.exec("BEGIN"); }
    void commit() override { conn_.exec("COMMIT"); }
    void rollback() override;
    void savepoint() override { conn_.exec("SAVEPOINT kbridge_try"); }
    void rollback_to_savepoint() override;
    void release_savepoint() override { conn_.exec("RELEASE SAVEPOINT kbridge_try"); }
    void insert(const SqlBatch& batch, const std::vector<size_t>& records) override;
    void remove(const SqlBatch& batch, size_t record) override;
    void merge(const SqlBatch& batch, const std::vector<size_t>& records) override;

    bool asynchronous() const override { return true; }
    void send_fence(const std::string& group, const TopicPartitions& partitions) override;
    bool fence_ready(std::chrono::milliseconds wait, StoredOffsets& stored) override;
    void queue_transaction(const SqlBatch& batch, const std::vector<size_t>& todo, bool begin,
                           const std::string& group,
                           const std::vector<PartitionOffset>& offsets) override;
    bool send_queued(std::chrono::milliseconds wait) override;
    bool commit_ready(std::chrono::milliseconds wait) override;
    void stop_async() override;
    int socket() const override;
    [[noreturn]] void abandon(const std::string& why) override { conn_.abandon(why); }
    std::chrono::milliseconds query_timeout() const override { return conn_.query_timeout(); }

  private:
    std::string fence_query(const std::string& group, const TopicPartitions& partitions);
    std::string offsets_statement(const std::string& group,
                                  const std::vector<PartitionOffset>& next);
    std::vector<std::string> staged_statements(const SqlBatch& batch,
                                               const std::vector<size_t>& records);
    void copy_rows(const SqlBatch& batch, const std::vector<size_t>& records, bool staged,
                   const std::string& before = "", const std::string& after = "");
    static StoredOffsets stored_next(const PGresult* stored);
    bool result_ready(std::chrono::milliseconds wait);
    // The next result of what was sent without waiting: false while it is not in; `result`
    // null once all are in. Throws the first error (`what` failed).
    bool next_result(std::chrono::milliseconds& wait, PgResult& result, const char* what);

    SqlSettings settings_;
    mutable PostgresConnection conn_;
    std::string table_;  // quoted
    PgResult fenced_;    // the fast path's locking read of the offsets, once in
    std::string copy_buffer_;
};

}  // namespace kbridge
