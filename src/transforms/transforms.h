#pragma once
// A pipeline's `transforms:`, applied in order to each record's decoded fields between decoding
// and the sink: drop, rename, set, filter and select. Compiled once from the pipeline file
// (errors name file:line:col); applied per record to a working copy of the top-level fields
// (views of the decoded value, so numbers keep their text), which is written out, and indexed
// while written, as one JSON object only when a step changed it.
#include <yaml-cpp/yaml.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/options.h"
#include "core/record.h"
#include "formats/json.h"
#include "formats/json_writer.h"
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
    // A field of the working copy. Keys and values are views, so a step copies no text.
    struct Entry {
        std::string_view key;           // unescaped: the record's, a step's or escaped_keys_'
        json::ObjectWriter::Name name;  // the key as written, from the same places
        json::Value value;              // the record's value, unless `written`
        uint32_t at = 0, size = 0;      // written: the value's JSON text in written_
        json::Kind kind = json::Kind::Null;
        bool escaped = false;  // written: a string whose JSON holds escapes
        bool written = false;  // set by a step: a scalar (a constant or a rendered string)
    };
    class Lookup;

    Entry* find(std::string_view key);
    void load(const json::Value& in);
    void keep_key(const json::Value& key, Entry& e);
    json::Value value_of(const Entry& e);
    static void set_value(Entry& to, const Entry& from);
    bool copy_field(const std::vector<std::string>& path, bool fallback, Entry& to);
    std::string_view written(const Entry& e) const { return {written_.data() + e.at, e.size}; }

    std::vector<Step> steps_;
    std::vector<Entry> entries_;            // the working copy of the record's top-level fields
    std::vector<Entry> spare_;              // select: entries_ reordered
    std::string written_;                   // the JSON text of values the steps set on this record
    std::deque<std::string> escaped_keys_;  // a deque: views of its strings stay valid
    size_t escaped_used_ = 0;
    std::string rendered_, error_, scratch_;
    json::Node lookup_node_{};  // a written value, as a Lookup hands it out
    json::ObjectWriter writer_;
};

}  // namespace kbridge
