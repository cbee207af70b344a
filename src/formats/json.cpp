#include "formats/json.h"

#include <cstring>
#include <limits>

namespace kbridge::json {
namespace {

constexpr int kMaxDepth = 512;

bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The bytes a string holds as they are: printable ASCII but the quote and the backslash.
struct PlainTable {
    bool plain[256] = {};
    constexpr PlainTable() {
        for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
    }
    constexpr bool operator[](unsigned char c) const { return plain[c]; }
};
constexpr PlainTable kPlain;

// Eight bytes at once: true if any is a quote, a backslash, a control character or not ASCII,
// the bytes a string scan has to look at one by one.
bool any_special(uint64_t word) {
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\');
    const uint64_t zero_quote = (quote - ones) & ~quote & highs;
    const uint64_t zero_backslash = (backslash - ones) & ~backslash & highs;
    const uint64_t control = (word - ones * 0x20) & ~word & highs;
    return (zero_quote | zero_backslash | control | (word & highs)) != 0;
}

class Parser {
  public:
    Parser(std::string_view text, std::vector<Node>& nodes)
        : begin_(text.data()), at_(text.data()), end_(text.data() + text.size()), nodes_(nodes) {}

    bool parse(std::string& error) {
        skip_space();
        if (!value(0)) {
            error = "invalid JSON at byte " + std::to_string(failed_at_ - begin_) + ": " + problem_;
            return false;
        }
        skip_space();
        if (at_ != end_) {
            error = "invalid JSON at byte " + std::to_string(at_ - begin_) +
                    ": unexpected text after the value";
            return false;
        }
        return true;
    }

  private:
    bool fail(const char* problem) {
        problem_ = problem;
        failed_at_ = at_;
        return false;
    }

    void skip_space() {
        if (at_ != end_ && static_cast<unsigned char>(*at_) > ' ') return;  // mostly none
        const char* start = at_;
        while (at_ != end_ && is_space(*at_)) ++at_;
        if (at_ != start) saw_space_ = true;
    }

    uint32_t open(Kind kind, const char* text) {
        nodes_.push_back({text, 0, 0, kind, false});
        return static_cast<uint32_t>(nodes_.size() - 1);
    }

    void close(uint32_t index) {
        Node& node = nodes_[index];
        node.size = static_cast<uint32_t>(at_ - node.text);
        node.next = static_cast<uint32_t>(nodes_.size());
    }

    bool value(int depth) {
        if (at_ == end_) return fail("unexpected end");
        switch (*at_) {
            case '{':
                return container(depth, Kind::Object);
            case '[':
                return container(depth, Kind::Array);
            case '"':
                return string();
            case 't':
                return literal("true", Kind::Bool);
            case 'f':
                return literal("false", Kind::Bool);
            case 'n':
                return literal("null", Kind::Null);
            default:
                return number();
        }
    }

    bool container(int depth, Kind kind) {
        if (depth >= kMaxDepth) return fail("nested more than 512 levels deep");
        const bool object = kind == Kind::Object;
        const char closing = object ? '}' : ']';
        const uint32_t index = open(kind, at_);
        const bool outer_space = saw_space_;
        saw_space_ = false;
        ++at_;
        skip_space();
        if (at_ != end_ && *at_ == closing) {
            ++at_;
        } else {
            while (true) {
                if (object) {
                    if (at_ == end_ || *at_ != '"') return fail("expected a member name");
                    if (!string()) return false;
                    skip_space();
                    if (at_ == end_ || *at_ != ':') return fail("expected ':'");
                    ++at_;
                    skip_space();
                }
                if (!value(depth + 1)) return false;
                skip_space();
                if (at_ == end_) return fail("unexpected end");
                if (*at_ == closing) {
                    ++at_;
                    break;
                }
                if (*at_ != ',')
                    return fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
                ++at_;
                skip_space();
            }
        }
        close(index);
        nodes_[index].special = saw_space_;
        saw_space_ = saw_space_ || outer_space;
        return true;
    }

    bool literal(std::string_view word, Kind kind) {
        if (static_cast<size_t>(end_ - at_) < word.size() ||
            std::memcmp(at_, word.data(), word.size()) != 0)
            return fail("expected a value");
        const uint32_t index = open(kind, at_);
        at_ += word.size();
        close(index);
        return true;
    }

    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, any number of digits.
    bool number() {
        const uint32_t index = open(Kind::Number, at_);
        if (at_ != end_ && *at_ == '-') ++at_;
        if (at_ == end_ || !is_digit(*at_)) return fail("expected a value");
        if (*at_ == '0') {
            ++at_;
        } else {
            while (at_ != end_ && is_digit(*at_)) ++at_;
        }
        if (at_ != end_ && *at_ == '.') {
            ++at_;
            if (at_ == end_ || !is_digit(*at_)) return fail("expected a digit after '.'");
            while (at_ != end_ && is_digit(*at_)) ++at_;
        }
        if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
            ++at_;
            if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
            if (at_ == end_ || !is_digit(*at_)) return fail("expected a digit in the exponent");
            while (at_ != end_ && is_digit(*at_)) ++at_;
        }
        close(index);
        return true;
    }

    bool string() {
        ++at_;  // the opening quote
        const uint32_t index = open(Kind::String, at_);
        bool escaped = false;
        while (true) {
            while (end_ - at_ >= 8) {
                uint64_t word;
                std::memcpy(&word, at_, 8);
                if (any_special(word)) break;
                at_ += 8;
            }
            while (at_ != end_ && kPlain[static_cast<unsigned char>(*at_)]) ++at_;
            if (at_ == end_) return fail("unclosed string");
            const unsigned char c = static_cast<unsigned char>(*at_);
            if (c == '"') break;
            if (c == '\\') {
                escaped = true;
                if (!escape()) return false;
            } else if (c < 0x20) {
                return fail("control character in a string");
            } else if (c >= 0x80) {
                if (!utf8()) return false;
            } else {
                ++at_;
            }
        }
        close(index);
        nodes_[index].special = escaped;
        ++at_;  // the closing quote
        return true;
    }

    bool escape() {
        ++at_;
        if (at_ == end_) return fail("unclosed string");
        switch (*at_) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                ++at_;
                return true;
            case 'u': {
                --at_;
                const int unit = code_unit();
                if (unit < 0) return false;
                if (unit >= 0xDC00 && unit <= 0xDFFF) return fail("lone low surrogate escape");
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u')
                        return fail("high surrogate escape without its low half");
                    const int low = code_unit();
                    if (low < 0) return false;
                    if (low < 0xDC00 || low > 0xDFFF)
                        return fail("high surrogate escape without its low half");
                }
                return true;
            }
            default:
                return fail("invalid escape");
        }
    }

    // \uXXXX at at_: its value, or -1.
    int code_unit() {
        if (end_ - at_ < 6) return (fail("short \\u escape"), -1);
        int unit = 0;
        for (int i = 2; i < 6; ++i) {
            const int digit = hex_value(at_[i]);
            if (digit < 0) return (fail("invalid \\u escape"), -1);
            unit = unit * 16 + digit;
        }
        at_ += 6;
        return unit;
    }

    // One UTF-8 sequence (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
    bool utf8() {
        const auto* s = reinterpret_cast<const unsigned char*>(at_);
        const size_t left = static_cast<size_t>(end_ - at_);
        auto continuation = [&](size_t i) { return i < left && (s[i] & 0xC0) == 0x80; };
        size_t length;
        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
            length = 2;
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
            length = 3;
            if (left < 2 || (s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F))
                return fail("invalid UTF-8");
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
            length = 4;
            if (left < 2 || (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
                return fail("invalid UTF-8");
        } else {
            return fail("invalid UTF-8");
        }
        for (size_t i = 1; i < length; ++i)
            if (!continuation(i)) return fail("invalid UTF-8");
        at_ += length;
        return true;
    }

    const char* begin_;
    const char* at_;
    const char* end_;
    std::vector<Node>& nodes_;
    const char* failed_at_ = nullptr;
    const char* problem_ = "";
    bool saw_space_ = false;
};

void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code_point >> 18));
        out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

uint32_t hex4(const char* digits) {
    uint32_t unit = 0;
    for (int i = 0; i < 4; ++i) unit = unit * 16 + static_cast<uint32_t>(hex_value(digits[i]));
    return unit;
}

}  // namespace

void append_quoted(std::string_view text, std::string& out) {
    static const char kHex[] = "0123456789abcdef";
    out += '"';
    size_t plain = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 0xf];
        }
    }
    out.append(text.data() + plain, text.size() - plain);
    out += '"';
}

void unescape(std::string_view escaped, std::string& out) {
    size_t plain = 0;
    for (size_t i = 0; i < escaped.size(); ++i) {
        if (escaped[i] != '\\') continue;
        out.append(escaped.data() + plain, i - plain);
        const char c = escaped[++i];
        switch (c) {
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                uint32_t code_point = hex4(&escaped[i + 1]);
                i += 4;
                if (code_point >= 0xD800 && code_point <= 0xDBFF) {  // checked: a low half follows
                    code_point =
                        0x10000 + ((code_point - 0xD800) << 10) + (hex4(&escaped[i + 3]) - 0xDC00);
                    i += 6;
                }
                append_utf8(out, code_point);
                break;
            }
            default:
                out += c;  // " \ /
        }
        plain = i + 1;
    }
    out.append(escaped.data() + plain, escaped.size() - plain);
}

bool valid_utf8(std::string_view text) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const size_t size = text.size();
    for (size_t i = 0; i < size;) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t length;
        unsigned char low = 0x80, high = 0xBF;  // the bounds of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            length = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            length = 3;
            if (c == 0xE0) low = 0xA0;
            if (c == 0xED) high = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            length = 4;
            if (c == 0xF0) low = 0x90;
            if (c == 0xF4) high = 0x8F;
        } else {
            return false;
        }
        if (size - i < length || s[i + 1] < low || s[i + 1] > high) return false;
        for (size_t k = 2; k < length; ++k)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += length;
    }
    return true;
}

std::string_view Value::string(std::string& scratch) const {
    if (!node().special) return raw();
    scratch.clear();
    unescape(raw(), scratch);
    return scratch;
}

void Value::append_string(std::string& out) const {
    if (node().special)
        unescape(raw(), out);
    else
        out.append(raw());
}

void Value::append_json(std::string& out) const {
    if (kind() == Kind::String) {
        out += '"';
        out.append(raw());
        out += '"';
        return;
    }
    const std::string_view text = raw();
    if (!node().special) {
        out.append(text);
        return;
    }
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            out += c;
            if (c == '\\') {
                out += text[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (!is_space(c)) {
            out += c;
            in_string = c == '"';
        }
    }
}

void Value::append_text(std::string& out) const {
    if (is_string())
        append_string(out);
    else
        append_json(out);
}

bool Value::find(std::string_view key, Value& out) const {
    if (!is_object()) return false;
    std::string scratch;
    for (const Member member : children()) {
        if (member.key.string(scratch) == key) {
            out = member.value;
            return true;
        }
    }
    return false;
}

size_t Value::size() const {
    size_t count = 0;
    for (auto it = children().begin(), end = children().end(); it != end; ++it) ++count;
    return count;
}

}  // namespace kbridge::json

namespace kbridge {

bool JsonDecoder::decode(std::string_view text, json::Value& out, std::string& error) {
    if (!decode_any(text, out, error)) return false;
    if (!out.is_object()) {
        error = "invalid JSON: expected an object";
        return false;
    }
    return true;
}

bool JsonDecoder::decode_any(std::string_view text, json::Value& out, std::string& error) {
    if (text.size() >= std::numeric_limits<uint32_t>::max()) {
        error = "invalid JSON: larger than 4 GiB";
        return false;
    }
    nodes_.clear();
    if (!json::Parser(text, nodes_).parse(error)) return false;
    out = json::Value(nodes_.data(), 0);
    return true;
}

}  // namespace kbridge
