#include "formats/json.h"

namespace kbridge {

bool JsonDecoder::decode(std::string_view text, simdjson::dom::element& out, std::string& error) {
    auto result = parser_.parse(text.data(), text.size(), true);
    if (result.error() != simdjson::SUCCESS) {
        error = std::string("invalid JSON: ") + simdjson::error_message(result.error());
        return false;
    }
    out = result.value_unsafe();
    if (!out.is_object()) {
        error = "invalid JSON: expected an object";
        return false;
    }
    return true;
}

}  // namespace kbridge
