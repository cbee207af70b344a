#pragma once
// JSON values that keep their text. A record's value is checked and indexed once; every sink
// then reads numbers as the digits that were written (no round trip through a double, so
// 12345678901234567890.12, 1e400 and -0 arrive as they are), strings unescaped, and objects and
// arrays as compact JSON text.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kbridge::json {

enum class Kind : uint8_t { Null, Bool, Number, String, Object, Array };

// One value of a parsed document, in document order; a container's members follow it.
struct Node {
    const char* text;  // String: after the opening quote; others: the first character
    uint32_t size;     // String: up to the closing quote; containers: through the closing bracket
    uint32_t next;     // the index just past this value and everything inside it
    Kind kind;
    bool special;  // String: holds escapes; container: holds whitespace outside strings
};

class Value;

struct Member;

// Iterates a container's children: an object's keys and values alternate.
class Children {
  public:
    class Iterator {
      public:
        Iterator(const Node* nodes, uint32_t index, bool object)
            : nodes_(nodes), index_(index), object_(object) {}
        bool operator!=(const Iterator& other) const { return index_ != other.index_; }
        Iterator& operator++() {
            index_ = nodes_[object_ ? index_ + 1 : index_].next;
            return *this;
        }
        Member operator*() const;

      private:
        const Node* nodes_;
        uint32_t index_;
        bool object_;
    };
    Children(const Node* nodes, uint32_t begin, uint32_t end, bool object)
        : nodes_(nodes), begin_(begin), end_(end), object_(object) {}
    Iterator begin() const { return {nodes_, begin_, object_}; }
    Iterator end() const { return {nodes_, end_, object_}; }

  private:
    const Node* nodes_;
    uint32_t begin_, end_;
    bool object_;
};

// A view of one value; valid while the decoder that produced it keeps that document.
class Value {
  public:
    Value() = default;
    Value(const Node* nodes, uint32_t index) : nodes_(nodes), index_(index) {}

    Kind kind() const { return node().kind; }
    bool is_null() const { return kind() == Kind::Null; }
    bool is_string() const { return kind() == Kind::String; }
    bool is_object() const { return kind() == Kind::Object; }
    bool is_array() const { return kind() == Kind::Array; }
    bool boolean() const { return node().text[0] == 't'; }
    // The value's text as written: a number's digits, true/false/null, a string without its
    // quotes (escapes undone only by string()), a container as it stood in the input.
    std::string_view raw() const { return {node().text, node().size}; }
    // A string's text with escapes undone: a view of the input, or of `scratch` when it had any.
    std::string_view string(std::string& scratch) const;
    void append_string(std::string& out) const;
    // The value as compact JSON: whitespace outside strings dropped, all else as written.
    void append_json(std::string& out) const;
    // Text as sinks write it: strings unescaped, null as "null", anything else as compact JSON.
    void append_text(std::string& out) const;

    // Object members and array elements (an array's Member has only `value`).
    Children children() const { return {nodes_, index_ + 1, node().next, is_object()}; }
    // The member named `key` of an object; false if there is none (or this is no object).
    bool find(std::string_view key, Value& out) const;
    size_t size() const;  // members or elements

  private:
    friend class ObjectWriter;  // copies a value's index along with its text
    const Node& node() const { return nodes_[index_]; }
    const Node* nodes_ = nullptr;
    uint32_t index_ = 0;
};

struct Member {
    Value key;  // a String; invalid for array elements
    Value value;
};

inline Member Children::Iterator::operator*() const {
    if (!object_) return {Value(), Value(nodes_, index_)};
    return {Value(nodes_, index_), Value(nodes_, index_ + 1)};
}

// Undoes a JSON string's escapes (the text between the quotes, already checked).
void unescape(std::string_view escaped, std::string& out);
// Appends `text` as a quoted JSON string: quote, backslash and control characters escaped.
void append_quoted(std::string_view text, std::string& out);

// True when `text` is UTF-8 as RFC 3629 has it (no overlong forms, surrogates or code points
// past U+10FFFF): what a JSON document may hold.
bool valid_utf8(std::string_view text);

}  // namespace kbridge::json

namespace kbridge {

// Checks and indexes one JSON object per record (RFC 8259: UTF-8, any number of digits, nesting
// up to 512 levels). The value refers to the decoder's index and the record's bytes: it stays
// valid until the next decode.
class JsonDecoder {
  public:
    // On invalid JSON, or a value that is not an object, returns false with `error` saying
    // what and where.
    bool decode(std::string_view text, json::Value& out, std::string& error);
    // Any JSON value at the top (for record keys, which may be a number or a string).
    bool decode_any(std::string_view text, json::Value& out, std::string& error);

  private:
    std::vector<json::Node> nodes_;
};

}  // namespace kbridge
