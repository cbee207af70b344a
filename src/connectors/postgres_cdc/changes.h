#pragma once
// How one change becomes a record's key and value: the tables as pgoutput's Relation messages
// (or the catalog, for the snapshot) describe them, and the `row` and `debezium` envelopes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "connectors/postgres_cdc/pgoutput.h"
#include "connectors/postgres_cdc/text_json.h"

namespace kbridge {

struct CdcTable {
    struct Column {
        std::string name;
        JsonType type;
        std::string prefix;  // "name": escaped
    };
    std::string schema, name;
    char replica_identity = 'd';
    std::vector<Column> columns;
    std::vector<size_t> key;  // the record key: primary key, else replica identity columns
    bool wanted = true;       // one of the source's tables (a publication may have more)
    // Sets each column's prefix; call after filling columns.
    void prepare();
    std::string qualified() const { return schema + "." + name; }
};

enum class Envelope { Row, Debezium };

// What a record says of where a change comes from.
struct ChangeSource {
    char op = 'c';  // c u d r t
    pgoutput::Lsn commit_lsn = 0;
    pgoutput::Lsn change_lsn = 0;
    uint32_t xid = 0;  // 0: none (snapshot)
    int64_t commit_ms = 0;
    bool snapshot = false;
};

// Appends the row's JSON object. A column unchanged in `row` (a TOASTed value the update did
// not touch) takes its value from `old_row` when that holds every column (REPLICA IDENTITY
// FULL); otherwise it is left out and its name added to `unchanged` (comma-separated).
// Throws pgoutput::DecodeError when the row does not have the table's columns.
void append_row_json(const CdcTable& table, const pgoutput::Tuple& row,
                     const pgoutput::Tuple* old_row, std::vector<char>& out,
                     std::string& unchanged);
// The key: one key column's text, or a JSON object of several; none without key columns.
std::optional<std::string> record_key(const CdcTable& table, const pgoutput::Tuple& row,
                                      const pgoutput::Tuple* old_row);
// Debezium's payload: {"before":...,"after":...,"source":{...},"op":...,"ts_ms":...}; `before`
// and `after` are JSON objects already rendered, or empty for null.
void append_debezium(const CdcTable& table, const ChangeSource& source, std::string_view before,
                     std::string_view after, const std::string& database,
                     const std::string& pipeline, std::vector<char>& out);

}  // namespace kbridge
