#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace kbridge {
namespace {

// Far beyond any pipeline file; keeps a mistaken path (a log, a disk image) from being read whole.
constexpr size_t kMaxFileBytes = 16u << 20;

const OptionTable kTopLevel = {
    {"version", OptionType::Integer, "", "pipeline file format version; must be 1", {}, true},
    {"kafka", OptionType::StringMap, "", "defaults for every kafka source and sink"},
    {"redis", OptionType::StringMap, "", "defaults for every redis source and sink"},
    {"postgres", OptionType::StringMap, "", "defaults for every postgres source and sink"},
    {"mysql", OptionType::StringMap, "", "defaults for every mysql_table sink"},
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
    {"cluster", OptionType::Boolean, "false",
     "the URL names a node of a Redis Cluster (implied when it names several)"},
};
const OptionTable kMysqlDefaults = {
    {"url", OptionType::String, "", "mysql://user:password@host:3306/database"},
    {"connect_timeout", OptionType::Duration, "10s", "bound on connecting"},
    {"query_timeout", OptionType::Duration, "5m", "bound on a wait for a statement's answer"},
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
    {"transforms", OptionType::List, "",
     "drop, rename, set, filter and select steps applied in order between decoding and the sink"},
};

// Aliases share their anchor's node, so a walk meets it once per alias: nested anchors
// ("billion laughs") make a 1 KB file a walk of billions. A node met again is counted, and the
// file refused past kMaxAliasedNodes, before anything else walks the tree.
constexpr size_t kMaxAliasedNodes = 10000;
// Pipeline files nest a few levels; this keeps every recursive walk of the tree shallow.
constexpr size_t kMaxDepth = 200;

// Nodes by identity: an alias yields its anchor's own node (mark included), so nodes are
// bucketed by place and kind and told apart within a bucket by YAML::Node::is().
class NodeSet {
  public:
    // False when `node` is already in the set.
    bool insert(const YAML::Node& node) {
        const YAML::Mark m = node.Mark();
        auto& bucket = buckets_[{m.line, m.column, static_cast<int>(node.Type())}];
        for (const auto& other : bucket)
            if (other.is(node)) return false;
        bucket.push_back(node);
        return true;
    }

  private:
    std::map<std::tuple<int, int, int>, std::vector<YAML::Node>> buckets_;
};

class TreeCheck {
  public:
    explicit TreeCheck(std::string file) : file_(std::move(file)) {}

    // Refuses alias bombs, aliases inside their own anchor, deep nesting and duplicate keys;
    // checks each node once however often it is reached.
    void walk(const YAML::Node& node) {
        if (path_.size() >= kMaxDepth)
            throw ConfigError(mark_of(node, file_), "",
                              "nested more than " + std::to_string(kMaxDepth) + " levels deep");
        const bool first_visit = seen_.insert(node);
        if (!first_visit) {
            if (++aliased_ > kMaxAliasedNodes)
                throw ConfigError(mark_of(node, file_), "",
                                  "aliases expand to more than " +
                                      std::to_string(kMaxAliasedNodes) +
                                      " nodes (nested anchors?); refusing the file");
            // Only a node met before can close a cycle: "&a [*a]" contains itself.
            for (const auto& ancestor : path_)
                if (ancestor.is(node))
                    throw ConfigError(mark_of(node, file_), "",
                                      "an alias refers to a node that contains it");
        }
        path_.push_back(node);
        walk_children(node, first_visit);
        path_.pop_back();
    }

  private:
    void walk_children(const YAML::Node& node, bool first_visit) {
        if (node.IsSequence()) {
            for (const auto& child : node) walk(child);
        } else if (node.IsMap()) {
            std::map<std::string, Mark> keys;
            for (const auto& item : node) {
                if (first_visit && item.first.IsScalar()) {
                    const Mark here = mark_of(item.first, file_);
                    auto [it, fresh] = keys.emplace(item.first.Scalar(), here);
                    if (!fresh)
                        throw ConfigError(here, "",
                                          "duplicate key '" + item.first.Scalar() + "' (first at " +
                                              it->second.str() + ")");
                }
                walk(item.first);
                walk(item.second);
            }
        }
    }

    const std::string file_;
    NodeSet seen_;
    std::vector<YAML::Node> path_;  // the nodes from the root to the one being walked
    size_t aliased_ = 0;
};

// A node reached again through an alias is expanded once: "$${X}" stays "${X}".
void expand_tree(YAML::Node node, const std::string& file, NodeSet& done) {
    if (!done.insert(node)) return;
    if (node.IsScalar()) {
        const std::string& text = node.Scalar();
        if (text.find('$') != std::string::npos) node = expand_env(text, mark_of(node, file));
    } else if (node.IsSequence()) {
        for (auto child : node) expand_tree(child, file, done);
    } else if (node.IsMap()) {
        for (auto child : node) expand_tree(child.second, file, done);
    }
}

// The whole file, or a ConfigError with the OS's reason; `name` is how messages call it.
std::string read_pipeline_file(const std::string& path, const std::string& name) {
    const bool from_stdin = path == "-";
    const int fd = from_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    auto fail = [&](int error) {
        if (!from_stdin && fd >= 0) ::close(fd);
        return ConfigError(name + ": cannot read the pipeline file: " + std::strerror(error));
    };
    if (fd < 0) throw fail(errno);
    struct stat info {};
    if (::fstat(fd, &info) != 0) throw fail(errno);
    if (S_ISDIR(info.st_mode)) throw fail(EISDIR);
    std::string text;
    char buffer[65536];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw fail(errno);
        }
        if (text.size() + static_cast<size_t>(n) > kMaxFileBytes)
            throw ConfigError(name + ": the pipeline file is larger than " +
                              std::to_string(kMaxFileBytes >> 20) + " MB");
        text.append(buffer, static_cast<size_t>(n));
    }
    if (!from_stdin) ::close(fd);
    return text;
}

// The place of the first byte that is not UTF-8, or a null mark when all of it is.
Mark first_invalid_utf8(const std::string& text, const std::string& file) {
    int line = 1, column = 1;
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        size_t length = c < 0x80           ? 1
                        : (c >> 5) == 0x6  ? 2
                        : (c >> 4) == 0xe  ? 3
                        : (c >> 3) == 0x1e ? 4
                                           : 0;
        bool ok = length > 0 && i + length <= text.size();
        for (size_t k = 1; ok && k < length; ++k)
            ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
        if (ok && length > 1) {
            // No overlong forms, surrogates or code points past U+10FFFF.
            const auto c1 = static_cast<unsigned char>(text[i + 1]);
            ok =
                !(c == 0xc0 || c == 0xc1 || (c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) ||
                  (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90) || c > 0xf4);
        }
        if (!ok) return Mark{file, line, column};
        if (c == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        i += length;
    }
    return Mark{file, 0, 0};
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> out;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, separator)) out.push_back(part);
    return out;
}

// A copy whose nodes keep no mark: errors about them say "--set", and their places in the value
// cannot be taken for places in the file.
YAML::Node without_marks(const YAML::Node& node) {
    if (node.IsScalar()) return YAML::Node(node.Scalar());
    YAML::Node out(node.Type());
    if (node.IsSequence())
        for (const auto& child : node) out.push_back(without_marks(child));
    if (node.IsMap())
        for (const auto& item : node) out[without_marks(item.first)] = without_marks(item.second);
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
        TreeCheck("--set").walk(value);
    } catch (const YAML::Exception& e) {
        throw ConfigError("--set " + assignment + ": " + e.msg);
    }
    value = without_marks(value);
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

std::string expand_env(const std::string& text, const Mark& mark) {
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        const size_t dollar = text.find('$', i);
        out.append(text, i, dollar == std::string::npos ? std::string::npos : dollar - i);
        if (dollar == std::string::npos) break;
        const char next = dollar + 1 < text.size() ? text[dollar + 1] : '\0';
        if (next == '$') {
            out += '$';
            i = dollar + 2;
            continue;
        }
        if (next != '{') {
            out += '$';
            i = dollar + 1;
            continue;
        }
        const size_t close = text.find('}', dollar + 2);
        if (close == std::string::npos)
            throw ConfigError(
                mark, "",
                "'${' without a closing '}' in '" + text + "' (write $${ for a literal '${')");
        const std::string inside = text.substr(dollar + 2, close - dollar - 2);
        const size_t fallback = inside.find(":-");
        const std::string name = inside.substr(0, fallback);
        // By hand: std::regex recurses once per character (a long text overflowed the stack).
        const bool valid_name = !name.empty() &&
                                !std::isdigit(static_cast<unsigned char>(name[0])) &&
                                std::all_of(name.begin(), name.end(), [](char c) {
                                    return c == '_' || std::isalnum(static_cast<unsigned char>(c));
                                });
        if (!valid_name)
            throw ConfigError(mark, "",
                              "'${" + inside + "}': '" + name +
                                  "' is not an environment variable name (write $${ for a "
                                  "literal '${')");
        const char* value = std::getenv(name.c_str());
        if (value && *value)
            out += value;
        else if (fallback != std::string::npos)
            out += inside.substr(fallback + 2);
        else if (value)
            out += value;
        else
            throw ConfigError(mark, "",
                              "environment variable '" + name +
                                  "' is not set and has no default (write ${" + name +
                                  ":-default})");
        i = close + 1;
    }
    return out;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
    Config config;
    config.file = path == "-" ? "<stdin>" : path;
    const std::string& file = config.file;
    const std::string text = read_pipeline_file(path, file);
    const Mark bad_byte = first_invalid_utf8(text, file);
    if (bad_byte.line != 0)
        throw ConfigError(bad_byte, "", "not UTF-8 text (save the pipeline file as UTF-8)");
    YAML::Node root;
    try {
        root = YAML::Load(text);
        TreeCheck(file).walk(root);
    } catch (const YAML::Exception& e) {
        throw ConfigError(Mark{file, e.mark.line + 1, e.mark.column + 1}, "", e.msg);
    }
    if (!root.IsMap())
        throw ConfigError(Mark{file, 1, 1}, "", "expected a map with 'version' and 'pipelines'");
    for (const auto& assignment : overrides) apply_override(root, assignment);
    NodeSet expanded;
    expand_tree(root, file, expanded);
    return config_from_yaml(root, file);
}

Config config_from_yaml(const YAML::Node& root, const std::string& file) {
    Config config;
    config.file = file;
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
    config.mysql = defaults("mysql", kMysqlDefaults);
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
        if (node["transforms"]) p.transforms = node["transforms"];
        config.pipelines.push_back(std::move(p));
    }
    return config;
}

const std::vector<FileBlock>& file_blocks() {
    static const std::vector<FileBlock> blocks = {
        {"", &kTopLevel},           {"kafka", &kKafkaDefaults},
        {"redis", &kRedisDefaults}, {"postgres", &kPostgresDefaults},
        {"lock", &kLock},           {"pipeline", &kPipeline},
    };
    return blocks;
}

}  // namespace kbridge
