#include "connectors/postgres_cdc/text_json.h"

#include <cctype>
#include <string>

#include "connectors/postgres/row_json.h"

namespace kbridge {
namespace {

// Type OIDs from PostgreSQL's pg_type.dat: stable across versions.
enum : Oid {
    kBool = 16,
    kInt8 = 20,
    kInt2 = 21,
    kInt4 = 23,
    kJson = 114,
    kJsonArray = 199,
    kFloat4 = 700,
    kFloat8 = 701,
    kBoolArray = 1000,
    kInt2Array = 1005,
    kInt4Array = 1007,
    kTextArray = 1009,
    kVarcharArray = 1015,
    kInt8Array = 1016,
    kFloat4Array = 1021,
    kFloat8Array = 1022,
    kTimestamp = 1114,
    kTimestampArray = 1115,
    kDateArray = 1182,
    kTimestampTz = 1184,
    kTimestampTzArray = 1185,
    kNumericArray = 1231,
    kNumeric = 1700,
    kUuidArray = 2951,
    kJsonb = 3802,
    kJsonbArray = 3807,
};

void put(std::vector<char>& out, std::string_view s) {
    out.insert(out.end(), s.begin(), s.end());
}

JsonKind scalar_kind(Oid type) {
    switch (type) {
        case kInt2:
        case kInt4:
        case kInt8:
        case kFloat4:
        case kFloat8:
        case kNumeric:
            return JsonKind::Number;
        case kBool:
            return JsonKind::Bool;
        case kJson:
        case kJsonb:
            return JsonKind::Json;
        case kTimestamp:
            return JsonKind::Timestamp;
        case kTimestampTz:
            return JsonKind::TimestampTz;
        default:
            return JsonKind::String;
    }
}

bool is_finite_timestamp(std::string_view text) {
    return text != "infinity" && text != "-infinity";
}

// "2024-02-29 23:59:59.5" -> "2024-02-29T23:59:59.5" (the first space joins date and time; a
// BC suffix keeps its space).
void append_timestamp(std::string_view text, bool with_zone, std::vector<char>& out) {
    if (!is_finite_timestamp(text)) {
        append_json_string(text, out);
        return;
    }
    std::string s(text);
    const size_t space = s.find(' ');
    if (space != std::string::npos) s[space] = 'T';
    if (with_zone && space != std::string::npos) {
        // The offset follows the time: ISO writes +HH, +HH:MM or +HH:MM:SS; JSON always has
        // the minutes.
        const size_t sign = s.find_first_of("+-", space);
        if (sign != std::string::npos) {
            size_t end = sign + 1;
            while (end < s.size() &&
                   (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == ':'))
                ++end;
            if (s.find(':', sign) >= end) s.insert(end, ":00");
        }
    }
    append_json_string(s, out);
}

void append_scalar(JsonKind kind, std::string_view text, std::vector<char>& out) {
    switch (kind) {
        case JsonKind::Number:
            if (is_json_number(text))
                put(out, text);
            else
                append_json_string(text, out);
            return;
        case JsonKind::Bool:
            put(out, text == "t" || text == "true" ? "true" : "false");
            return;
        case JsonKind::Json:
            put(out, text);
            return;
        case JsonKind::Timestamp:
        case JsonKind::TimestampTz:
            append_timestamp(text, kind == JsonKind::TimestampTz, out);
            return;
        case JsonKind::Array:  // not a scalar: shown as its text
        case JsonKind::String:
            append_json_string(text, out);
            return;
    }
}

// An array's text output, {...} with nested braces for more dimensions. Elements are quoted
// (backslash escapes inside) or bare (NULL is a null). False when the text is not such an
// array (e.g. "[0:2]={...}" with explicit bounds): the caller then sends it as a string.
class ArrayText {
  public:
    ArrayText(std::string_view text, JsonKind element, char delimiter)
        : text_(text), element_(element), delimiter_(delimiter) {}

    bool append(std::vector<char>& out) {
        const size_t mark = out.size();
        if (!level(out) || at_ != text_.size()) {
            out.resize(mark);
            return false;
        }
        return true;
    }

  private:
    bool level(std::vector<char>& out) {
        if (at_ >= text_.size() || text_[at_] != '{') return false;
        ++at_;
        out.push_back('[');
        if (at_ < text_.size() && text_[at_] == '}') {
            ++at_;
            out.push_back(']');
            return true;
        }
        for (bool first = true;; first = false) {
            if (!first) out.push_back(',');
            if (at_ >= text_.size()) return false;
            if (text_[at_] == '{') {
                if (!level(out)) return false;
            } else if (!element(out)) {
                return false;
            }
            if (at_ >= text_.size()) return false;
            if (text_[at_] == '}') {
                ++at_;
                out.push_back(']');
                return true;
            }
            if (text_[at_] != delimiter_) return false;
            ++at_;
        }
    }

    bool element(std::vector<char>& out) {
        std::string value;
        bool quoted = false;
        if (text_[at_] == '"') {
            quoted = true;
            ++at_;
            for (;;) {
                if (at_ >= text_.size()) return false;
                const char c = text_[at_++];
                if (c == '"') break;
                if (c == '\\') {
                    if (at_ >= text_.size()) return false;
                    value += text_[at_++];
                } else {
                    value += c;
                }
            }
        } else {
            while (at_ < text_.size() && text_[at_] != delimiter_ && text_[at_] != '}') {
                const char c = text_[at_++];
                if (c == '{' || c == '"') return false;
                if (c == '\\') {
                    if (at_ >= text_.size()) return false;
                    value += text_[at_++];
                } else {
                    value += c;
                }
            }
            if (value.empty()) return false;
        }
        if (!quoted && value == "NULL")
            put(out, "null");
        else
            append_scalar(element_, value, out);
        return true;
    }

    std::string_view text_;
    JsonKind element_;
    char delimiter_;
    size_t at_ = 0;
};

}  // namespace

std::optional<JsonType> builtin_json_type(Oid type) {
    auto array_of = [](Oid element) {
        return JsonType{JsonKind::Array, scalar_kind(element), ','};
    };
    switch (type) {
        case kBoolArray:
            return array_of(kBool);
        case kInt2Array:
            return array_of(kInt2);
        case kInt4Array:
            return array_of(kInt4);
        case kInt8Array:
            return array_of(kInt8);
        case kFloat4Array:
            return array_of(kFloat4);
        case kFloat8Array:
            return array_of(kFloat8);
        case kNumericArray:
            return array_of(kNumeric);
        case kJsonArray:
            return array_of(kJson);
        case kJsonbArray:
            return array_of(kJsonb);
        case kTimestampArray:
            return array_of(kTimestamp);
        case kTimestampTzArray:
            return array_of(kTimestampTz);
        case kTextArray:
        case kVarcharArray:
        case kDateArray:
        case kUuidArray:
            return JsonType{JsonKind::Array, JsonKind::String, ','};
        default:
            break;
    }
    // Types below FirstGenbkiObjectId (10000) are built in; their arrays are listed above or
    // left to the catalog.
    if (type < 10000 && scalar_kind(type) != JsonKind::String) return JsonType{scalar_kind(type)};
    return std::nullopt;
}

JsonKind json_kind_of_base(Oid base_type) {
    return scalar_kind(base_type);
}

void append_text_as_json(const JsonType& type, std::string_view text, std::vector<char>& out) {
    if (type.kind == JsonKind::Array) {
        ArrayText array(text, type.element, type.delimiter);
        if (!array.append(out)) append_json_string(text, out);
        return;
    }
    append_scalar(type.kind, text, out);
}

}  // namespace kbridge
