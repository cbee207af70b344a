#pragma once
// The seam between the SQL sink core (sink.h) and one database. The core owns batching,
// transactions, retries, the in-doubt COMMIT rule, isolating refused records, last-wins per key,
// tombstones and the exactly-once offsets; a dialect connects, describes the table, writes rows
// and offsets in the database's own SQL, and says what kind of failure an error is.
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "connectors/sql/error.h"
#include "core/offsets.h"

namespace kbridge {

enum class SqlMode { Insert, Upsert, Update };

struct SqlColumn {
    std::string name, quoted;
    bool is_array = false;  // a JSON array becomes the database's array literal (PostgreSQL)
    // Refused before sending: NULL, or absent with nothing to default to.
    bool refuses_null = false, has_default = false;
    std::string integer_type;  // set for integer columns: text without a digit is refused
};

struct TableShape {
    std::vector<SqlColumn> columns;
    std::vector<size_t> keys;  // indexes into columns: the key_columns or the primary key
    // NULLs may be refused before sending: nothing (trigger, rule) could fill them in.
    bool check_nulls = false;
};

// (topic, partition) -> the next offset to apply.
using StoredOffsets = std::map<std::pair<std::string, int32_t>, int64_t>;
using TopicPartitions = std::set<std::pair<std::string, int32_t>>;

class SqlBatch;

class SqlDialect {
  public:
    virtual ~SqlDialect() = default;

    virtual void connect() = 0;
    virtual bool connected() const = 0;
    // The table as the core resolved it (key_columns): what the statements are built from.
    void use_shape(const TableShape& shape) { shape_ = shape; }
    virtual std::string name() const = 0;      // "postgres": names the table in messages
    virtual std::string endpoint() const = 0;  // what logs name: a masked URL, a path
    // The target table's columns and key; throws SqlError naming what is missing (the table, a
    // column, a key for the mode, a privilege).
    virtual TableShape introspect() = 0;
    // Once per connection, after introspect(): what the writes need (a stage table).
    virtual void prepare_session() {}
    virtual SqlFailure classify(const SqlError& e) const = 0;

    // exactly_once: the offsets table, in the target database.
    virtual bool offsets_table_exists() = 0;
    virtual void create_offsets_table() = 0;
    // The stored offsets of `partitions`; `create_rows` first makes a row for each (so that
    // lock_offsets always has one to lock). Outside any transaction.
    virtual std::vector<PartitionOffset> initial_offsets(
        const std::string& group, const std::vector<PartitionOffset>& partitions,
        bool create_rows) = 0;
    // Every stored offset of the group, outside any transaction (the in-doubt check).
    virtual StoredOffsets read_offsets(const std::string& group) = 0;
    // In the open transaction: the stored offsets of `partitions`, locked until it ends, so that
    // a second writer of the same partitions waits and then skips what this one applied.
    virtual StoredOffsets lock_offsets(const std::string& group,
                                       const TopicPartitions& partitions) = 0;
    // In the open transaction: never moves a partition back.
    virtual void write_offsets(const std::string& group,
                               const std::vector<PartitionOffset>& next) = 0;

    // Blocking steps of a transaction.
    virtual void begin() = 0;
    virtual void commit() = 0;
    virtual void rollback() = 0;  // errors are swallowed: the connection may be gone
    virtual void savepoint() = 0;
    virtual void rollback_to_savepoint() = 0;
    virtual void release_savepoint() = 0;
    // Mode insert: these records' rows, in their order.
    virtual void insert(const SqlBatch& batch, const std::vector<size_t>& records) = 0;
    // Deletes the row of `record`'s key.
    virtual void remove(const SqlBatch& batch, size_t record) = 0;
    // Mode upsert or update: `records` hold one record per key (the core kept the last);
    // tombstones delete their key's row, the others are written.
    virtual void merge(const SqlBatch& batch, const std::vector<size_t>& records) = 0;

    // An asynchronous dialect writes a batch's whole transaction without waiting for the server
    // (the fast path), while the next batch is encoded. The others' fast path is the core
    // running the blocking steps above in one transaction, without savepoints.
    virtual bool asynchronous() const { return false; }
    // Sends BEGIN and the locking read of the offsets of `partitions`; fence_ready() gives them.
    virtual void send_fence(const std::string& group, const TopicPartitions& partitions);
    virtual bool fence_ready(std::chrono::milliseconds wait, StoredOffsets& stored);
    // Queues the transaction's rest: `todo` (all of one kind: no tombstones in insert mode;
    // last per key otherwise), the offsets when given, and COMMIT; BEGIN too when `begin`.
    virtual void queue_transaction(const SqlBatch& batch, const std::vector<size_t>& todo,
                                   bool begin, const std::string& group,
                                   const std::vector<PartitionOffset>& offsets);
    // Sends what the socket takes of the queue, waiting up to `wait`; true once all is sent.
    virtual bool send_queued(std::chrono::milliseconds wait);
    // True once every statement through COMMIT succeeded; throws the first error.
    virtual bool commit_ready(std::chrono::milliseconds wait);
    // After a fast-path failure: sends what is queued (best effort) and drains any results, so
    // the connection takes blocking steps again.
    virtual void stop_async() {}
    virtual int socket() const { return -1; }
    // Drops the connection and throws the SqlError (connection lost) saying `why`.
    [[noreturn]] virtual void abandon(const std::string& why);
    virtual std::chrono::milliseconds query_timeout() const { return std::chrono::minutes(5); }

  protected:
    TableShape shape_;
};

}  // namespace kbridge
