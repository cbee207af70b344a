// The pgoutput decoder: any bytes either decode or throw DecodeError; nothing reads outside the
// input (AddressSanitizer), and every view a message holds lies inside the input. The first byte
// chooses the layer: 'w'/'k' the replication wrapper, else a pgoutput message; text values are
// also rendered as JSON, which must come out as balanced brackets and quotes.
#include "connectors/postgres_cdc/pgoutput.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>
#include <vector>

#include "connectors/postgres_cdc/text_json.h"

namespace {

using namespace kbridge;
using namespace kbridge::pgoutput;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "pgoutput: %s\n", what);
    std::abort();
}

std::string_view input;

void inside(std::string_view view) {
    if (view.empty()) return;
    if (view.data() < input.data() || view.data() + view.size() > input.data() + input.size())
        finding("a view outside the input");
}

void check_tuple(const Tuple& row) {
    for (const auto& v : row) {
        inside(v.bytes);
        if (v.kind != ValueKind::Text) continue;
        for (const JsonKind kind :
             {JsonKind::Number, JsonKind::Timestamp, JsonKind::TimestampTz, JsonKind::String}) {
            std::vector<char> out;
            append_text_as_json(JsonType{kind}, v.bytes, out);
            if (out.empty()) finding("no JSON for a value");
        }
        std::vector<char> out;
        append_text_as_json(JsonType{JsonKind::Array, JsonKind::String, ','}, v.bytes, out);
        if (out.empty() || (out.front() != '[' && out.front() != '"'))
            finding("an array is neither a JSON array nor a string");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    input = std::string_view(reinterpret_cast<const char*>(data), size);
    try {
        if (!input.empty() && (input[0] == 'w' || input[0] == 'k')) {
            const StreamMessage m = decode_stream(input);
            if (const auto* x = std::get_if<XLogData>(&m)) inside(x->payload);
            return 0;
        }
        const Message m = decode(input);
        if (const auto* i = std::get_if<Insert>(&m)) check_tuple(i->row);
        if (const auto* u = std::get_if<Update>(&m)) {
            check_tuple(u->old_row);
            check_tuple(u->row);
        }
        if (const auto* d = std::get_if<Delete>(&m)) check_tuple(d->old_row);
        if (const auto* r = std::get_if<Relation>(&m)) {
            inside(r->schema);
            inside(r->name);
            for (const auto& c : r->columns) inside(c.name);
        }
        if (const auto* msg = std::get_if<LogicalMessage>(&m)) {
            inside(msg->prefix);
            inside(msg->content);
        }
    } catch (const DecodeError&) {
    }
    return 0;
}
