#pragma once
// A pipeline's `transforms:`, applied in order to each record's decoded fields between decoding
// and the sink: drop, rename, set, filter and select. Compiled once from the pipeline file
// (errors name file:line:col); applied per record to a working copy of the top-level fields,
// which is written out as one JSON object only when a step changed it.
#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "core/record.h"
#include "formats/json.h"
#include "formats/template.h"

namespace kbridge {

// The transforms and their arguments: one key per list item (the option table of `transforms`).
const OptionTable& transform_options();

class TransformChain {
  public:
    enum class Outcome {
        Keep,      // the record goes on, with `value` and `fields` as the chain left them
        Filtered,  // a filter dropped it: acknowledged, counted, never written
        Refused,   // a step could not apply (why says which and how): dead letter
    };
    struct Step;

    // `list` is the pipeline's transforms node; `path` names it in messages.
    TransformChain(const YAML::Node& list, const std::string& file, const std::string& path);
    ~TransformChain();
    TransformChain(TransformChain&&) noexcept;

    // Applies every step to `record` with its decoded `fields`. On Keep, `value` views the new
    // value (or the record's own when nothing changed) and `fields` its decoded form, both valid
    // until the next apply(); on Filtered or Refused, `why` says by which step and why.
    Outcome apply(const Record& record, const json::Value& in, std::string_view& value,
                  json::Value& fields, Rejection& why);
    size_t size() const;

  private:
    struct Entry {
        std::string key;    // unescaped
        std::string text;   // owned JSON text, when `owned`
        json::Value value;  // a view into the record's decoded value, when not `owned`
        bool owned = false;
    };
    class Lookup;

    Entry* find(const std::string& key);
    bool set_field(const Step& step, const Record& record, Rejection& why);

    std::vector<Step> steps_;
    std::vector<Entry> entries_;  // the working copy of the record's top-level fields
    std::vector<Entry> spare_;    // select: entries_ reordered
    std::string scratch_, out_;
    JsonDecoder lookup_decoder_, out_decoder_;
};

}  // namespace kbridge
