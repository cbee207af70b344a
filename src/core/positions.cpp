#include "core/positions.h"

#include <stdexcept>

#include "formats/json.h"

namespace kbridge {

std::string encode_position(const Position& position) {
    std::string out = "{";
    for (const auto& [name, value] : position) {
        if (out.size() > 1) out += ',';
        json::append_quoted(name, out);
        out += ':';
        json::append_quoted(value, out);
    }
    return out + "}";
}

Position decode_position(std::string_view text) {
    JsonDecoder decoder;
    json::Value object;
    std::string error;
    if (!decoder.decode(text, object, error))
        throw std::runtime_error("a stored position is not a JSON object: " + error);
    Position position;
    std::string scratch;
    for (const auto& member : object.children()) {
        if (!member.value.is_string())
            throw std::runtime_error("a stored position holds a value that is not a string");
        position[std::string(member.key.string(scratch))] =
            std::string(member.value.string(scratch));
    }
    return position;
}

}  // namespace kbridge
