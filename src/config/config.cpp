#include "config/config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace kbridge {
namespace {

const OptionTable kTopLevel = {
    {"version", OptionType::Integer, "", "pipeline file format version; must be 1", {}, true},
    {"kafka", OptionType::StringMap, "", "defaults for every kafka source and sink"},
    {"redis", OptionType::StringMap, "", "defaults for every redis source and sink"},
    {"postgres", OptionType::StringMap, "", "defaults for every postgres source and sink"},
    {"pipelines", OptionType::StringList, "", "the pipelines", {}, true},
    {"lock", OptionType::StringMap, "", "a lock in Redis as well, for runs on several hosts"},
};

const OptionTable kLock = {
    {"redis",
     OptionType::String,
     "",
     "redis://[user:password@]host:port/db holding the locks",
     {},
     true},
    {"ttl", OptionType::Duration, "30s", "how long a lock outlives a holder that died"},
    {"connect_timeout", OptionType::Duration, "10s",
     "bound on connecting to the lock's Redis and on any wait for its answer"},
};

const OptionTable kKafkaDefaults = {
    {"brokers", OptionType::String, "localhost:9092",
     "bootstrap servers, or 'embedded' for an in-process cluster"},
    {"properties", OptionType::StringMap, "", "librdkafka properties, passed through"},
};
const OptionTable kRedisDefaults = {
    {"url", OptionType::String, "redis://localhost:6379/0",
     "redis://[user:password@]host:port/db or unix:///path"},
    {"connect_timeout", OptionType::Duration, "10s",
     "bound on connecting and on any wait for an answer"},
};
const OptionTable kPostgresDefaults = {
    {"url", OptionType::String, "", "libpq URI or key=value conninfo"},
    {"connect_timeout", OptionType::Duration, "10s",
     "bound on connecting and on any wait for an answer while not in a query"},
    {"query_timeout", OptionType::Duration, "5m",
     "bound on a wait for a query's answer (a silent server)"},
};
const OptionTable kPipeline = {
    {"name", OptionType::String, "", "unique name, [A-Za-z0-9_.-]+", {}, true},
    {"source", OptionType::Map, "", "where records come from", {}, true},
    {"sink", OptionType::Map, "", "where records go", {}, true},
    {"dead_letter", OptionType::Map, "", "where rejected records go"},
};

void expand_tree(YAML::Node node, const std::string& file) {
    if (node.IsScalar()) {
        const std::string& text = node.Scalar();
        if (text.find('$') != std::string::npos) node = expand_env(text, mark_of(node, file));
    } else if (node.IsSequence()) {
        for (auto child : node) expand_tree(child, file);
    } else if (node.IsMap()) {
        for (auto child : node) expand_tree(child.second, file);
    }
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> out;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, separator)) out.push_back(part);
    return out;
}

// Sets one value by a dotted path; list elements are chosen by index or by their `name`.
// Under maps of free-form keys (properties, headers) the rest of the path is one dotted key.
void apply_override(YAML::Node root, const std::string& assignment) {
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw ConfigError("--set " + assignment + ": expected PATH=VALUE");
    const std::vector<std::string> parts = split(assignment.substr(0, eq), '.');
    // A plain scalar keeps no mark, so errors about it say "--set" instead of a file place.
    YAML::Node value;
    try {
        value = YAML::Load(assignment.substr(eq + 1));
    } catch (const YAML::Exception& e) {
        throw ConfigError("--set " + assignment + ": " + e.msg);
    }
    if (value.IsScalar()) value = YAML::Node(value.Scalar());
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i < parts.size(); ++i) {
        YAML::Node current = chain.back();
        const bool last = i + 1 == parts.size();
        if (current.IsSequence()) {
            std::optional<YAML::Node> found;
            for (size_t k = 0; k < current.size(); ++k)
                if (parts[i] == std::to_string(k) || (current[k].IsMap() && current[k]["name"] &&
                                                      current[k]["name"].Scalar() == parts[i]))
                    found = current[k];
            if (!found || last)
                throw ConfigError("--set " + assignment + ": no list element '" + parts[i] + "'");
            chain.push_back(*found);
            continue;
        }
        if (current.IsDefined() && !current.IsMap() && !current.IsNull())
            throw ConfigError("--set " + assignment + ": '" + parts[i - 1] + "' is not a map");
        const bool free_form = i > 0 && (parts[i - 1] == "properties" || parts[i - 1] == "headers");
        if (free_form || last) {
            std::string key = parts[i];
            if (free_form)
                for (size_t k = i + 1; k < parts.size(); ++k) key += "." + parts[k];
            current[key] = value;
            return;
        }
        chain.push_back(current[parts[i]]);
    }
}

ConnectorConfig connector(const YAML::Node& node, const std::string& file,
                          const std::string& path) {
    const YAML::Node type = node["type"];
    if (!type || !type.IsScalar())
        throw ConfigError(mark_of(node, file), path, "missing required option 'type'");
    return ConnectorConfig{type.Scalar(), node, path};
}

}  // namespace

// A reference at text[at] ('$'): ${NAME} or ${NAME:-default}, ending before `end`. Scanned by
// hand: std::regex recurses once per character and overflowed the stack on a long default.
static bool parse_reference(const std::string& text, size_t at, std::string& name,
                            std::optional<std::string>& fallback, size_t& end) {
    auto name_char = [](char c, bool first) {
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (!first && c >= '0' && c <= '9');
    };
    size_t i = at + 2;
    if (text.compare(at, 2, "${") != 0 || i >= text.size() || !name_char(text[i], true))
        return false;
    while (i < text.size() && name_char(text[i], false)) ++i;
    name = text.substr(at + 2, i - at - 2);
    fallback.reset();
    if (text.compare(i, 2, ":-") == 0) {
        const size_t close = text.find('}', i + 2);
        if (close == std::string::npos) return false;
        fallback = text.substr(i + 2, close - i - 2);
        i = close;
    }
    if (i >= text.size() || text[i] != '}') return false;
    end = i + 1;
    return true;
}

std::string expand_env(const std::string& text, const Mark& mark) {
    std::string out, name;
    std::optional<std::string> fallback;
    size_t at = 0;
    while (true) {
        const size_t dollar = text.find('$', at);
        out.append(text, at, dollar == std::string::npos ? dollar : dollar - at);
        if (dollar == std::string::npos) return out;
        size_t end;
        if (text.compare(dollar, 2, "$$") == 0) {
            out += '$';
            at = dollar + 2;
            continue;
        }
        if (!parse_reference(text, dollar, name, fallback, end)) {
            out += '$';  // not a reference: taken as written
            at = dollar + 1;
            continue;
        }
        at = end;
        const char* value = std::getenv(name.c_str());
        if (value && *value)
            out += value;
        else if (fallback)
            out += *fallback;
        else if (value)
            out += value;
        else
            throw ConfigError(mark, "",
                              "environment variable '" + name +
                                  "' is not set and has no default (write ${" + name +
                                  ":-default})");
    }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
    Config config;
    config.file = path == "-" ? "<stdin>" : path;
    const std::string& file = config.file;
    YAML::Node root;
    try {
        if (path == "-") {
            root = YAML::Load(std::cin);
        } else {
            std::ifstream in(path);
            if (!in) throw ConfigError(path + ": cannot open the pipeline file");
            root = YAML::Load(in);
        }
    } catch (const YAML::Exception& e) {
        throw ConfigError(Mark{file, e.mark.line + 1, e.mark.column + 1}, "", e.msg);
    }
    if (!root.IsMap())
        throw ConfigError(Mark{file, 1, 1}, "", "expected a map with 'version' and 'pipelines'");
    for (const auto& assignment : overrides) apply_override(root, assignment);
    expand_tree(root, file);

    // The top level holds maps and a list; check its keys here, the blocks below.
    std::vector<std::string> names;
    for (const auto& s : kTopLevel) names.push_back(s.name);
    for (const auto& item : root) {
        const std::string key = key_text(item.first, file, "");
        if (std::find(names.begin(), names.end(), key) == names.end()) {
            std::string hint = did_you_mean(key, names);
            throw ConfigError(mark_of(item.first, file), "",
                              "unknown option '" + key + "'" +
                                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        }
    }
    const YAML::Node version = root["version"];
    if (!version)
        throw ConfigError(Mark{file, 1, 1}, "",
                          "missing required option 'version' (write 'version: 1')");
    if (!version.IsScalar() || version.Scalar() != "1")
        throw ConfigError(mark_of(version, file), "version",
                          "unsupported version (this kbridge reads version 1)");

    auto defaults = [&](const char* key, const OptionTable& table) {
        const YAML::Node node = root[key];
        return Options(node ? node : YAML::Node(YAML::NodeType::Map), table, file, key);
    };
    config.kafka = defaults("kafka", kKafkaDefaults);
    config.redis = defaults("redis", kRedisDefaults);
    config.postgres = defaults("postgres", kPostgresDefaults);
    if (root["lock"]) config.lock = defaults("lock", kLock);

    const YAML::Node pipelines = root["pipelines"];
    if (!pipelines || !pipelines.IsSequence() || pipelines.size() == 0)
        throw ConfigError(pipelines ? mark_of(pipelines, file) : Mark{file, 1, 1}, "pipelines",
                          "expected a non-empty list of pipelines");
    // Checked by hand: std::regex recurses once per character (a long name overflowed the stack).
    auto name_ok = [](const std::string& name) {
        return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                   c == '_' || c == '.' || c == '-';
        });
    };
    std::set<std::string> seen;
    for (size_t i = 0; i < pipelines.size(); ++i) {
        const std::string path_i = "pipelines[" + std::to_string(i) + "]";
        const YAML::Node node = pipelines[i];
        if (!node.IsMap())
            throw ConfigError(mark_of(node, file), path_i,
                              "expected a map with name, source and sink");
        // Checks the pipeline's own keys; its blocks are checked by their connectors.
        Options own(node, kPipeline, file, path_i);
        PipelineConfig p;
        p.name = own.str("name");
        p.mark = mark_of(node, file);
        if (!name_ok(p.name))
            throw own.error("name",
                            "'" + p.name + "' may only contain letters, digits, '_', '.' and '-'");
        if (!seen.insert(p.name).second)
            throw own.error("name", "duplicate pipeline name '" + p.name + "'");
        p.source = connector(node["source"], file, path_i + ".source");
        p.sink = connector(node["sink"], file, path_i + ".sink");
        if (node["dead_letter"])
            p.dead_letter = connector(node["dead_letter"], file, path_i + ".dead_letter");
        config.pipelines.push_back(std::move(p));
    }
    return config;
}

}  // namespace kbridge
