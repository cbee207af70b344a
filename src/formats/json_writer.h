#pragma once
// Writes one JSON object member by member and indexes it while writing, so that a transformed
// record is written once and handed on without being parsed again. A member's value is either
// taken from a decoded document (written as compact JSON, its index copied) or a scalar whose
// JSON text the caller wrote (a quoted string, a number as written, true, false or null).
#include <string>
#include <string_view>
#include <vector>

#include "formats/json.h"

namespace kbridge::json {

class ObjectWriter {
  public:
    // A member name as written: its JSON text, quotes included, and whether that holds escapes.
    struct Name {
        std::string_view json;
        bool escaped = false;
    };
    // `name` quoted into `storage` (whose text the Name views).
    static Name quote(std::string_view name, std::string& storage);

    ObjectWriter() { clear(); }
    void clear();  // starts the next object
    // `value` must stay valid until finish().
    void add(Name name, const Value& value);
    // `json` is the scalar's JSON text (a string with its quotes, holding escapes if `escaped`).
    void add_scalar(Name name, std::string_view json, Kind kind, bool escaped);
    // Closes the object: `text` is its JSON and `out` its decoded form, both valid until the
    // next clear(). False, with `error` set, when the object is too large to index (4 GiB).
    bool finish(std::string_view& text, Value& out, std::string& error);

  private:
    // Writes the name and the colon, with room for `value_size` more bytes after them; the
    // value's text is to start at the returned offset.
    size_t add_name(Name name, size_t value_size);
    void push(size_t at, size_t size, Kind kind, bool special);
    void index_copy(const Value& from, const char* at);

    // Reserved ahead of each member, so that nodes_ can point into it as it grows.
    std::string text_;
    std::vector<Node> nodes_;
    std::vector<size_t> offsets_;  // add_name: the nodes' places while text_ moves
    JsonDecoder compact_;          // indexes values that had whitespace, once compacted
};

}  // namespace kbridge::json
