#include "connectors/postgres_cdc/changes.h"

#include <chrono>

#include "connectors/postgres/row_json.h"

namespace kbridge {
namespace {

void put(std::vector<char>& out, std::string_view s) {
    out.insert(out.end(), s.begin(), s.end());
}

void check_width(const CdcTable& table, const pgoutput::Tuple& row) {
    if (row.size() != table.columns.size())
        throw pgoutput::DecodeError("a row of " + table.qualified() + " has " +
                                    std::to_string(row.size()) + " columns, its relation " +
                                    std::to_string(table.columns.size()));
}

// The value of column `i`: from `row`, or from a full old row when `row` has it unchanged.
const pgoutput::Value* value_of(const pgoutput::Tuple& row, const pgoutput::Tuple* old_row,
                                size_t i) {
    const pgoutput::Value& v = row[i];
    if (v.kind != pgoutput::ValueKind::Unchanged) return &v;
    if (old_row && old_row->size() == row.size() &&
        (*old_row)[i].kind != pgoutput::ValueKind::Unchanged)
        return &(*old_row)[i];
    return nullptr;
}

void append_value(const CdcTable::Column& column, const pgoutput::Value& v,
                  std::vector<char>& out) {
    if (v.kind == pgoutput::ValueKind::Null)
        put(out, "null");
    else
        append_text_as_json(column.type, v.bytes, out);
}

}  // namespace

void CdcTable::prepare() {
    for (auto& c : columns) {
        std::vector<char> prefix;
        append_json_string(c.name, prefix);
        prefix.push_back(':');
        c.prefix.assign(prefix.begin(), prefix.end());
    }
}

void append_row_json(const CdcTable& table, const pgoutput::Tuple& row,
                     const pgoutput::Tuple* old_row, std::vector<char>& out,
                     std::string& unchanged) {
    check_width(table, row);
    out.push_back('{');
    bool first = true;
    for (size_t i = 0; i < row.size(); ++i) {
        const pgoutput::Value* v = value_of(row, old_row, i);
        if (!v) {
            unchanged += (unchanged.empty() ? "" : ",") + table.columns[i].name;
            continue;
        }
        if (!first) out.push_back(',');
        first = false;
        put(out, table.columns[i].prefix);
        append_value(table.columns[i], *v, out);
    }
    out.push_back('}');
}

std::optional<std::string> record_key(const CdcTable& table, const pgoutput::Tuple& row,
                                      const pgoutput::Tuple* old_row) {
    check_width(table, row);
    if (table.key.empty()) return std::nullopt;
    if (table.key.size() == 1) {
        const pgoutput::Value* v = value_of(row, old_row, table.key[0]);
        if (!v || v->kind == pgoutput::ValueKind::Null) return std::nullopt;
        return std::string(v->bytes);
    }
    std::vector<char> out{'{'};
    for (size_t k = 0; k < table.key.size(); ++k) {
        if (k) out.push_back(',');
        const auto& column = table.columns[table.key[k]];
        put(out, column.prefix);
        const pgoutput::Value* v = value_of(row, old_row, table.key[k]);
        if (v)
            append_value(column, *v, out);
        else
            put(out, "null");
    }
    out.push_back('}');
    return std::string(out.begin(), out.end());
}

void append_debezium(const CdcTable& table, const ChangeSource& source, std::string_view before,
                     std::string_view after, const std::string& database,
                     const std::string& pipeline, std::vector<char>& out) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    put(out, "{\"before\":");
    put(out, before.empty() ? "null" : before);
    put(out, ",\"after\":");
    put(out, after.empty() ? "null" : after);
    put(out, ",\"source\":{\"version\":\"kbridge-" KBRIDGE_VERSION
             "\",\"connector\":\"postgresql\",\"name\":");
    append_json_string(pipeline, out);
    put(out, ",\"ts_ms\":" + std::to_string(source.commit_ms) + ",\"snapshot\":");
    put(out, source.snapshot ? "\"true\"" : "\"false\"");
    put(out, ",\"db\":");
    append_json_string(database, out);
    put(out, ",\"schema\":");
    append_json_string(table.schema, out);
    put(out, ",\"table\":");
    append_json_string(table.name, out);
    put(out, ",\"txId\":" + (source.xid ? std::to_string(source.xid) : std::string("null")));
    put(out,
        ",\"lsn\":" + std::to_string(source.change_lsn ? source.change_lsn : source.commit_lsn));
    put(out, "},\"op\":\"");
    out.push_back(source.op);
    put(out, "\",\"ts_ms\":" + std::to_string(now_ms) + "}");
}

}  // namespace kbridge
