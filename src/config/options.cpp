#include "config/options.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace kbridge {
namespace {

const char* type_name(OptionType type) {
    switch (type) {
        case OptionType::String:
            return "a string";
        case OptionType::Integer:
            return "an integer";
        case OptionType::Boolean:
            return "true or false";
        case OptionType::Duration:
            return "a duration (e.g. 500ms, 30s, 5m)";
        case OptionType::Choice:
            return "one of the listed values";
        case OptionType::StringMap:
            return "a map of strings";
        case OptionType::StringList:
            return "a list of strings";
        case OptionType::Map:
            return "a map";
        case OptionType::List:
            return "a list";
    }
    return "a value";
}

// Optimal string alignment distance: a swap of two neighbours ("kye") counts as one edit.
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
        for (size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min(
                {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

bool parse_integer(const std::string& text, int64_t& out) {
    if (text.empty()) return false;
    size_t used = 0;
    try {
        out = std::stoll(text, &used, 10);
    } catch (const std::exception&) {
        return false;
    }
    return used == text.size();
}

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
    return out;
}

}  // namespace

Mark mark_of(const YAML::Node& node, const std::string& file) {
    const YAML::Mark m = node.Mark();
    if (m.is_null()) return Mark{"--set", 0, 0};
    return Mark{file, m.line + 1, m.column + 1};
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best_distance) best_distance = d, best = c;
    }
    return best;
}

bool parse_duration(const std::string& text, std::chrono::milliseconds& out) {
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    int64_t number = 0;
    if (digits == 0 || !parse_integer(text.substr(0, digits), number)) return false;
    const std::string unit = text.substr(digits);
    if (unit.empty() || unit == "ms")
        out = std::chrono::milliseconds(number);
    else if (unit == "s")
        out = std::chrono::seconds(number);
    else if (unit == "m")
        out = std::chrono::minutes(number);
    else if (unit == "h")
        out = std::chrono::hours(number);
    else
        return false;
    return true;
}

std::string key_text(const YAML::Node& key, const std::string& file, const std::string& path) {
    if (!key.IsScalar() && !key.IsNull())
        throw ConfigError(mark_of(key, file), path,
                          "a key must be a plain string, not a list or a map");
    return key.as<std::string>();
}

Options::Options(const YAML::Node& node, const OptionTable& table, const std::string& file,
                 const std::string& path)
    : file_(file), path_(path), block_mark_(mark_of(node, file)), table_(&table) {
    if (!node.IsMap()) throw ConfigError(block_mark_, path, "expected a map of options");
    std::vector<std::string> names;
    for (const auto& s : table) names.push_back(s.name);
    for (const auto& item : node) {
        const std::string key = key_text(item.first, file, path);
        const Mark key_mark = mark_of(item.first, file);
        auto found = std::find_if(table.begin(), table.end(),
                                  [&](const OptionSpec& s) { return s.name == key; });
        if (found == table.end()) {
            std::string hint = did_you_mean(key, names);
            throw ConfigError(key_mark, path,
                              "unknown option '" + key + "'" +
                                  (hint.empty() ? " (known: " + join(names) + ")"
                                                : " (did you mean '" + hint + "'?)"));
        }
        const YAML::Node& value = item.second;
        const Mark value_mark = mark_of(value, file);
        const std::string where = path + "." + key;
        auto wrong = [&]() {
            return ConfigError(value_mark, where,
                               std::string("expected ") + type_name(found->type));
        };
        switch (found->type) {
            case OptionType::StringMap:
                if (!value.IsMap()) throw wrong();
                for (const auto& entry : value) {
                    const std::string name = key_text(entry.first, file, where);
                    if (!entry.second.IsScalar())
                        throw ConfigError(mark_of(entry.second, file), where + "." + name,
                                          "expected a string");
                }
                break;
            case OptionType::Map:
                if (!value.IsMap()) throw wrong();
                break;
            case OptionType::List:
                if (!value.IsSequence()) throw wrong();
                break;
            case OptionType::StringList:
                if (!value.IsSequence() && !value.IsScalar()) throw wrong();
                if (value.IsSequence())
                    for (const auto& entry : value)
                        if (!entry.IsScalar()) throw wrong();
                break;
            default: {
                if (!value.IsScalar()) throw wrong();
                const std::string text = value.Scalar();
                int64_t number;
                std::chrono::milliseconds ms;
                if (found->type == OptionType::Integer && !parse_integer(text, number))
                    throw wrong();
                if (found->type == OptionType::Boolean && text != "true" && text != "false")
                    throw wrong();
                if (found->type == OptionType::Duration && !parse_duration(text, ms)) throw wrong();
                if (found->type == OptionType::Choice &&
                    std::find(found->choices.begin(), found->choices.end(), text) ==
                        found->choices.end())
                    throw ConfigError(value_mark, where,
                                      "'" + text + "' is not one of: " + join(found->choices));
            }
        }
        values_[key] = value;
    }
    for (const auto& s : table)
        if (s.required && !values_.count(s.name))
            throw ConfigError(block_mark_, path, "missing required option '" + s.name + "'");
}

const OptionSpec& Options::spec(const std::string& name) const {
    if (table_)
        for (const auto& s : *table_)
            if (s.name == name) return s;
    throw std::logic_error("option '" + name + "' is not in the option table of " + path_);
}

bool Options::has(const std::string& name) const {
    spec(name);
    return values_.count(name) > 0;
}

std::string Options::str(const std::string& name) const {
    const OptionSpec& s = spec(name);
    auto it = values_.find(name);
    return it == values_.end() ? s.default_value : it->second.Scalar();
}

int64_t Options::integer(const std::string& name) const {
    int64_t out = 0;
    if (!parse_integer(str(name), out))
        throw std::logic_error("option '" + name + "' has no integer default");
    return out;
}

bool Options::boolean(const std::string& name) const {
    return str(name) == "true";
}

std::chrono::milliseconds Options::duration(const std::string& name) const {
    std::chrono::milliseconds out{0};
    parse_duration(str(name), out);
    return out;
}

std::map<std::string, std::string> Options::string_map(const std::string& name) const {
    spec(name);
    std::map<std::string, std::string> out;
    auto it = values_.find(name);
    if (it != values_.end())
        for (const auto& entry : it->second)
            out[entry.first.as<std::string>()] = entry.second.Scalar();
    return out;
}

std::vector<std::string> Options::string_list(const std::string& name) const {
    spec(name);
    std::vector<std::string> out;
    auto it = values_.find(name);
    if (it == values_.end()) return out;
    if (it->second.IsScalar()) return {it->second.Scalar()};
    for (const auto& entry : it->second) out.push_back(entry.Scalar());
    return out;
}

Mark Options::mark(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? block_mark_ : mark_of(it->second, file_);
}

ConfigError Options::error(const std::string& name, const std::string& message) const {
    return ConfigError(mark(name), path_ + "." + name, message);
}

}  // namespace kbridge
