// JsonDecoder, json::Value and templates. Properties checked on every input:
// - acceptance agrees with simdjson's DOM parser, within their documented differences (we bound
//   nesting at 512 levels, simdjson at 1024; simdjson refuses numbers it cannot hold, we keep
//   their digits);
// - when both accept, the trees agree: kinds, object keys in order, unescaped strings, sizes;
// - append_json is idempotent: its output decodes again and gives itself back;
// - valid_utf8 agrees with simdjson's;
// - find() gives an object's first member of that name; strings unescape to valid UTF-8;
// - templates render (or fail with an error) over any value, including a template read from
//   the document's "template" member.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/record.h"
#include "formats/json.h"
#include "formats/template.h"

namespace {

using kbridge::json::Kind;
using kbridge::json::Value;

constexpr size_t kMaxDepth = 512;
constexpr size_t kCrossCheckBytes = 1 << 16;

[[noreturn]] void finding(const char* what, std::string_view input) {
    std::fprintf(stderr, "json_template: %s (input of %zu bytes)\n", what, input.size());
    std::abort();
}

size_t depth_of(simdjson::dom::element e) {
    size_t deepest = 0;
    if (e.is_object()) {
        for (auto field : e.get_object().value_unsafe())
            deepest = std::max(deepest, depth_of(field.value));
        return deepest + 1;
    }
    if (e.is_array()) {
        for (auto child : e.get_array().value_unsafe())
            deepest = std::max(deepest, depth_of(child));
        return deepest + 1;
    }
    return 0;
}

bool same_kind(Kind ours, simdjson::dom::element_type theirs) {
    using T = simdjson::dom::element_type;
    switch (theirs) {
        case T::ARRAY:
            return ours == Kind::Array;
        case T::OBJECT:
            return ours == Kind::Object;
        case T::STRING:
            return ours == Kind::String;
        case T::BOOL:
            return ours == Kind::Bool;
        case T::NULL_VALUE:
            return ours == Kind::Null;
        default:
            return ours == Kind::Number;
    }
}

// Walks our value and simdjson's side by side.
void compare(Value ours, simdjson::dom::element theirs, std::string_view input) {
    if (!same_kind(ours.kind(), theirs.type())) finding("kinds differ from simdjson", input);
    std::string scratch;
    switch (ours.kind()) {
        case Kind::String:
            if (ours.string(scratch) != std::string_view(theirs.get_string().value_unsafe()))
                finding("a string unescapes otherwise than in simdjson", input);
            break;
        case Kind::Bool:
            if (ours.boolean() != theirs.get_bool().value_unsafe())
                finding("a boolean differs from simdjson", input);
            break;
        case Kind::Object: {
            auto object = theirs.get_object().value_unsafe();
            if (ours.size() != object.size()) finding("object sizes differ from simdjson", input);
            auto it = object.begin();
            for (const auto member : ours.children()) {
                if (member.key.string(scratch) != std::string_view((*it).key))
                    finding("object keys differ from simdjson", input);
                compare(member.value, (*it).value, input);
                ++it;
            }
            break;
        }
        case Kind::Array: {
            auto array = theirs.get_array().value_unsafe();
            if (ours.size() != array.size()) finding("array sizes differ from simdjson", input);
            auto it = array.begin();
            for (const auto element : ours.children()) {
                compare(element.value, *it, input);
                ++it;
            }
            break;
        }
        default:
            break;
    }
}

// Every method of every value, recursively.
void exercise(Value value, std::string_view input) {
    std::string text, scratch;
    value.append_text(text);
    value.append_json(text);
    if (value.is_string()) {
        const std::string_view unescaped = value.string(scratch);
        if (!simdjson::validate_utf8(unescaped.data(), unescaped.size()))
            finding("a string unescapes to invalid UTF-8", input);
        std::string appended;
        value.append_string(appended);
        if (appended != unescaped) finding("append_string differs from string()", input);
        return;
    }
    if (!value.is_object() && !value.is_array()) return;
    size_t count = 0;
    for (const auto member : value.children()) {
        ++count;
        if (value.is_object()) {
            if (!member.key.is_string()) finding("an object key that is no string", input);
            std::string key(member.key.string(scratch));
            Value found;
            if (!value.find(key, found)) finding("find() misses a member", input);
            // find() gives the first member of that name: it must not come after this one.
            if (found.raw().data() > member.value.raw().data())
                finding("find() gives a later member", input);
        }
        exercise(member.value, input);
    }
    if (count != value.size()) finding("size() disagrees with children()", input);
}

void render_templates(Value value, std::string_view input) {
    static const kbridge::Template kTemplates[] = {
        kbridge::Template("{id}"),
        kbridge::Template("orders.{region}-{_key}"),
        kbridge::Template("{user.name}/{_topic}/{_partition}/{_offset}/{_timestamp}"),
        kbridge::Template("{{literal}} {a.b.c.d} }}"),
        kbridge::Template("{template}"),
    };
    kbridge::Record record;
    record.key = "k";
    record.topic = "t";
    record.partition = 1;
    record.offset = 2;
    record.timestamp = 3;
    std::string out, error;
    for (const auto& t : kTemplates) {
        out.clear();
        t.render(record, &value, out, error);
        out.clear();
        t.render(record, static_cast<const kbridge::json::Value*>(nullptr), out, error);
    }
    Value own;
    std::string scratch;
    if (value.find("template", own) && own.is_string()) {
        try {
            const kbridge::Template t{std::string(own.string(scratch))};
            out.clear();
            t.render(record, &value, out, error);
            t.needs_fields();
        } catch (const std::invalid_argument&) {
            // a bad template is refused with a message: that is its contract
        }
    }
    (void)input;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    static kbridge::JsonDecoder decoder, again;
    static simdjson::dom::parser simd;
    Value value;
    std::string error;
    const bool ours = decoder.decode_any(input, value, error);
    if (!ours && error.empty()) finding("refused without an error", input);
    if (kbridge::json::valid_utf8(input) != simdjson::validate_utf8(input.data(), input.size()))
        finding("valid_utf8 disagrees with simdjson", input);

    if (size <= kCrossCheckBytes) {
        const simdjson::padded_string padded(input);
        simdjson::dom::element root;
        const simdjson::error_code code = simd.parse(padded).get(root);
        if (code == simdjson::SUCCESS && !ours && depth_of(root) <= kMaxDepth)
            finding("simdjson accepts what we refuse", input);
        const bool number_error =
            code == simdjson::NUMBER_ERROR || code == simdjson::NUMBER_OUT_OF_RANGE;
        if (ours && code != simdjson::SUCCESS && !number_error)
            finding("we accept what simdjson refuses (not for a number)", input);
        if (ours && code == simdjson::SUCCESS) compare(value, root, input);
    }
    if (!ours) return 0;

    {
        Value object;
        std::string object_error;
        kbridge::JsonDecoder other;
        if (other.decode(input, object, object_error) != value.is_object())
            finding("decode() and decode_any() disagree on an object", input);
    }

    std::string compact;
    value.append_json(compact);
    Value reread;
    if (!again.decode_any(compact, reread, error))
        finding("append_json output does not decode", input);
    std::string twice;
    reread.append_json(twice);
    if (twice != compact) finding("append_json is not idempotent", input);
    if (reread.kind() != value.kind()) finding("append_json changes the kind", input);

    exercise(value, input);
    render_templates(value, input);
    return 0;
}
