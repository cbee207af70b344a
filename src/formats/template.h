#pragma once
// Templates such as "orders.{region}" or "{user_id}", compiled once and rendered per record.
#include <string>
#include <vector>

#include "core/record.h"
#include "formats/json.h"

namespace kbridge {

class Template {
  public:
    // Throws std::invalid_argument naming the problem (unclosed brace, empty field name).
    explicit Template(const std::string& text);

    // Appends the rendering to `out`; on a missing field returns false with `error` set.
    bool render(const Record& record, const json::Value* fields, std::string& out,
                std::string& error) const;
    bool needs_fields() const;
    const std::string& text() const { return text_; }

  private:
    enum class Kind { Literal, Field, Key, Topic, Partition, Offset, Timestamp, Header };
    struct Segment {
        Kind kind;
        std::string literal;            // Literal text, the field's dotted name, or a header's
        std::vector<std::string> path;  // Field; Header: {placeholder, the source that sets it}
    };
    std::string text_;
    std::vector<Segment> segments_;
};

}  // namespace kbridge
