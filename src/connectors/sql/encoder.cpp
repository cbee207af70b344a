#include "connectors/sql/encoder.h"

#include <algorithm>

namespace kbridge {
namespace {

// A JSON array as a PostgreSQL array literal: {1,2,NULL}, {"a b","c\"d"}, {{1,2},{3,4}}.
void append_array_literal(std::string& out, json::Value array) {
    out += '{';
    bool first = true;
    std::string text;
    for (const json::Member element : array.children()) {
        if (!first) out += ',';
        first = false;
        const json::Value e = element.value;
        switch (e.kind()) {
            case json::Kind::Null:
                out += "NULL";
                break;
            case json::Kind::Array:
                append_array_literal(out, e);
                break;
            case json::Kind::Bool:
            case json::Kind::Number:
                out += e.raw();
                break;
            default:
                text.clear();
                e.append_text(text);
                out += '"';
                for (const char c : text) {
                    if (c == '"' || c == '\\') out += '\\';
                    out += c;
                }
                out += '"';
        }
    }
    out += '}';
}

}  // namespace

SqlBatch::Cell& RowEncoder::cell(size_t column) {
    return batch_->cells[batch_->rows.size() * batch_->width + column];
}

void RowEncoder::put_cell(size_t column, std::optional<std::string_view> text) {
    SqlBatch::Cell& c = cell(column);
    if (!text) {
        c.length = SqlBatch::kNull;
        return;
    }
    c.begin = static_cast<uint32_t>(batch_->text.size());
    batch_->text += *text;
    c.length = static_cast<int32_t>(text->size());
}

void RowEncoder::put_json(size_t column, json::Value value) {
    switch (value.kind()) {
        case json::Kind::Null:
            put_cell(column, std::nullopt);
            return;
        case json::Kind::String:
            put_cell(column, value.string(scratch_));
            return;
        case json::Kind::Bool:
        case json::Kind::Number:  // as written
            put_cell(column, value.raw());
            return;
        case json::Kind::Array:
            if (shape_.columns[column].is_array) {
                scratch_.clear();
                append_array_literal(scratch_, value);
                put_cell(column, scratch_);
                return;
            }
            [[fallthrough]];
        default:
            scratch_.clear();
            value.append_json(scratch_);
            put_cell(column, scratch_);  // json, jsonb, or text
    }
}

bool RowEncoder::encode(const Record& record, const json::Value* fields, SqlBatch& batch,
                        Rejection& why) {
    batch_ = &batch;
    const bool tombstone = !record.value;
    const size_t text_mark = batch.text.size();
    batch.cells.resize((batch.rows.size() + 1) * batch.width);
    const bool ok = (tombstone || encode_value(fields, record, why)) &&
                    (shape_.keys.empty() || (settings_.mode == SqlMode::Insert && !tombstone) ||
                     encode_key(record, why));
    // What the table's definition settles is refused here, like a record that cannot be encoded:
    // the rest of the batch takes the fast path, and the refused one goes to the dead letter
    // (which an exactly_once commit waits for) with the database's wording.
    std::string refusal;
    if (ok && !tombstone) refusal = precheck();
    if (ok && refusal.empty()) return true;
    batch.cells.resize(batch.rows.size() * batch.width);
    batch.text.resize(text_mark);
    if (!refusal.empty()) why = {"database", std::move(refusal)};
    return false;
}

bool RowEncoder::encode_value(const json::Value* fields, const Record& record, Rejection& why) {
    const auto& columns = shape_.columns;
    if (!settings_.column_templates.empty()) {
        for (const auto& [column, tmpl] : settings_.column_templates) {
            scratch_.clear();
            if (!tmpl.render(record, fields, scratch_, error_)) {
                why = {"template", "column " + column + ": " + error_};
                return false;
            }
            size_t index = 0;
            while (columns[index].name != column) ++index;
            const std::string text = scratch_;
            put_cell(index, text);
        }
        // Where rows are found by key, key columns the mapping leaves out come from the value's
        // field of that name, else (in encode_key) from the record key.
        if (settings_.mode == SqlMode::Insert) return true;
        for (size_t k : shape_.keys) {
            json::Value value;
            if (cell(k).length == SqlBatch::kAbsent && fields &&
                fields->find(columns[k].name, value) && !value.is_null())
                put_json(k, value);
        }
        return true;
    }
    if (!fields || !fields->is_object()) {
        why = {"not_object",
               "the value is not a JSON object, so no field names a column of " + settings_.table};
        return false;
    }
    bool any = false;
    size_t next = 0;  // fields mostly come in the order of the columns: try the next one first
    std::string name_scratch;
    for (const json::Member field : fields->children()) {
        const std::string_view name = field.key.string(name_scratch);
        size_t i = next;
        if (i >= columns.size() || columns[i].name != name) {
            i = 0;
            while (i < columns.size() && columns[i].name != name) ++i;
            if (i == columns.size()) continue;
        }
        put_json(i, field.value);
        any = true;
        next = i + 1;
    }
    if (!any) why = {"no_columns", "no field of the record names a column of " + settings_.table};
    return any;
}

// Key columns the value did not give (or gave as null) come from the record's key: a JSON
// object naming them, or the single key column's value; else the record is refused.
bool RowEncoder::encode_key(const Record& record, Rejection& why) {
    const auto& columns = shape_.columns;
    std::vector<size_t> missing;
    for (size_t k : shape_.keys)
        if (cell(k).length == SqlBatch::kAbsent || cell(k).length == SqlBatch::kNull)
            missing.push_back(k);
    if (missing.empty()) return true;
    if (!record.key) {
        why = {"missing_key",
               "no value for key column " + columns[missing[0]].name + " (and no record key)"};
        return false;
    }
    json::Value object;
    if (!record.key->empty() && record.key->front() == '{' &&
        key_decoder_.decode(*record.key, object, error_)) {
        for (size_t k : missing) {
            json::Value value;
            if (!object.find(columns[k].name, value)) {
                why = {"missing_key", "the record key names no " + columns[k].name};
                return false;
            }
            put_json(k, value);
        }
        return true;
    }
    if (shape_.keys.size() != 1) {
        why = {"missing_key", "the key of " + settings_.table +
                                  " has several columns: the record key must be a JSON object"};
        return false;
    }
    put_cell(shape_.keys[0], *record.key);
    return true;
}

// What the table is sure to refuse, found from its definition instead of a round trip each: a
// NULL in a NOT NULL column, and text without a digit for an integer column (every integer a
// database reads has one). Anything less certain is left to the database.
std::string RowEncoder::precheck() const {
    const SqlBatch& b = *batch_;
    const SqlBatch::Cell* cells = &b.cells[b.rows.size() * b.width];
    for (size_t c = 0; c < shape_.columns.size(); ++c) {
        const SqlColumn& column = shape_.columns[c];
        const SqlBatch::Cell& cell = cells[c];
        if (shape_.check_nulls && column.refuses_null &&
            (cell.length == SqlBatch::kNull ||
             (cell.length == SqlBatch::kAbsent && !column.has_default)))
            return "null value in column \"" + column.name + "\" of relation \"" + settings_.table +
                   "\" violates not-null constraint (" +
                   (cell.length == SqlBatch::kNull ? "the record's value is null"
                                                   : "the record has none") +
                   "; found by kbridge before sending)";
        if (!column.integer_type.empty() && cell.length > 0) {
            const std::string_view text(b.text.data() + cell.begin,
                                        static_cast<size_t>(cell.length));
            if (std::none_of(text.begin(), text.end(),
                             [](char ch) { return ch >= '0' && ch <= '9'; }))
                return "invalid input syntax for type " + column.integer_type + ": \"" +
                       std::string(text.substr(0, 200)) + "\" (column \"" + column.name +
                       "\"; found by kbridge before sending)";
        }
    }
    return {};
}

}  // namespace kbridge
