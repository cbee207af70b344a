#pragma once
// Records to a SqlBatch's cells: fields named like columns (or the `columns` templates), key
// columns from the value or the record key, and what the table's definition is sure to refuse
// found before sending.
#include <optional>
#include <string>
#include <string_view>

#include "connectors/sql/batch.h"
#include "connectors/sql/settings.h"
#include "core/record.h"
#include "formats/json.h"

namespace kbridge {

class RowEncoder {
  public:
    RowEncoder(const SqlSettings& settings, const TableShape& shape)
        : settings_(settings), shape_(shape) {}
    // Appends the record's cells to `batch` (the row itself is the caller's to add). False, with
    // `why`, when the record cannot be written; the cells are then taken back.
    bool encode(const Record& record, const json::Value* fields, SqlBatch& batch, Rejection& why);

  private:
    bool encode_value(const json::Value* fields, const Record& record, Rejection& why);
    bool encode_key(const Record& record, Rejection& why);
    std::string precheck() const;
    SqlBatch::Cell& cell(size_t column);
    void put_cell(size_t column, std::optional<std::string_view> text);
    void put_json(size_t column, json::Value value);

    const SqlSettings& settings_;
    const TableShape& shape_;
    SqlBatch* batch_ = nullptr;  // being appended to
    std::string scratch_, error_;
    JsonDecoder key_decoder_;  // record keys that are JSON objects naming key columns
};

}  // namespace kbridge
