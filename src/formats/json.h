#pragma once
#include <simdjson.h>

#include <string>
#include <string_view>

namespace kbridge {

// Checks and parses one JSON value per record. The element stays valid until the next decode.
class JsonDecoder {
public:
    // On invalid JSON returns false with `error` saying what and where.
    bool decode(std::string_view text, simdjson::dom::element& out, std::string& error);

private:
    simdjson::dom::parser parser_;
};

}  // namespace kbridge
