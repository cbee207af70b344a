#pragma once
// A decoder of PostgreSQL's logical replication stream as the built-in `pgoutput` plugin sends it
// (protocol version 1): the replication CopyData wrapper (XLogData, keepalive) and the messages
// inside it. Pure: bytes in, typed messages out. Strings and column values are views into the
// bytes given, valid as long as they are. Input that does not follow the protocol throws
// DecodeError; no input reads outside the bytes given.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kbridge::pgoutput {

class DecodeError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

using Lsn = uint64_t;

// "16/B374D848", as PostgreSQL writes an LSN.
std::string lsn_text(Lsn lsn);
// Throws std::invalid_argument on anything but such a text.
Lsn parse_lsn(std::string_view text);

// --- The replication stream's own messages (inside CopyData) ---------------------------------
struct XLogData {
    Lsn start = 0;     // where the payload's WAL starts
    Lsn wal_end = 0;   // the server's end of WAL when it sent this
    int64_t sent = 0;  // microseconds since 2000-01-01
    std::string_view payload;
};
struct Keepalive {
    Lsn wal_end = 0;
    int64_t sent = 0;
    bool reply_requested = false;
};
using StreamMessage = std::variant<XLogData, Keepalive>;
StreamMessage decode_stream(std::string_view bytes);

// The client's standby status update ('r'): positions written, flushed and applied.
std::string standby_status_update(Lsn written, Lsn flushed, Lsn applied, int64_t now,
                                  bool reply_requested);
// Microseconds since 2000-01-01 (PostgreSQL's epoch) of the system clock now.
int64_t postgres_now();

// --- pgoutput messages --------------------------------------------------------------------------
enum class ValueKind : char { Null = 'n', Unchanged = 'u', Text = 't', Binary = 'b' };
struct Value {
    ValueKind kind = ValueKind::Null;
    std::string_view bytes;  // Text or Binary
};
using Tuple = std::vector<Value>;

struct Begin {
    Lsn final_lsn = 0;  // the LSN of the transaction's commit record
    int64_t commit_time = 0;
    uint32_t xid = 0;
};
struct Commit {
    uint8_t flags = 0;
    Lsn commit_lsn = 0;
    Lsn end_lsn = 0;  // the end of the commit record: resuming after it skips the transaction
    int64_t commit_time = 0;
};
struct Origin {
    Lsn commit_lsn = 0;
    std::string_view name;
};
struct RelationColumn {
    bool key = false;  // part of the replica identity
    std::string_view name;
    uint32_t type = 0;
    int32_t type_modifier = -1;
};
struct Relation {
    uint32_t id = 0;
    std::string_view schema;  // empty: pg_catalog
    std::string_view name;
    char replica_identity = 'd';  // d default, n nothing, f full, i index
    std::vector<RelationColumn> columns;
};
struct Type {
    uint32_t id = 0;
    std::string_view schema;
    std::string_view name;
};
struct Insert {
    uint32_t relation = 0;
    Tuple row;
};
struct Update {
    uint32_t relation = 0;
    char old_kind = 0;  // 0: no old row; 'K': its replica identity; 'O': all of it (FULL)
    Tuple old_row;
    Tuple row;
};
struct Delete {
    uint32_t relation = 0;
    char old_kind = 'K';
    Tuple old_row;
};
struct Truncate {
    bool cascade = false;
    bool restart_identity = false;
    std::vector<uint32_t> relations;
};
struct LogicalMessage {
    bool transactional = false;
    Lsn lsn = 0;
    std::string_view prefix;
    std::string_view content;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete,
                             Truncate, LogicalMessage>;

// One pgoutput message (an XLogData payload).
Message decode(std::string_view bytes);

}  // namespace kbridge::pgoutput
