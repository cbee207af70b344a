#include "cli/describe.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "cli/commands.h"
#include "config/config.h"
#include "core/registry.h"

namespace kbridge {
namespace {

// What describe walks: the registry's sources and sinks, then the file's own blocks.
struct Section {
    std::string kind;  // "source", "sink" or "block"
    std::string name;  // the connector's `type:`, or the block's key ("" for the top level)
    const OptionTable* options;
};

std::vector<Section> sections(const std::string& type) {
    std::vector<Section> out;
    auto wanted = [&](const std::string& name) { return type.empty() || type == name; };
    for (const auto& k : source_kinds())
        if (wanted(k.type)) out.push_back({"source", k.type, k.options});
    for (const auto& k : sink_kinds())
        if (wanted(k.type)) out.push_back({"sink", k.type, k.options});
    for (const auto& b : file_blocks())
        if (wanted(b.name)) out.push_back({"block", b.name, b.options});
    return out;
}

// The `type` row names the connector: it is the section's heading, not an option to describe.
bool shown(const OptionSpec& o) {
    return o.name != "type";
}

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (const unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string join(const std::vector<std::string>& words, const std::string& sep) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
    return out;
}

std::string options_json(const OptionTable& table) {
    std::string out = "[";
    for (const auto& o : table) {
        if (!shown(o)) continue;
        std::vector<std::string> choices;
        for (const auto& c : o.choices) choices.push_back(json_string(c));
        if (out.size() > 1) out += ",";
        out +=
            "{\"name\":" + json_string(o.name) + ",\"type\":\"" + option_type_word(o.type) +
            "\",\"default\":" + (o.default_value.empty() ? "null" : json_string(o.default_value)) +
            ",\"choices\":[" + join(choices, ",") + "],\"help\":" + json_string(o.help) +
            ",\"required\":" + (o.required ? "true" : "false") + "}";
    }
    return out + "]";
}

std::string summary(const OptionSpec& o) {
    std::string out = option_type_word(o.type);
    if (!o.choices.empty()) out += ": " + join(o.choices, " | ");
    if (o.required) out += "; required";
    if (!o.default_value.empty()) out += "; default: " + o.default_value;
    return out;
}

std::string heading(const Section& s) {
    if (s.kind != "block") return s.kind + " " + s.name;
    return s.name.empty() ? std::string("top level of the pipeline file") : "block " + s.name;
}

}  // namespace

const char* option_type_word(OptionType type) {
    switch (type) {
        case OptionType::String:
            return "string";
        case OptionType::Integer:
            return "integer";
        case OptionType::Boolean:
            return "boolean";
        case OptionType::Duration:
            return "duration";
        case OptionType::Choice:
            return "choice";
        case OptionType::StringMap:
            return "map";
        case OptionType::StringList:
            return "list";
        case OptionType::Map:
            return "block";
        case OptionType::List:
            return "list of blocks";
    }
    return "value";
}

bool describes_something(const std::string& type) {
    return !sections(type).empty();
}

std::vector<std::string> describable_names() {
    std::set<std::string> names;
    for (const auto& s : sections(""))
        if (!s.name.empty()) names.insert(s.name);
    return {names.begin(), names.end()};
}

std::string describe_text(const std::string& type) {
    std::string out;
    for (const auto& s : sections(type)) {
        out += (out.empty() ? "" : "\n") + heading(s) + "\n";
        for (const auto& o : *s.options)
            if (shown(o)) out += "  " + o.name + "  (" + summary(o) + ")\n      " + o.help + "\n";
    }
    return out;
}

std::string describe_json(const std::string& type) {
    std::string sources, sinks, blocks;
    for (const auto& s : sections(type)) {
        std::string& list = s.kind == "source" ? sources : s.kind == "sink" ? sinks : blocks;
        list += (list.empty() ? "" : ",") + std::string("{\"") +
                (s.kind == "block" ? "name" : "type") + "\":" + json_string(s.name) +
                ",\"options\":" + options_json(*s.options) + "}";
    }
    return "{\"version\":" + json_string(KBRIDGE_VERSION) + ",\"sources\":[" + sources +
           "],\"sinks\":[" + sinks + "],\"blocks\":[" + blocks + "]}\n";
}

std::string markdown_table(const OptionTable& table) {
    auto cell = [](const std::string& text) {
        std::string out;
        for (const char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
        return out;
    };
    std::string out = "| option | default | meaning |\n|---|---|---|\n";
    for (const auto& o : table) {
        if (!shown(o)) continue;
        const std::string def = o.required                ? "(required)"
                                : o.default_value.empty() ? ""
                                                          : "`" + o.default_value + "`";
        std::string meaning = cell(o.help);
        if (!o.choices.empty()) {
            std::vector<std::string> quoted;
            for (const auto& c : o.choices) quoted.push_back("`" + c + "`");
            meaning += ": " + join(quoted, ", ");
        }
        out += "| `" + o.name + "` | " + cell(def) + " | " + meaning + " |\n";
    }
    return out;
}

std::string describe_markdown(const std::string& type) {
    std::string out;
    for (const auto& s : sections(type)) {
        if (s.kind == "block") continue;
        const std::string kind = s.kind == "source" ? "Source" : "Sink";
        out += (out.empty() ? "" : "\n") + ("### " + kind + " `" + s.name + "`\n") +
               markdown_table(*s.options);
    }
    return out;
}

std::string roff_escape(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\')
            out += "\\e";
        else if (c == '-')
            out += "\\-";
        else if ((c == '.' || c == '\'') && (i == 0 || text[i - 1] == '\n'))
            out += std::string("\\&") + c;
        else
            out += c;
    }
    return out;
}

std::string pipeline_file_man_page() {
    std::string out = ".TH KBRIDGE.YAML 5 \"\" \"kbridge " KBRIDGE_VERSION "\" \"File Formats\"\n";
    out +=
        ".SH NAME\nkbridge.yaml \\- kbridge pipeline file\n"
        ".SH SYNOPSIS\n.nf\nversion: 1\nkafka: {brokers: ${KAFKA_BROKERS:\\-localhost:9092}}\n"
        "pipelines:\n  \\- name: NAME\n    source: {type: TYPE, ...}\n"
        "    sink: {type: TYPE, ...}\n    dead_letter: {type: kafka, topic: ...}\n.fi\n"
        ".SH DESCRIPTION\nA pipeline file names pipelines, each moving records from a source to a "
        "sink. Values may use \\fB${VAR}\\fR and \\fB${VAR:\\-default}\\fR from the environment "
        "(\\fB$$\\fR is a literal $). Unknown keys, wrong types and bad values are refused with "
        "their place in the file. Durations are written 500ms, 30s, 5m or 1h. "
        "\\fBkbridge describe\\fR prints the same tables; \\fBkbridge validate FILE\\fR checks a "
        "file without connecting.\n";
    // The file's own blocks first, as a reader meets them in a file.
    std::vector<Section> all = sections("");
    std::stable_partition(all.begin(), all.end(),
                          [](const Section& s) { return s.kind == "block"; });
    std::string section;
    for (const auto& s : all) {
        const std::string title = s.kind == "source" ? "SOURCES"
                                  : s.kind == "sink" ? "SINKS"
                                                     : "FILE BLOCKS";
        if (title != section) out += ".SH " + (section = title) + "\n";
        out += ".SS \"" + roff_escape(heading(s)) + "\"\n";
        for (const auto& o : *s.options) {
            if (!shown(o)) continue;
            out += ".TP\n\\fB" + roff_escape(o.name) + "\\fR (" + roff_escape(summary(o)) + ")\n" +
                   roff_escape(o.help) + "\n";
        }
    }
    out += ".SH SEE ALSO\n\\fBkbridge\\fR(1)\n";
    return out;
}

int describe_command(const DescribeArgs& args) {
    if (!describes_something(args.type)) {
        const std::vector<std::string> known = describable_names();
        const std::string hint = did_you_mean(args.type, known);
        std::fprintf(stderr, "kbridge: describe: no connector or block named '%s' (%s)\n",
                     args.type.c_str(),
                     (hint.empty() ? "known: " + join(known, ", ") : "did you mean '" + hint + "'?")
                         .c_str());
        return kExitUsage;
    }
    std::string out;
    if (args.format == "json")
        out = describe_json(args.type);
    else if (args.format == "markdown")
        out = describe_markdown(args.type);
    else
        out = describe_text(args.type);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
}

}  // namespace kbridge
