#include "connectors/postgres/row_json.h"

#include <cctype>
#include <cstdio>

namespace kbridge {
namespace {

// Type OIDs from PostgreSQL's pg_type.dat: stable across versions.
constexpr Oid kBool = 16, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25, kJson = 114,
              kFloat4 = 700, kFloat8 = 701, kVarchar = 1043, kNumeric = 1700, kUuid = 2950,
              kJsonb = 3802;

void append(std::vector<char>& out, std::string_view text) {
    out.insert(out.end(), text.begin(), text.end());
}

}  // namespace

bool RowJson::sent_as_text(Oid type) {
    switch (type) {
        // Not char(n): its cast to text drops the padding row_to_json keeps.
        case kBool:
        case kName:
        case kInt8:
        case kInt2:
        case kInt4:
        case kText:
        case kJson:
        case kFloat4:
        case kFloat8:
        case kVarchar:
        case kNumeric:
        case kUuid:
        case kJsonb:
            return true;
        default:
            return false;
    }
}

RowJson::Kind RowJson::kind_of(Oid type) {
    switch (type) {
        case kInt8:
        case kInt2:
        case kInt4:
        case kFloat4:
        case kFloat8:
        case kNumeric:
            return Kind::Number;
        case kBool:
            return Kind::Bool;
        case kJson:
        case kJsonb:
            return Kind::Json;
        case kName:
        case kText:
        case kVarchar:
        case kUuid:
            return Kind::String;
        default:
            return Kind::Json;  // sent as to_json(column): already JSON
    }
}

RowJson::RowJson(std::vector<Column> columns) : columns_(std::move(columns)) {
    for (size_t i = 0; i < columns_.size(); ++i) {
        std::vector<char> prefix;
        if (i) prefix.push_back(',');
        append_json_string(columns_[i].name, prefix);
        prefix.push_back(':');
        prefixes_.emplace_back(prefix.begin(), prefix.end());
    }
}

void RowJson::append(const std::vector<std::optional<std::string_view>>& values, size_t first,
                     std::vector<char>& out) const {
    out.push_back('{');
    for (size_t i = 0; i < columns_.size(); ++i) {
        kbridge::append(out, prefixes_[i]);
        const auto& value = values[first + i];
        if (!value) {
            kbridge::append(out, "null");
            continue;
        }
        switch (columns_[i].kind) {
            case Kind::Number:
                if (is_json_number(*value))
                    kbridge::append(out, *value);
                else
                    append_json_string(*value, out);  // NaN, Infinity
                break;
            case Kind::Bool:
                kbridge::append(out, *value);
                break;  // bool::text is true or false
            case Kind::String:
                append_json_string(*value, out);
                break;
            case Kind::Json:
                kbridge::append(out, *value);
                break;
        }
    }
    out.push_back('}');
}

void append_json_string(std::string_view text, std::vector<char>& out) {
    out.push_back('"');
    for (const char c : text) {
        switch (c) {
            case '\b':
                kbridge::append(out, "\\b");
                break;
            case '\f':
                kbridge::append(out, "\\f");
                break;
            case '\n':
                kbridge::append(out, "\\n");
                break;
            case '\r':
                kbridge::append(out, "\\r");
                break;
            case '\t':
                kbridge::append(out, "\\t");
                break;
            case '"':
                kbridge::append(out, "\\\"");
                break;
            case '\\':
                kbridge::append(out, "\\\\");
                break;
            default:
                if (static_cast<unsigned char>(c) < ' ') {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<int>(c));
                    kbridge::append(out, escaped);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

bool is_json_number(std::string_view text) {
    size_t i = 0;
    auto digits = [&] {
        const size_t start = i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
        return i > start;
    };
    if (i < text.size() && text[i] == '-') ++i;
    if (i < text.size() && text[i] == '0')
        ++i;
    else if (!digits())
        return false;
    if (i < text.size() && text[i] == '.') {
        ++i;
        if (!digits()) return false;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
        if (!digits()) return false;
    }
    return i == text.size();
}

}  // namespace kbridge
