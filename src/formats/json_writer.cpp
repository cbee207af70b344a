#include "formats/json_writer.h"

#include <limits>

namespace kbridge::json {

ObjectWriter::Name ObjectWriter::quote(std::string_view name, std::string& storage) {
    storage.clear();
    append_quoted(name, storage);
    return {storage, storage.size() != name.size() + 2};
}

void ObjectWriter::clear() {
    text_.clear();
    text_ += '{';
    nodes_.clear();
    nodes_.push_back({nullptr, 0, 0, Kind::Object, false});  // the object: set by finish()
}

size_t ObjectWriter::add_name(Name name, size_t value_size) {
    const size_t more = name.json.size() + value_size + 3;  // a comma, a colon and the '}'
    if (text_.size() + more > text_.capacity()) {
        offsets_.clear();
        for (size_t i = 1; i < nodes_.size(); ++i)
            offsets_.push_back(static_cast<size_t>(nodes_[i].text - text_.data()));
        text_.reserve(2 * (text_.size() + more));
        for (size_t i = 1; i < nodes_.size(); ++i) nodes_[i].text = text_.data() + offsets_[i - 1];
    }
    if (nodes_.size() > 1) text_ += ',';
    push(text_.size() + 1, name.json.size() - 2, Kind::String, name.escaped);
    text_.append(name.json);
    text_ += ':';
    return text_.size();
}

// Filled in place: a node built on the stack and copied stalls on store forwarding.
void ObjectWriter::push(size_t at, size_t size, Kind kind, bool special) {
    Node& node = nodes_.emplace_back();
    node.text = text_.data() + at;
    node.size = static_cast<uint32_t>(size);
    node.next = static_cast<uint32_t>(nodes_.size());
    node.kind = kind;
    node.special = special;
}

void ObjectWriter::add(Name name, const Value& value) {
    const std::string_view raw = value.raw();
    const size_t at = add_name(name, raw.size() + 2);  // compact JSON is no longer, but quoted
    const Node& node = value.node();
    if (node.kind == Kind::String) {
        text_ += '"';
        text_.append(raw);
        text_ += '"';
        push(at + 1, raw.size(), Kind::String, node.special);
    } else if (node.special) {
        // Whitespace dropped, so the text differs from the document's: indexed afresh.
        value.append_json(text_);
        const std::string_view compact(text_.data() + at, text_.size() - at);
        Value compacted;
        std::string error;
        compact_.decode_any(compact, compacted, error);  // valid: a valid value, compacted
        index_copy(compacted, compact.data());
    } else {
        text_.append(raw);
        index_copy(value, text_.data() + at);
    }
}

void ObjectWriter::add_scalar(Name name, std::string_view json, Kind kind, bool escaped) {
    const size_t at = add_name(name, json.size());
    text_.append(json);
    if (kind == Kind::String)
        push(at + 1, json.size() - 2, kind, escaped);
    else
        push(at, json.size(), kind, false);
}

// Appends `from` and everything inside it to nodes_, its text now starting at `at`.
void ObjectWriter::index_copy(const Value& from, const char* at) {
    const Node* source = from.nodes_ + from.index_;
    const Node* end = from.nodes_ + source->next;
    const auto shift = static_cast<uint32_t>(nodes_.size()) - from.index_;  // wraps: modular
    const char* base = source->text;
    for (; source != end; ++source) {
        Node& node = nodes_.emplace_back(*source);
        node.text = at + (source->text - base);
        node.next += shift;
    }
}

bool ObjectWriter::finish(std::string_view& text, Value& out, std::string& error) {
    text_ += '}';
    if (text_.size() >= std::numeric_limits<uint32_t>::max()) {
        error = "invalid JSON: larger than 4 GiB";
        return false;
    }
    nodes_[0] = {text_.data(), static_cast<uint32_t>(text_.size()),
                 static_cast<uint32_t>(nodes_.size()), Kind::Object, false};
    text = text_;
    out = Value(nodes_.data(), 0);
    return true;
}

}  // namespace kbridge::json
