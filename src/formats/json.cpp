#include "formats/json.h"

#include "core/record.h"

namespace kbridge {

static_assert(kValuePadding >= simdjson::SIMDJSON_PADDING, "batches must pad what simdjson reads past the end");

void JsonDecoder::start(std::string_view values) {
    streaming_ = false;
    advance_ = false;
    if (values.empty()) return;
    if (stream_parser_.parse_many(values.data(), values.size(), simdjson::dom::DEFAULT_BATCH_SIZE).get(stream_))
        return;
    next_ = stream_.begin();
    streaming_ = true;
}

bool JsonDecoder::decode(std::string_view text, simdjson::dom::element& out, std::string& error) {
    if (streaming_) {
        if (advance_) ++next_;
        advance_ = true;
        simdjson::dom::element element;
        if (next_ != stream_.end() && (*next_).get(element) == simdjson::SUCCESS && element.is_object()) {
            const std::string_view source = next_.source();
            if (source.data() == text.data() && source.size() == text.size()) {
                out = element;
                return true;
            }
        }
        streaming_ = false;  // from here on, record by record
    }
    return decode_alone(text, out, error);
}

bool JsonDecoder::decode_alone(std::string_view text, simdjson::dom::element& out, std::string& error) {
    auto result = single_.parse(text.data(), text.size(), true);
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
