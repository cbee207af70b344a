#include "formats/template.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace kbridge {
namespace {

// Finds fields in a decoded value.
class ValueLookup : public FieldLookup {
  public:
    explicit ValueLookup(const json::Value& fields) : fields_(fields) {}
    bool find(const std::vector<std::string>& path, json::Value& out) override {
        out = fields_;
        for (const auto& part : path)
            if (!out.find(part, out)) return false;
        return true;
    }

  private:
    const json::Value& fields_;
};

Template::Formatter parse_formatter(const std::string& name, const std::string& text) {
    if (name == "date") return Template::Formatter::Date;
    if (name == "upper") return Template::Formatter::Upper;
    if (name == "lower") return Template::Formatter::Lower;
    if (name == "json") return Template::Formatter::Json;
    throw std::invalid_argument("unknown formatter ':" + name + "' in template '" + text +
                                "' (known: date, upper, lower, json)");
}

// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's civil_from_days): what
// gmtime_r computes, without its lock and time zone machinery, for years 1970 to 9999.
void append_day(int64_t days, std::string& out) {
    const int64_t z = days + 719468;  // days since 0000-03-01, never negative here
    const int64_t era = z / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const int64_t year = yoe + era * 400 + (month <= 2);
    const char text[10] = {static_cast<char>('0' + year / 1000),
                           static_cast<char>('0' + year / 100 % 10),
                           static_cast<char>('0' + year / 10 % 10),
                           static_cast<char>('0' + year % 10),
                           '-',
                           static_cast<char>('0' + month / 10),
                           static_cast<char>('0' + month % 10),
                           '-',
                           static_cast<char>('0' + day / 10),
                           static_cast<char>('0' + day % 10)};
    out.append(text, sizeof text);
}

// A number's text as milliseconds, as strtoll reads it whole; false for a fraction, an
// exponent or a value past int64_t.
bool parse_ms(std::string_view text, long long& ms) {
    const bool negative = !text.empty() && text[0] == '-';
    if (negative) text.remove_prefix(1);
    if (text.empty()) return false;
    const unsigned long long limit =
        static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + negative;
    const bool may_overflow = text.size() >= 19;
    unsigned long long value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        const unsigned digit = static_cast<unsigned>(c - '0');
        if (may_overflow && value > (limit - digit) / 10) return false;  // ERANGE
        value = value * 10 + digit;
    }
    ms = negative ? static_cast<long long>(0 - value) : static_cast<long long>(value);
    return true;
}

// An ISO date from milliseconds since the epoch (a number's text) or from an ISO 8601 text
// (its first ten characters); false when the text is neither.
bool format_date(std::string_view text, bool is_number, std::string& out) {
    if (!is_number) {
        const bool iso = text.size() >= 10 && text[4] == '-' && text[7] == '-' &&
                         std::isdigit(static_cast<unsigned char>(text[0])) &&
                         std::isdigit(static_cast<unsigned char>(text[5])) &&
                         std::isdigit(static_cast<unsigned char>(text[8]));
        if (iso) out.append(text.substr(0, 10));
        return iso;
    }
    long long ms;
    if (!parse_ms(text, ms)) return false;
    const time_t seconds = static_cast<time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
    constexpr time_t kYear10000 = 253402300800;  // 10000-01-01T00:00:00Z
    if (seconds >= 0 && seconds < kYear10000) {
        append_day(seconds / 86400, out);
        return true;
    }
    struct tm utc {};
    if (!gmtime_r(&seconds, &utc)) return false;
    char day[32];
    std::snprintf(day, sizeof day, "%04d-%02d-%02d", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday);
    out += day;
    return true;
}

}  // namespace

Template::Template(const std::string& text) : text_(text) {
    std::string literal;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
            literal += c;
            ++i;
            continue;
        }
        if (c == '}')
            throw std::invalid_argument("'}' without '{' in template '" + text +
                                        "' (write '}}' for a literal brace)");
        if (c != '{') {
            literal += c;
            continue;
        }
        const size_t close = text.find('}', i);
        if (close == std::string::npos)
            throw std::invalid_argument("unclosed '{' in template '" + text + "'");
        std::string name = text.substr(i + 1, close - i - 1);
        Segment s{Kind::Field, "", {}, Formatter::None, std::nullopt};
        if (const size_t dash = name.find(":-"); dash != std::string::npos) {
            s.fallback = name.substr(dash + 2);
            name.resize(dash);
        }
        if (const size_t colon = name.find(':'); colon != std::string::npos) {
            s.formatter = parse_formatter(name.substr(colon + 1), text);
            name.resize(colon);
        }
        if (name.empty())
            throw std::invalid_argument("empty field name '{}' in template '" + text + "'");
        if (!literal.empty())
            segments_.push_back(
                {Kind::Literal, std::move(literal), {}, Formatter::None, std::nullopt});
        literal.clear();
        s.literal = name;
        if (name == "_key")
            s.kind = Kind::Key;
        else if (name == "_topic")
            s.kind = Kind::Topic;
        else if (name == "_partition")
            s.kind = Kind::Partition;
        else if (name == "_offset")
            s.kind = Kind::Offset;
        else if (name == "_timestamp")
            s.kind = Kind::Timestamp;
        else if (name == "_id")  // redis_stream's entry ID
            s.kind = Kind::Header, s.literal = "kbridge.redis.id", s.path = {name, "redis_stream"};
        else if (name == "_schema" || name == "_table" || name == "_op" || name == "_lsn")
            s.kind = Kind::Header, s.literal = "kbridge." + name.substr(1),
            s.path = {name, "postgres_cdc"};
        else {
            size_t start = 0;
            while (true) {
                const size_t dot = name.find('.', start);
                std::string part = name.substr(start, dot == std::string::npos ? dot : dot - start);
                if (part.empty())
                    throw std::invalid_argument("empty part in field name '" + name +
                                                "' in template '" + text + "'");
                s.path.push_back(std::move(part));
                if (dot == std::string::npos) break;
                start = dot + 1;
            }
        }
        segments_.push_back(std::move(s));
        i = close;
    }
    if (!literal.empty())
        segments_.push_back({Kind::Literal, std::move(literal), {}, Formatter::None, std::nullopt});
}

bool Template::needs_fields() const {
    for (const auto& s : segments_)
        if (s.kind == Kind::Field) return true;
    return false;
}

const std::vector<std::string>* Template::lone_field(std::optional<std::string>* fallback) const {
    if (segments_.size() != 1 || segments_[0].kind != Kind::Field ||
        segments_[0].formatter != Formatter::None)
        return nullptr;
    if (fallback) *fallback = segments_[0].fallback;
    return &segments_[0].path;
}

bool Template::render(const Record& record, const json::Value* fields, std::string& out,
                      std::string& error) const {
    if (!fields) return render(record, static_cast<FieldLookup*>(nullptr), out, error);
    ValueLookup lookup(*fields);
    return render(record, &lookup, out, error);
}

bool Template::render(const Record& record, FieldLookup* lookup, std::string& out,
                      std::string& error) const {
    for (const auto& s : segments_)
        if (!render_segment(s, record, lookup, out, error)) return false;
    return true;
}

bool Template::render_segment(const Segment& s, const Record& record, FieldLookup* lookup,
                              std::string& out, std::string& error) const {
    if (s.kind == Kind::Literal) {
        out += s.literal;
        return true;
    }
    // The text to format, and whether it is a number (for :date and :json); `text` views the
    // record, its value or `copy`.
    std::string_view text;
    std::string copy;
    bool number = false;
    json::Value value;
    switch (s.kind) {
        case Kind::Literal:
            break;
        case Kind::Key:
            if (!record.key) {
                if (s.fallback) return (out += *s.fallback, true);
                error = "the record has no key for {_key}";
                return false;
            }
            text = *record.key;
            break;
        case Kind::Topic:
            text = record.topic;
            break;
        case Kind::Partition:
            text = copy = std::to_string(record.partition);
            number = true;
            break;
        case Kind::Offset:
            text = copy = std::to_string(record.offset);
            number = true;
            break;
        case Kind::Timestamp:
            text = copy = std::to_string(record.timestamp);
            number = true;
            break;
        case Kind::Header: {
            const auto found = std::find_if(record.headers.begin(), record.headers.end(),
                                            [&](const Header& h) { return h.name == s.literal; });
            if (found == record.headers.end()) {
                if (s.fallback) return (out += *s.fallback, true);
                error = "the record has no " + s.literal + " header for {" + s.path[0] +
                        "} (only " + s.path[1] + " sets it)";
                return false;
            }
            text = found->value;
            break;
        }
        case Kind::Field: {
            if (!lookup) {
                error = "field '" + s.literal + "' needs format: json";
                return false;
            }
            const bool found = lookup->find(s.path, value);
            if (!found || (value.is_null() && s.formatter != Formatter::Json)) {
                if (s.fallback) return (out += *s.fallback, true);
                error = found ? "field '" + s.literal + "' is null"
                              : "missing field '" + s.literal + "'";
                return false;
            }
            if (s.formatter == Formatter::None) {
                value.append_text(out);  // numbers as written, strings unescaped
                return true;
            }
            if (s.formatter == Formatter::Json) {
                value.append_json(out);
                return true;
            }
            number = value.kind() == json::Kind::Number;
            if (number) {
                text = value.raw();
            } else if (value.is_string()) {
                text = value.string(copy);
            } else {
                value.append_text(copy);
                text = copy;
            }
        }
    }
    switch (s.formatter) {
        case Formatter::None:
            out += text;
            break;
        case Formatter::Json:
            if (number)
                out += text;
            else
                json::append_quoted(text, out);
            break;
        case Formatter::Upper:
            for (char c : text)
                out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            break;
        case Formatter::Lower:
            for (char c : text)
                out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            break;
        case Formatter::Date:
            if (!format_date(text, number, out)) {
                error = "'" + s.literal + "' is '" + std::string(text.substr(0, 40)) +
                        "', not milliseconds since the epoch or an ISO date, for :date";
                return false;
            }
            break;
    }
    return true;
}

}  // namespace kbridge
