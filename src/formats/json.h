#pragma once
#include <simdjson.h>

#include <string>
#include <string_view>

namespace kbridge {

// Checks and parses one JSON object per record. The element stays valid until the next decode.
//
// When a batch's values lie back to back in one padded buffer, start() parses them as one stream:
// simdjson's per-call setup then happens once a batch instead of once a record. A document is used
// only if it is exactly its record's bytes; at the first that is not (an invalid record, one that
// is not an object, or two records that only together form a document) decoding goes on record by
// record, so the outcome is the same as parsing each record alone.
class JsonDecoder {
public:
    // `values`: the batch's values back to back, followed by simdjson::SIMDJSON_PADDING readable
    // bytes. An empty view means there is no such buffer.
    void start(std::string_view values);
    // Decodes the batch's next record (call in order). On invalid JSON returns false with
    // `error` saying what and where.
    bool decode(std::string_view text, simdjson::dom::element& out, std::string& error);

private:
    bool decode_alone(std::string_view text, simdjson::dom::element& out, std::string& error);

    simdjson::dom::parser single_;
    simdjson::dom::parser stream_parser_;
    simdjson::dom::document_stream stream_;
    simdjson::dom::document_stream::iterator next_;
    bool streaming_ = false;
    bool advance_ = false;  // the stream's current document was handed out: move on first
};

}  // namespace kbridge
