#include "transforms/transforms.h"

#include <algorithm>

namespace kbridge {
namespace {

const OptionTable kTransforms = {
    {"drop", OptionType::StringList, "", "remove these top-level fields: drop: [note, debug]"},
    {"rename", OptionType::StringMap, "",
     "rename top-level fields, old: new (a field already named new is replaced)"},
    {"set", OptionType::Map, "",
     "set fields to templates or constants: set: {source: redis, day: \"{ts:date}\", region: "
     "\"{region:-eu}\"}; a lone \"{field}\" copies the value with its type, an unquoted number, "
     "true, false or null is that JSON value"},
    {"filter", OptionType::Map, "",
     "keep only records whose fields have one of the listed values: filter: {action: [buy, "
     "cart]} (fields may be nested: order.status); the others are acknowledged and counted as "
     "filtered"},
    {"select", OptionType::StringList, "",
     "keep only these top-level fields, in this order: select: [id, user_id]"},
};

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
    return out;
}

}  // namespace

const OptionTable& transform_options() {
    return kTransforms;
}

struct TransformChain::Step {
    enum class Kind { Drop, Rename, Set, Filter, Select };
    struct Assignment {
        std::string field;
        std::optional<Template> tmpl;
        std::string json;  // a constant's JSON text, without a template
    };
    struct Condition {
        std::string name;  // dotted, as written
        std::vector<std::string> path;
        std::vector<std::string> values;
    };
    Kind kind;
    std::string label;  // e.g. "transforms[2] set"
    std::vector<std::string> names;
    std::vector<std::pair<std::string, std::string>> renames;
    std::vector<Assignment> sets;
    std::vector<Condition> conditions;
};

// Finds fields in the working copy once it is loaded, else in the decoded value.
class TransformChain::Lookup : public FieldLookup {
  public:
    Lookup(TransformChain& chain, const json::Value& in, bool loaded)
        : chain_(chain), in_(in), loaded_(loaded) {}
    bool find(const std::vector<std::string>& path, json::Value& out) override {
        size_t from = 0;
        if (!loaded_) {
            out = in_;
        } else {
            const Entry* e = chain_.find(path[0]);
            if (!e) return false;
            if (e->owned) {
                std::string error;
                if (!chain_.lookup_decoder_.decode_any(e->text, out, error)) return false;
            } else {
                out = e->value;
            }
            from = 1;
        }
        for (size_t i = from; i < path.size(); ++i)
            if (!out.find(path[i], out)) return false;
        return true;
    }

  private:
    TransformChain& chain_;
    const json::Value& in_;
    bool loaded_;
};

TransformChain::TransformChain(const YAML::Node& list, const std::string& file,
                               const std::string& path) {
    if (!list.IsSequence())
        throw ConfigError(mark_of(list, file), path,
                          "expected a list of transforms, e.g. '- drop: [note]'");
    auto top_level = [&](const YAML::Node& node, const std::string& where,
                         const std::string& name) {
        if (name.empty()) throw ConfigError(mark_of(node, file), where, "empty field name");
        if (name.find('.') != std::string::npos)
            throw ConfigError(mark_of(node, file), where,
                              "'" + name + "': this transform works on top-level fields only");
    };
    for (size_t i = 0; i < list.size(); ++i) {
        const YAML::Node item = list[i];
        const std::string where = path + "[" + std::to_string(i) + "]";
        const Options options(item, kTransforms, file, where);
        if (item.size() != 1)
            throw ConfigError(mark_of(item, file), where,
                              "one transform per list item (write '- drop: ...' and "
                              "'- rename: ...' as two items)");
        const std::string name = item.begin()->first.Scalar();
        const YAML::Node arg = item.begin()->second;
        const std::string at = where + "." + name;
        Step step;
        step.label = "transforms[" + std::to_string(i) + "] " + name;
        if (name == "drop" || name == "select") {
            step.kind = name == "drop" ? Step::Kind::Drop : Step::Kind::Select;
            step.names = options.string_list(name);
            for (const auto& n : step.names) top_level(arg, at, n);
            if (step.names.empty())
                throw ConfigError(mark_of(arg, file), at, "name at least one field");
        } else if (name == "rename") {
            step.kind = Step::Kind::Rename;
            for (const auto& entry : arg) {
                const std::string from = entry.first.Scalar(), to = entry.second.Scalar();
                top_level(entry.first, at, from);
                top_level(entry.second, at + "." + from, to);
                step.renames.emplace_back(from, to);
            }
        } else if (name == "set") {
            step.kind = Step::Kind::Set;
            for (const auto& entry : arg) {
                const std::string field = key_text(entry.first, file, at);
                top_level(entry.first, at, field);
                const YAML::Node value = entry.second;
                if (value.IsNull()) {
                    step.sets.push_back({field, std::nullopt, "null"});
                    continue;
                }
                if (!value.IsScalar())
                    throw ConfigError(mark_of(value, file), at + "." + field,
                                      "expected a template or a constant, not a list or a map "
                                      "(quote a template: \"{field}\")");
                Step::Assignment a{field, std::nullopt, ""};
                const std::string& text = value.Scalar();
                JsonDecoder decoder;
                json::Value constant;
                std::string error;
                if (value.Tag() == "?" && decoder.decode_any(text, constant, error) &&
                    constant.kind() != json::Kind::String &&
                    constant.kind() != json::Kind::Object && constant.kind() != json::Kind::Array) {
                    a.json = text;  // an unquoted number, true, false or null
                } else if (text.find_first_of("{}") != std::string::npos) {
                    try {
                        a.tmpl.emplace(text);
                    } catch (const std::invalid_argument& e) {
                        throw ConfigError(mark_of(value, file), at + "." + field, e.what());
                    }
                } else {
                    json::append_quoted(text, a.json);
                }
                step.sets.push_back(std::move(a));
            }
        } else {
            step.kind = Step::Kind::Filter;
            for (const auto& entry : arg) {
                Step::Condition c;
                c.name = key_text(entry.first, file, at);
                size_t start = 0;
                while (true) {
                    const size_t dot = c.name.find('.', start);
                    c.path.push_back(
                        c.name.substr(start, dot == std::string::npos ? dot : dot - start));
                    if (c.path.back().empty())
                        throw ConfigError(mark_of(entry.first, file), at,
                                          "'" + c.name + "': empty part in a field name");
                    if (dot == std::string::npos) break;
                    start = dot + 1;
                }
                const YAML::Node values = entry.second;
                auto wrong = [&] {
                    return ConfigError(mark_of(values, file), at + "." + c.name,
                                       "expected a value or a list of values");
                };
                if (values.IsScalar()) {
                    c.values.push_back(values.Scalar());
                } else if (values.IsSequence() && values.size() > 0) {
                    for (const auto& v : values) {
                        if (!v.IsScalar()) throw wrong();
                        c.values.push_back(v.Scalar());
                    }
                } else {
                    throw wrong();
                }
                step.conditions.push_back(std::move(c));
            }
        }
        if (step.kind != Step::Kind::Drop && step.kind != Step::Kind::Select && arg.size() == 0)
            throw ConfigError(mark_of(arg, file), at, "an empty " + name + " does nothing");
        steps_.push_back(std::move(step));
    }
}

TransformChain::~TransformChain() = default;
TransformChain::TransformChain(TransformChain&&) noexcept = default;

size_t TransformChain::size() const {
    return steps_.size();
}

TransformChain::Entry* TransformChain::find(const std::string& key) {
    for (auto& e : entries_)
        if (e.key == key) return &e;
    return nullptr;
}

TransformChain::Outcome TransformChain::apply(const Record& record, const json::Value& in,
                                              std::string_view& value, json::Value& fields,
                                              Rejection& why) {
    bool loaded = false, changed = false;
    auto load = [&] {
        if (loaded) return;
        loaded = true;
        entries_.clear();
        for (const auto member : in.children()) {
            Entry e;
            e.key = std::string(member.key.string(scratch_));
            e.value = member.value;
            entries_.push_back(std::move(e));
        }
    };
    for (const Step& step : steps_) {
        switch (step.kind) {
            case Step::Kind::Drop:
                load();
                for (const auto& name : step.names) {
                    const auto end = std::remove_if(entries_.begin(), entries_.end(),
                                                    [&](const Entry& e) { return e.key == name; });
                    changed |= end != entries_.end();
                    entries_.erase(end, entries_.end());
                }
                break;
            case Step::Kind::Rename:
                load();
                for (const auto& rename : step.renames) {
                    // Named copies: clang rejects lambdas capturing structured bindings.
                    const std::string& from = rename.first;
                    const std::string& to = rename.second;
                    if (!find(from) || from == to) continue;
                    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                                  [&](const Entry& e) { return e.key == to; }),
                                   entries_.end());
                    find(from)->key = to;
                    changed = true;
                }
                break;
            case Step::Kind::Set:
                load();
                for (const auto& a : step.sets) {
                    std::string text;
                    if (!a.tmpl) {
                        text = a.json;
                    } else {
                        Lookup lookup(*this, in, true);
                        std::optional<std::string> fallback;
                        json::Value found;
                        std::string rendered, error;
                        if (const auto* path = a.tmpl->lone_field(&fallback);
                            path && lookup.find(*path, found) && !(found.is_null() && fallback)) {
                            found.append_json(text);  // a copy keeps its type and digits
                        } else if (a.tmpl->render(record, &lookup, rendered, error)) {
                            json::append_quoted(rendered, text);
                        } else {
                            why = {"transform", step.label + " " + a.field + ": " + error};
                            return Outcome::Refused;
                        }
                    }
                    Entry* e = find(a.field);
                    if (!e) {
                        entries_.emplace_back();
                        e = &entries_.back();
                        e->key = a.field;
                    }
                    e->text = std::move(text);
                    e->owned = true;
                    changed = true;
                }
                break;
            case Step::Kind::Filter: {
                Lookup lookup(*this, in, loaded);
                for (const auto& c : step.conditions) {
                    json::Value found;
                    std::string text;
                    const bool present = lookup.find(c.path, found);
                    if (present) found.append_text(text);
                    if (present &&
                        std::find(c.values.begin(), c.values.end(), text) != c.values.end())
                        continue;
                    why = {"filtered",
                           step.label + ": " + c.name + " is " +
                               (present ? "'" + text.substr(0, 60) + "'" : std::string("missing")) +
                               ", not one of " + join(c.values)};
                    return Outcome::Filtered;
                }
                break;
            }
            case Step::Kind::Select:
                load();
                spare_.clear();
                for (const auto& name : step.names)
                    if (Entry* e = find(name)) spare_.push_back(std::move(*e)), e->key.clear();
                entries_.swap(spare_);
                changed = true;
                break;
        }
    }
    if (!changed) {
        value = *record.value;
        fields = in;
        return Outcome::Keep;
    }
    out_.clear();
    out_ += '{';
    for (size_t i = 0; i < entries_.size(); ++i) {
        if (i) out_ += ',';
        json::append_quoted(entries_[i].key, out_);
        out_ += ':';
        if (entries_[i].owned)
            out_ += entries_[i].text;
        else
            entries_[i].value.append_json(out_);
    }
    out_ += '}';
    std::string error;
    if (!out_decoder_.decode(out_, fields, error)) {
        why = {"transform", "the transformed record is not valid JSON: " + error};
        return Outcome::Refused;
    }
    value = out_;
    return Outcome::Keep;
}

}  // namespace kbridge
