#pragma once
// `format: csv`: one record per line, fields named by `columns`, split at `delimiter`, with
// `quote` around fields that hold it, the delimiter or a line break (a doubled quote inside is one
// quote). Read, a line becomes the JSON object of its columns (all values strings: CSV has no
// types, and PostgreSQL coerces them); written, the columns of a record's fields become a line.
#include <string>
#include <string_view>
#include <vector>

#include "config/options.h"
#include "core/record.h"
#include "formats/json.h"

namespace kbridge {

struct CsvFormat {
    char delimiter = ',';
    char quote = '"';
    std::vector<std::string> columns;
};

// `table` with the options of `format: csv` added (columns, delimiter, quote).
OptionTable with_csv_options(OptionTable table);
// The block's `format` (json, raw or csv), filling `csv` from its csv options.
Format parse_format(const Options& options, CsvFormat& csv);

// Appends the line's JSON object to `out`; false with `error` naming the problem.
bool csv_to_json(std::string_view line, const CsvFormat& format, std::vector<char>& out,
                 std::string& error);
// Appends the line of the record's columns (missing or null: an empty field).
void csv_from_fields(json::Value fields, const CsvFormat& format, std::string& out);

}  // namespace kbridge
