#include "transforms/transforming_sink.h"

namespace kbridge {

TransformChain::Outcome TransformingSink::transform(const Record& record, const json::Value* fields,
                                                    json::Value& out_fields, Rejection& why) {
    out_ = record;
    if (!record.value) return TransformChain::Outcome::Keep;  // a tombstone has no fields
    if (!fields) {
        why = {"transform", "transforms need fields: the source's format must be json or csv"};
        return TransformChain::Outcome::Refused;
    }
    std::string_view value;
    const auto outcome = chain_.apply(record, *fields, value, out_fields, why);
    out_.value = value;
    return outcome;
}

bool TransformingSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                            Rejection& why) {
    json::Value out_fields;
    switch (transform(record, fields, out_fields, why)) {
        case TransformChain::Outcome::Keep:
            return inner_->send(out_, record.value ? &out_fields : fields, batch, why);
        case TransformChain::Outcome::Filtered:
            listener_->filtered(batch);
            return true;
        case TransformChain::Outcome::Refused:
            break;
    }
    return false;
}

bool TransformingSink::preview(const Record& record, const json::Value* fields, std::string& out,
                               Rejection& why) {
    json::Value out_fields;
    switch (transform(record, fields, out_fields, why)) {
        case TransformChain::Outcome::Keep:
            return inner_->preview(out_, record.value ? &out_fields : fields, out, why);
        case TransformChain::Outcome::Filtered:
            out = "FILTERED " + why.detail;
            return true;
        case TransformChain::Outcome::Refused:
            break;
    }
    return false;
}

}  // namespace kbridge
