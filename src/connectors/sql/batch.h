#pragma once
// A batch of records encoded for a SQL table: one cell of plain text per column and record (its
// value as the database reads it from text), the record's place in Kafka, and its original bytes
// for the dead letter. Dialects read it to build their statements or bulk loads.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/sql/dialect.h"

namespace kbridge {

struct BatchState;

class SqlBatch {
  public:
    static constexpr int32_t kNull = -1, kAbsent = -2;  // Cell::length of a NULL, of no value
    struct Cell {
        uint32_t begin = 0;
        int32_t length = kAbsent;
    };
    struct Bytes {  // in originals: [begin, begin + length); -1: none
        size_t begin = 0;
        int64_t length = -1;
    };
    struct Row {
        BatchState* batch;
        bool tombstone;
        uint32_t topic;  // index into the sink's topic names
        int32_t partition;
        int64_t offset;
        Bytes key, value;
    };

    explicit SqlBatch(const std::vector<std::string>* topics = nullptr) : topics_(topics) {}

    size_t size() const { return rows.size(); }
    bool empty() const { return rows.empty(); }
    bool tombstone(size_t r) const { return rows[r].tombstone; }
    const std::string& topic(size_t r) const { return (*topics_)[rows[r].topic]; }
    int32_t partition(size_t r) const { return rows[r].partition; }
    int64_t offset(size_t r) const { return rows[r].offset; }
    const Cell& cell(size_t r, size_t column) const { return cells[r * width + column]; }
    bool absent(size_t r, size_t column) const { return cell(r, column).length == kAbsent; }
    // The column's text; nullopt for NULL (or no value).
    std::optional<std::string_view> value(size_t r, size_t column) const {
        const Cell& c = cell(r, column);
        if (c.length < 0) return std::nullopt;
        return std::string_view(text.data() + c.begin, static_cast<size_t>(c.length));
    }
    std::optional<std::string_view> original_key(size_t r) const { return view(rows[r].key); }
    std::optional<std::string_view> original_value(size_t r) const { return view(rows[r].value); }
    // The columns some record of `records` gives (key columns always, outside insert mode).
    std::vector<size_t> used_columns(const std::vector<size_t>& records, SqlMode mode,
                                     const std::vector<size_t>& keys) const;
    // The partitions of `records`.
    TopicPartitions partitions(const std::vector<size_t>& records) const;

    void clear() {  // keeps the capacity, for the next batch
        rows.clear();
        cells.clear();
        text.clear();
        originals.clear();
    }

    size_t width = 0;  // columns per record
    std::vector<Row> rows;
    std::vector<Cell> cells;  // width per record
    std::string text, originals;

  private:
    std::optional<std::string_view> view(Bytes b) const {
        if (b.length < 0) return std::nullopt;
        return std::string_view(originals).substr(b.begin, static_cast<size_t>(b.length));
    }
    const std::vector<std::string>* topics_;
};

// The last record of each key among `records`, in their order: a later record of a key replaces
// an earlier one, a tombstone included. Keys are compared by their text.
std::vector<size_t> last_per_key(const SqlBatch& batch, const std::vector<size_t>& records,
                                 const std::vector<size_t>& keys);

}  // namespace kbridge
