#pragma once
// Builds each row's JSON object in kbridge, byte for byte as PostgreSQL's row_to_json would, from
// the columns' text output: PostgreSQL then only sends plain columns, which costs it a third of
// building the JSON itself. Types whose JSON form is more than their text output (timestamps,
// arrays, intervals, bytea, domains, ...) come already converted by to_json().
#include <libpq-fe.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbridge {

class RowJson {
  public:
    enum class Kind { Number, Bool, String, Json };
    struct Column {
        std::string name;
        Kind kind;
    };
    // How a column of this type is sent: as its text output, or (false) as to_json(column).
    static bool sent_as_text(Oid type);
    static Kind kind_of(Oid type);

    explicit RowJson(std::vector<Column> columns);
    // Appends {"name":value,...} for one row; `values[i]` is none for NULL.
    void append(const std::vector<std::optional<std::string_view>>& values, size_t first,
                std::vector<char>& out) const;
    size_t size() const { return columns_.size(); }

  private:
    std::vector<Column> columns_;
    std::vector<std::string> prefixes_;  // ,"name": (escaped), the first without the comma
};

// PostgreSQL's escape_json: a quoted JSON string.
void append_json_string(std::string_view text, std::vector<char>& out);
// Whether PostgreSQL's IsValidJsonNumber would take the text as it is.
bool is_json_number(std::string_view text);

}  // namespace kbridge
