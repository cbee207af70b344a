#include "cli/generate.h"

#include <cctype>
#include <cstdio>
#include <set>

#include "cli/commands.h"
#include "cli/describe.h"

namespace kbridge {
namespace {

// Hidden subcommands and options (group "") are for the build, not for users.
std::vector<const CLI::App*> commands(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App* c) { return !c->get_group().empty(); });
}

// A subcommand's own --help is left out: `kbridge --help` stands for all of them.
std::vector<const CLI::Option*> flags_and_options(const CLI::App& app) {
    const bool top = app.get_parent() == nullptr;
    return app.get_options([top](const CLI::Option* o) {
        return o->nonpositional() && !o->get_group().empty() && (top || o->get_name() != "--help");
    });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return o->get_positional(); });
}

bool takes_value(const CLI::Option* o) {
    return o->get_expected_max() != 0;  // flags expect nothing
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    std::string word;
    for (const char c : text) {
        if (c == sep) {
            out.push_back(word);
            word.clear();
        } else if (c != ' ') {
            word += c;
        }
    }
    out.push_back(word);
    return out;
}

// The words an option or positional takes: a CLI::IsMember set ("TEXT:{a,b}" in its type name),
// or a description that is only "a|b|c".
std::vector<std::string> value_words(const CLI::Option* o) {
    const std::string type = o->get_type_name();
    const size_t open = type.find('{');
    const size_t close = type.rfind('}');
    if (open != std::string::npos && close != std::string::npos && close > open)
        return split(type.substr(open + 1, close - open - 1), ',');
    const std::string& d = o->get_description();
    if (d.find('|') == std::string::npos) return {};
    for (const char c : d)
        if (!std::islower(static_cast<unsigned char>(c)) && c != '|' && c != '_' && c != ' ')
            return {};
    return split(d, '|');
}

std::string join(const std::vector<std::string>& words, const std::string& sep) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
    return out;
}

std::string upper(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

std::string value_name(const CLI::Option* o) {
    const std::vector<std::string> words = value_words(o);
    if (!words.empty()) return join(words, "|");
    std::string name = o->get_lnames().empty() ? "VALUE" : upper(o->get_lnames().front());
    for (auto& c : name)
        if (c == '-') c = '_';
    return name;
}

std::string option_names(const CLI::Option* o) {
    std::vector<std::string> names;
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    return join(names, ", ");
}

std::string man_options(const std::vector<const CLI::Option*>& options) {
    std::string out;
    for (const auto* o : options) {
        out += ".TP\n\\fB" + roff_escape(option_names(o)) + "\\fR";
        std::string help = o->get_description();
        if (takes_value(o)) {
            out += " \\fI" + roff_escape(value_name(o)) + "\\fR";
            if (split(help, '|') == value_words(o)) help = "one of the values shown";
        }
        out += "\n" + roff_escape(help) + "\n";
    }
    return out;
}

std::string synopsis(const CLI::App& command) {
    std::string out = "kbridge " + command.get_name();
    for (const auto* p : positionals(command)) {
        const std::string name = upper(p->get_name(true));
        out += " " + (p->get_required() ? name : "[" + name + "]");
    }
    if (!flags_and_options(command).empty()) out += " [OPTIONS]";
    return out;
}

// Quotes for a zsh _arguments spec: its own brackets and colons, and the shell's single quotes.
std::string zsh_text(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '[' || c == ']' || c == ':' || c == '\\')
            out += std::string("\\") + c;
        else if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out;
}

// For _describe, where only the first colon separates name from description.
std::string shell_quoted(const std::string& text) {
    std::string out;
    for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out;
}

}  // namespace

std::string cli_man_page(const CLI::App& app) {
    std::string out = ".TH KBRIDGE 1 \"\" \"kbridge " KBRIDGE_VERSION "\" \"User Commands\"\n";
    out += ".SH NAME\nkbridge \\- " +
           roff_escape("moves records between Redis, PostgreSQL and Kafka") +
           "\n.SH SYNOPSIS\n.nf\n";
    for (const auto* c : commands(app)) out += roff_escape(synopsis(*c)) + "\n";
    std::string what = app.get_description();
    if (what.rfind("kbridge: ", 0) == 0) what = "kbridge " + what.substr(9);
    out += ".fi\n.SH DESCRIPTION\n" + roff_escape(what) +
           ". Pipelines are defined in a YAML file, see \\fBkbridge.yaml\\fR(5); "
           "\\fBkbridge describe\\fR prints every connector's options.\n";
    out += ".SH OPTIONS\n" + man_options(flags_and_options(app));
    out += ".SH COMMANDS\n";
    for (const auto* c : commands(app)) {
        out += ".SS \"" + roff_escape(synopsis(*c)) + "\"\n" + roff_escape(c->get_description()) +
               ".\n";
        for (const auto* p : positionals(*c))
            out += ".TP\n\\fI" + roff_escape(upper(p->get_name(true))) + "\\fR\n" +
                   roff_escape(p->get_description()) + "\n";
        out += man_options(flags_and_options(*c));
    }
    out +=
        ".SH EXIT STATUS\n.TP\n0\nevery record delivered (or dead\\-lettered where the pipeline "
        "says so)\n.TP\n1\na runtime failure; what was not delivered is still in its source\n"
        ".TP\n2\na usage or configuration error\n.TP\n75\nanother run holds the pipeline's lock\n"
        ".SH ENVIRONMENT\n.TP\nSTATE_DIRECTORY\nthe state directory when \\fB\\-\\-state\\-dir\\fR "
        "is not given (systemd's StateDirectory=)\n.TP\nXDG_STATE_HOME\nelse the state directory "
        "is $XDG_STATE_HOME/kbridge, else ~/.local/state/kbridge\n"
        ".SH FILES\n.TP\n/etc/kbridge/\npipeline files and their environment files "
        "(kbridge@NAME.service runs /etc/kbridge/NAME.yaml with /etc/kbridge/NAME.env)\n"
        ".TP\n/var/lib/kbridge/\nthe state directory of the packaged service and cron job\n"
        ".SH SEE ALSO\n\\fBkbridge.yaml\\fR(5), \\fBsystemctl\\fR(1), \\fBcrontab\\fR(5)\n";
    return out;
}

std::string bash_completion(const CLI::App& app) {
    std::vector<std::string> names;
    for (const auto* c : commands(app)) names.push_back(c->get_name());
    std::string value_cases, command_cases;
    std::set<std::string> valued;  // --log-level is both global and run's: one case is enough
    auto add_values = [&](const std::vector<const CLI::Option*>& options) {
        for (const auto* o : options) {
            const auto words = value_words(o);
            if (!takes_value(o) || words.empty() || !valued.insert(o->get_name()).second) continue;
            value_cases +=
                "        " + o->get_name() + ") values=\"" + join(words, " ") + "\" ;;\n";
        }
    };
    auto option_words = [](const std::vector<const CLI::Option*>& options) {
        std::vector<std::string> out;
        for (const auto* o : options) {
            for (const auto& s : o->get_snames()) out.push_back("-" + s);
            for (const auto& l : o->get_lnames()) out.push_back("--" + l);
        }
        return join(out, " ");
    };
    add_values(flags_and_options(app));
    for (const auto* c : commands(app)) {
        add_values(flags_and_options(*c));
        std::vector<std::string> first;
        const auto pos = positionals(*c);
        if (!pos.empty()) first = value_words(pos.front());
        if (c->get_name() == "describe") first = describable_names();
        command_cases += "        " + c->get_name() + ") options=\"" +
                         option_words(flags_and_options(*c)) + "\"; words=\"" + join(first, " ") +
                         "\" ;;\n";
    }
    std::string out =
        "# bash completion for kbridge: generated by `kbridge generate bash` from its command "
        "line.\n"
        "_kbridge() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
        "    local command=\"\" options=\"\" words=\"\" values=\"\" i\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        case ${COMP_WORDS[i]} in\n"
        "        " +
        join(names, "|") +
        ") command=${COMP_WORDS[i]}; break ;;\n"
        "        esac\n"
        "    done\n"
        "    # The value of an option that takes one of a few words.\n"
        "    case $prev in\n" +
        value_cases +
        "    esac\n"
        "    if [[ -n $values ]]; then\n"
        "        COMPREPLY=($(compgen -W \"$values\" -- \"$cur\"))\n"
        "        return\n"
        "    fi\n"
        "    case $command in\n"
        "        \"\") options=\"" +
        option_words(flags_and_options(app)) + "\"; words=\"" + join(names, " ") + "\" ;;\n" +
        command_cases +
        "    esac\n"
        "    if [[ $cur == -* ]]; then\n"
        "        COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
        "    else\n"
        "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
        "        [[ -z $command ]] || COMPREPLY+=($(compgen -f -- \"$cur\"))\n"
        "    fi\n"
        "}\n"
        "complete -o filenames -F _kbridge kbridge\n";
    return out;
}

std::string zsh_completion(const CLI::App& app) {
    auto specs = [](const std::vector<const CLI::Option*>& options) {
        std::string out;
        for (const auto* o : options) {
            for (const auto& l : o->get_lnames()) {
                out += " \\\n        '*--" + l + "[" + zsh_text(o->get_description()) + "]";
                if (takes_value(o)) {
                    const auto words = value_words(o);
                    out += ":" + zsh_text(value_name(o)) + ":" +
                           (words.empty() ? "_files" : "(" + join(words, " ") + ")");
                }
                out += "'";
            }
        }
        return out;
    };
    std::string out =
        "#compdef kbridge\n"
        "# zsh completion for kbridge: generated by `kbridge generate zsh` from its command line.\n"
        "_kbridge() {\n"
        "    local -a commands\n"
        "    commands=(\n";
    for (const auto* c : commands(app))
        out += "        '" + c->get_name() + ":" + shell_quoted(c->get_description()) + "'\n";
    out +=
        "    )\n"
        "    if (( CURRENT == 2 )); then\n"
        "        _describe 'command' commands\n"
        "        return\n"
        "    fi\n"
        "    # From here on the subcommand is word 1, as _arguments expects.\n"
        "    shift words\n"
        "    (( CURRENT-- ))\n"
        "    case $words[1] in\n";
    for (const auto* c : commands(app)) {
        std::vector<std::string> first;
        const auto pos = positionals(*c);
        if (!pos.empty()) first = value_words(pos.front());
        if (c->get_name() == "describe") first = describable_names();
        out += "    " + c->get_name() + ")\n        _arguments" + specs(flags_and_options(*c)) +
               (first.empty() ? std::string(" \\\n        '*:file:_files'")
                              : " \\\n        '1:what:(" + join(first, " ") +
                                    ")' \\\n        '*:file:_files'") +
               "\n        ;;\n";
    }
    out += "    esac\n}\n_kbridge \"$@\"\n";
    return out;
}

int generate_command(const CLI::App& app, const std::string& what) {
    std::string out;
    if (what == "man1")
        out = cli_man_page(app);
    else if (what == "man5")
        out = pipeline_file_man_page();
    else if (what == "bash")
        out = bash_completion(app);
    else if (what == "zsh")
        out = zsh_completion(app);
    else {
        std::fprintf(stderr, "kbridge: generate: man1, man5, bash or zsh, not '%s'\n",
                     what.c_str());
        return kExitUsage;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
}

}  // namespace kbridge
