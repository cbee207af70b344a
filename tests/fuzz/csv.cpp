// csv_to_json and csv_from_fields. The first input bytes choose the delimiter, the quote and the
// number of columns; the rest is the line. Properties:
// - a line that converts gives a JSON object our decoder reads, with one string per column;
// - writing that object back as a line (csv_from_fields) and converting again gives the same
//   object;
// - when the rest is a JSON object, csv_from_fields writes a line that converts to the text of
//   each column's value (missing and null: empty).
#include "formats/csv.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "formats/json.h"

namespace {

using kbridge::CsvFormat;
using kbridge::json::Value;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "csv: %s\n", what);
    std::abort();
}

// Distinct names (csv_from_fields looks columns up by name), some needing JSON escapes.
const char* const kColumns[] = {"id",          "name",        "city",      "q\"uote",
                                "back\\slash", "caf\xc3\xa9", "tab\tname", "x"};

// The rules of parse_format: one character, not a line break; the quote not the delimiter.
bool choose_format(std::string_view& input, CsvFormat& format) {
    if (input.size() < 3) return false;
    static const char kDelimiters[] = {',', ';', '\t', '|', ' ', '"'};
    static const char kQuotes[] = {'"', '\'', ',', '|'};
    const auto d = static_cast<unsigned char>(input[0]);
    const auto q = static_cast<unsigned char>(input[1]);
    const auto n = static_cast<unsigned char>(input[2]);
    input.remove_prefix(3);
    // Mostly the usual characters; sometimes the byte itself.
    format.delimiter = d < 0xC0 ? kDelimiters[d % sizeof kDelimiters] : static_cast<char>(d & 0x7F);
    format.quote = q < 0xC0 ? kQuotes[q % sizeof kQuotes] : static_cast<char>(q & 0x7F);
    if (format.delimiter == '\n' || format.delimiter == '\r' || format.quote == format.delimiter)
        return false;
    format.columns.assign(kColumns, kColumns + 1 + n % (sizeof kColumns / sizeof *kColumns));
    return true;
}

// Checks `json` is an object of one string per column; the strings go to `fields`.
void read_object(const std::vector<char>& json, const CsvFormat& format,
                 kbridge::JsonDecoder& decoder, std::vector<std::string>& fields) {
    Value object;
    std::string error, scratch;
    if (!decoder.decode(std::string_view(json.data(), json.size()), object, error))
        finding("csv_to_json gave text our JSON decoder refuses");
    if (object.size() != format.columns.size()) finding("an object of another size than columns");
    fields.clear();
    size_t i = 0;
    for (const auto member : object.children()) {
        if (member.key.string(scratch) != format.columns[i++]) finding("a member is misnamed");
        if (!member.value.is_string()) finding("a field that is no string");
        fields.emplace_back(member.value.string(scratch));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    CsvFormat format;
    if (!choose_format(input, format)) return 0;
    static kbridge::JsonDecoder decoder, other;
    std::vector<char> json;
    std::string error;
    std::vector<std::string> fields, again;

    if (kbridge::csv_to_json(input, format, json, error)) {
        read_object(json, format, decoder, fields);
        Value object;
        decoder.decode(std::string_view(json.data(), json.size()), object, error);
        std::string line;
        kbridge::csv_from_fields(object, format, line);
        std::vector<char> json2;
        if (!kbridge::csv_to_json(line, format, json2, error))
            finding("csv_from_fields wrote a line csv_to_json refuses");
        read_object(json2, format, other, again);
        if (again != fields) finding("a line written back converts to other fields");
    } else {
        if (error.empty()) finding("refused without an error");
        if (!json.empty()) finding("a refused line left output behind");
    }

    Value object;
    if (!decoder.decode(input, object, error)) return 0;
    std::string line;
    kbridge::csv_from_fields(object, format, line);
    json.clear();
    if (!kbridge::csv_to_json(line, format, json, error))
        finding("csv_from_fields wrote a line csv_to_json refuses");
    read_object(json, format, other, again);
    for (size_t i = 0; i < format.columns.size(); ++i) {
        Value value;
        std::string text;
        if (object.find(format.columns[i], value) && !value.is_null()) value.append_text(text);
        if (again[i] != text) finding("a field written and read back is not its text");
    }
    return 0;
}
