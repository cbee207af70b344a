#include "formats/template.h"

#include <algorithm>
#include <stdexcept>

namespace kbridge {

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
        const std::string name = text.substr(i + 1, close - i - 1);
        if (name.empty())
            throw std::invalid_argument("empty field name '{}' in template '" + text + "'");
        if (!literal.empty()) segments_.push_back({Kind::Literal, std::move(literal), {}});
        literal.clear();
        Segment s{Kind::Field, name, {}};
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
    if (!literal.empty()) segments_.push_back({Kind::Literal, std::move(literal), {}});
}

bool Template::needs_fields() const {
    for (const auto& s : segments_)
        if (s.kind == Kind::Field) return true;
    return false;
}

bool Template::render(const Record& record, const json::Value* fields, std::string& out,
                      std::string& error) const {
    for (const auto& s : segments_) {
        switch (s.kind) {
            case Kind::Literal:
                out += s.literal;
                break;
            case Kind::Key:
                if (!record.key) {
                    error = "the record has no key for {_key}";
                    return false;
                }
                out += *record.key;
                break;
            case Kind::Topic:
                out += record.topic;
                break;
            case Kind::Partition:
                out += std::to_string(record.partition);
                break;
            case Kind::Offset:
                out += std::to_string(record.offset);
                break;
            case Kind::Timestamp:
                out += std::to_string(record.timestamp);
                break;
            case Kind::Header: {
                const auto found =
                    std::find_if(record.headers.begin(), record.headers.end(),
                                 [&](const Header& h) { return h.name == s.literal; });
                if (found == record.headers.end()) {
                    error = "the record has no " + s.literal + " header for {" + s.path[0] +
                            "} (only " + s.path[1] + " sets it)";
                    return false;
                }
                out += found->value;
                break;
            }
            case Kind::Field: {
                if (!fields) {
                    error = "field '" + s.literal + "' needs format: json";
                    return false;
                }
                json::Value value = *fields;
                for (const auto& part : s.path) {
                    if (!value.find(part, value)) {
                        error = "missing field '" + s.literal + "'";
                        return false;
                    }
                }
                if (value.is_null()) {
                    error = "field '" + s.literal + "' is null";
                    return false;
                }
                value.append_text(out);  // numbers as written, strings unescaped
            }
        }
    }
    return true;
}

}  // namespace kbridge
