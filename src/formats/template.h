#pragma once
// Templates such as "orders.{region}" or "{user_id}", compiled once and rendered per record.
// A reference is {name[:formatter][:-default]}: formatters date, upper, lower and json; a
// default is used, as written, when the field is missing or null.
#include <optional>
#include <string>
#include <vector>

#include "core/record.h"
#include "formats/json.h"

namespace kbridge {

// Where a template finds a record's fields: its decoded value, or a transform's working copy.
class FieldLookup {
  public:
    virtual ~FieldLookup() = default;
    // The value at `path` (an object's members, by name); false when there is none. The value
    // stays valid until the next find().
    virtual bool find(const std::vector<std::string>& path, json::Value& out) = 0;
};

class Template {
  public:
    enum class Formatter { None, Date, Upper, Lower, Json };

    // Throws std::invalid_argument naming the problem (unclosed brace, empty field name, an
    // unknown formatter).
    explicit Template(const std::string& text);

    // Appends the rendering to `out`; on a missing field returns false with `error` set.
    bool render(const Record& record, const json::Value* fields, std::string& out,
                std::string& error) const;
    // The same with the fields found through `lookup` (none: the record has no fields).
    bool render(const Record& record, FieldLookup* lookup, std::string& out,
                std::string& error) const;
    bool needs_fields() const;
    const std::string& text() const { return text_; }
    // When the whole template is one field reference without a formatter ("{price}"): its
    // path, so that a copy can keep the value's type; its default, if any, in `fallback`.
    const std::vector<std::string>* lone_field(std::optional<std::string>* fallback) const;

  private:
    enum class Kind { Literal, Field, Key, Topic, Partition, Offset, Timestamp, Header };
    struct Segment {
        Kind kind;
        std::string literal;            // Literal text, the field's dotted name, or a header's
        std::vector<std::string> path;  // Field; Header: {placeholder, the source that sets it}
        Formatter formatter = Formatter::None;
        std::optional<std::string> fallback;  // {name:-default}
    };
    bool render_segment(const Segment& s, const Record& record, FieldLookup* lookup,
                        std::string& out, std::string& error) const;

    std::string text_;
    std::vector<Segment> segments_;
};

}  // namespace kbridge
