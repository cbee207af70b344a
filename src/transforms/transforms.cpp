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

// The text a filter compares: as append_text() has it, without copying what needs no change.
std::string_view filter_text(const json::Value& value, std::string& scratch) {
    if (value.is_string()) return value.string(scratch);
    if (!value.is_object() && !value.is_array()) return value.raw();
    scratch.clear();
    value.append_json(scratch);
    return scratch;
}

}  // namespace

const OptionTable& transform_options() {
    return kTransforms;
}

struct TransformChain::Step {
    enum class Kind { Drop, Rename, Set, Filter, Select };
    // A field name a step gives: as compared, and as written (quoted once, here).
    struct Name {
        explicit Name(std::string name) : text(std::move(name)) {
            escaped = json::ObjectWriter::quote(text, quoted).escaped;
        }
        json::ObjectWriter::Name written() const { return {quoted, escaped}; }
        std::string text, quoted;
        bool escaped;  // the quoted text holds escapes
    };
    struct Assignment {
        Name field;
        std::optional<Template> tmpl;
        std::string json;                      // a constant's JSON text, without a template
        json::Kind kind = json::Kind::String;  // the constant's
        bool escaped = false;                  // a constant string's JSON holds escapes
        bool lone = false;                     // tmpl is one field reference: copied with its type
        bool lone_fallback = false;            // that reference has a default
    };
    struct Rename {
        std::string from;
        Name to;
    };
    struct Condition {
        std::string name;  // dotted, as written
        std::vector<std::string> path;
        std::vector<std::string> values;
    };
    Kind kind;
    std::string label;  // e.g. "transforms[2] set"
    std::vector<std::string> names;
    std::vector<Rename> renames;
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
            out = chain_.value_of(*e);
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
                step.renames.push_back({from, Step::Name(to)});
            }
        } else if (name == "set") {
            step.kind = Step::Kind::Set;
            for (const auto& entry : arg) {
                const std::string field = key_text(entry.first, file, at);
                top_level(entry.first, at, field);
                const YAML::Node value = entry.second;
                if (value.IsNull()) {
                    step.sets.push_back(
                        {Step::Name(field), std::nullopt, "null", json::Kind::Null});
                    continue;
                }
                if (!value.IsScalar())
                    throw ConfigError(mark_of(value, file), at + "." + field,
                                      "expected a template or a constant, not a list or a map "
                                      "(quote a template: \"{field}\")");
                Step::Assignment a{Step::Name(field), std::nullopt, "", json::Kind::String};
                const std::string& text = value.Scalar();
                JsonDecoder decoder;
                json::Value constant;
                std::string error;
                if (value.Tag() == "?" && decoder.decode_any(text, constant, error) &&
                    constant.kind() != json::Kind::String &&
                    constant.kind() != json::Kind::Object && constant.kind() != json::Kind::Array) {
                    a.json = text;  // an unquoted number, true, false or null
                    a.kind = constant.kind();
                } else if (text.find_first_of("{}") != std::string::npos) {
                    try {
                        a.tmpl.emplace(text);
                    } catch (const std::invalid_argument& e) {
                        throw ConfigError(mark_of(value, file), at + "." + field, e.what());
                    }
                    std::optional<std::string> fallback;
                    a.lone = a.tmpl->lone_field(&fallback) != nullptr;
                    a.lone_fallback = fallback.has_value();
                } else {
                    json::append_quoted(text, a.json);
                    a.escaped = a.json.find('\\') != std::string::npos;
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

TransformChain::Entry* TransformChain::find(std::string_view key) {
    for (auto& e : entries_)
        if (e.key == key) return &e;
    return nullptr;
}

void TransformChain::load(const json::Value& in) {
    entries_.clear();
    for (const auto member : in.children()) {
        Entry& e = entries_.emplace_back();  // in place: see set_value()
        keep_key(member.key, e);
        e.value = member.value;
    }
}

// A key as views that last through apply(): the record's own text unless it has escapes (then
// unescaped, and quoted again as the writer would).
void TransformChain::keep_key(const json::Value& key, Entry& e) {
    const std::string_view raw = key.raw();
    if (std::none_of(raw.begin(), raw.end(),
                     [](char c) { return c == '\\'; })) {  // short: no memchr call
        e.key = raw;
        e.name = {{raw.data() - 1, raw.size() + 2}, false};  // with the quotes around it
        return;
    }
    while (escaped_keys_.size() < escaped_used_ + 2) escaped_keys_.emplace_back();
    std::string& unescaped = escaped_keys_[escaped_used_++];
    unescaped.clear();
    json::unescape(raw, unescaped);
    e.key = unescaped;
    e.name = json::ObjectWriter::quote(unescaped, escaped_keys_[escaped_used_++]);
}

// An entry's value as templates and filters read it; a written one is valid until the next call.
json::Value TransformChain::value_of(const Entry& e) {
    if (!e.written) return e.value;
    std::string_view text = written(e);
    if (e.kind == json::Kind::String) text = text.substr(1, text.size() - 2);
    lookup_node_ = {text.data(), static_cast<uint32_t>(text.size()), 1, e.kind, e.escaped};
    return json::Value(&lookup_node_, 0);
}

// Field by field: a whole Entry copied just after its fields were stored stalls the CPU (the
// wide loads cannot be forwarded from the narrow stores).
void TransformChain::set_value(Entry& to, const Entry& from) {
    to.value = from.value;
    to.at = from.at;
    to.size = from.size;
    to.kind = from.kind;
    to.escaped = from.escaped;
    to.written = from.written;
}

// A lone "{field}" copies the value itself, so it keeps its type and digits; false when the
// field is missing (or null with a default): the template renders it instead.
bool TransformChain::copy_field(const std::vector<std::string>& path, bool fallback, Entry& to) {
    const Entry* from = find(path[0]);
    if (!from) return false;
    if (path.size() == 1) {
        const bool null = from->written ? from->kind == json::Kind::Null : from->value.is_null();
        if (null && fallback) return false;
        set_value(to, *from);
        return true;
    }
    if (from->written) return false;  // a scalar has no members
    json::Value found = from->value;
    for (size_t i = 1; i < path.size(); ++i)
        if (!found.find(path[i], found)) return false;
    if (found.is_null() && fallback) return false;
    to.value = found;
    to.written = false;
    return true;
}

TransformChain::Outcome TransformChain::apply(const Record& record, const json::Value& in,
                                              std::string_view& value, json::Value& fields,
                                              Rejection& why) {
    bool loaded = false, changed = false;
    written_.clear();
    escaped_used_ = 0;
    auto load_once = [&] {
        if (!loaded) load(in);
        loaded = true;
    };
    for (const Step& step : steps_) {
        switch (step.kind) {
            case Step::Kind::Drop:
                load_once();
                for (const auto& name : step.names) {
                    const auto end = std::remove_if(entries_.begin(), entries_.end(),
                                                    [&](const Entry& e) { return e.key == name; });
                    changed |= end != entries_.end();
                    entries_.erase(end, entries_.end());
                }
                break;
            case Step::Kind::Rename:
                load_once();
                for (const auto& rename : step.renames) {
                    const std::string& to = rename.to.text;
                    if (!find(rename.from) || rename.from == to) continue;
                    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                                  [&](const Entry& e) { return e.key == to; }),
                                   entries_.end());
                    Entry* e = find(rename.from);
                    e->key = to;
                    e->name = rename.to.written();
                    changed = true;
                }
                break;
            case Step::Kind::Set:
                load_once();
                for (const auto& a : step.sets) {
                    Entry set;
                    if (!a.tmpl) {
                        set.at = static_cast<uint32_t>(written_.size());
                        set.size = static_cast<uint32_t>(a.json.size());
                        written_ += a.json;
                        set.kind = a.kind;
                        set.escaped = a.escaped;
                        set.written = true;
                    } else if (!(a.lone &&
                                 copy_field(*a.tmpl->lone_field(nullptr), a.lone_fallback, set))) {
                        Lookup lookup(*this, in, true);
                        rendered_.clear();
                        if (!a.tmpl->render(record, &lookup, rendered_, error_)) {
                            why = {"transform", step.label + " " + a.field.text + ": " + error_};
                            return Outcome::Refused;
                        }
                        set.at = static_cast<uint32_t>(written_.size());
                        json::append_quoted(rendered_, written_);
                        set.kind = json::Kind::String;
                        set.size = static_cast<uint32_t>(written_.size() - set.at);
                        set.escaped = set.size != rendered_.size() + 2;
                        set.written = true;
                    }
                    Entry* e = find(a.field.text);
                    if (!e) {
                        e = &entries_.emplace_back();
                        e->key = a.field.text;
                        e->name = a.field.written();
                    }
                    set_value(*e, set);
                    changed = true;
                }
                break;
            case Step::Kind::Filter: {
                Lookup lookup(*this, in, loaded);
                for (const auto& c : step.conditions) {
                    json::Value found;
                    std::string_view text;
                    const bool present = lookup.find(c.path, found);
                    if (present) text = filter_text(found, scratch_);
                    if (present &&
                        std::find(c.values.begin(), c.values.end(), text) != c.values.end())
                        continue;
                    why = {"filtered", step.label + ": " + c.name + " is " +
                                           (present ? "'" + std::string(text.substr(0, 60)) + "'"
                                                    : std::string("missing")) +
                                           ", not one of " + join(c.values)};
                    return Outcome::Filtered;
                }
                break;
            }
            case Step::Kind::Select:
                load_once();
                spare_.clear();
                for (const auto& name : step.names)
                    if (Entry* e = find(name)) spare_.push_back(*e), e->key = {};
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
    writer_.clear();
    for (const Entry& e : entries_) {
        if (e.written)
            writer_.add_scalar(e.name, written(e), e.kind, e.escaped);
        else
            writer_.add(e.name, e.value);
    }
    if (!writer_.finish(value, fields, error_)) {
        why = {"transform", "the transformed record is not valid JSON: " + error_};
        return Outcome::Refused;
    }
    return Outcome::Keep;
}

}  // namespace kbridge
