#include "formats/csv.h"

#include "connectors/postgres/row_json.h"

namespace kbridge {

OptionTable with_csv_options(OptionTable table) {
    table.push_back(
        {"columns", OptionType::StringList, "", "csv: the names of the fields, in order"});
    table.push_back(
        {"delimiter", OptionType::String, ",", "csv: the field separator, one character"});
    table.push_back({"quote", OptionType::String, "\"", "csv: the quote character"});
    return table;
}

Format parse_format(const Options& options, CsvFormat& f) {
    const std::string format = options.str("format");
    const bool needed = format == "csv";
    const std::string delimiter = options.str("delimiter");
    const std::string quote = options.str("quote");
    if (delimiter.size() != 1 || delimiter == "\n" || delimiter == "\r")
        throw options.error("delimiter", "must be one character (not a line break)");
    if (quote.size() != 1 || quote == delimiter)
        throw options.error("quote", "must be one character, not the delimiter");
    f.delimiter = delimiter[0];
    f.quote = quote[0];
    f.columns = options.string_list("columns");
    if (needed && f.columns.empty())
        throw options.error("columns", "format csv needs the column names, e.g. [name, age, city]");
    if (!needed && options.has("columns"))
        throw options.error("columns", "columns name csv fields: set format: csv");
    return needed ? Format::Csv : format == "raw" ? Format::Raw : Format::Json;
}

bool csv_to_json(std::string_view line, const CsvFormat& format, std::vector<char>& out,
                 std::string& error) {
    const size_t mark = out.size();
    std::string field;
    size_t column = 0, at = 0;
    out.push_back('{');
    while (true) {
        field.clear();
        if (at < line.size() && line[at] == format.quote) {
            ++at;
            while (true) {
                if (at >= line.size()) {
                    out.resize(mark);
                    error =
                        "field " + std::to_string(column + 1) + " opens a quote that never closes";
                    return false;
                }
                if (line[at] == format.quote) {
                    if (at + 1 < line.size() && line[at + 1] == format.quote) {
                        field += format.quote;
                        at += 2;
                        continue;
                    }
                    ++at;
                    break;
                }
                field += line[at++];
            }
            if (at < line.size() && line[at] != format.delimiter) {
                out.resize(mark);
                error = "field " + std::to_string(column + 1) + " has text after its closing quote";
                return false;
            }
        } else {
            const size_t end = std::min(line.find(format.delimiter, at), line.size());
            field.assign(line.substr(at, end - at));
            at = end;
        }
        if (!json::valid_utf8(field)) {
            out.resize(mark);
            error = "field " + std::to_string(column + 1) + " is not valid UTF-8";
            return false;
        }
        if (column < format.columns.size()) {
            if (column) out.push_back(',');
            append_json_string(format.columns[column], out);
            out.push_back(':');
            append_json_string(field, out);
        }
        ++column;
        if (at >= line.size()) break;
        ++at;  // the delimiter
    }
    if (column != format.columns.size()) {
        out.resize(mark);
        error = std::to_string(column) + " fields where the columns name " +
                std::to_string(format.columns.size());
        return false;
    }
    out.push_back('}');
    return true;
}

void csv_from_fields(json::Value fields, const CsvFormat& format, std::string& out) {
    std::string text;
    for (size_t i = 0; i < format.columns.size(); ++i) {
        if (i) out += format.delimiter;
        json::Value value;
        if (!fields.find(format.columns[i], value) || value.is_null()) continue;
        text.clear();
        value.append_text(text);
        if (text.find_first_of(std::string{format.delimiter, format.quote, '\n', '\r'}) ==
            std::string::npos) {
            out += text;
            continue;
        }
        out += format.quote;
        for (const char c : text) {
            if (c == format.quote) out += format.quote;
            out += c;
        }
        out += format.quote;
    }
}

}  // namespace kbridge
