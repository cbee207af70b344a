#pragma once
// `kbridge describe`: every connector's options, printed from its option table (the table that
// also parses them), as text, JSON, README rows or the pipeline file's man page.
#include <string>
#include <vector>

#include "config/options.h"

namespace kbridge {

// "string", "integer", "boolean", "duration", "choice", "map", "list" or "block".
const char* option_type_word(OptionType type);

// True when `type` names a source, a sink or a block of the pipeline file ("" names them all).
bool describes_something(const std::string& type);
// Every name `describe TYPE` takes, sorted, once each.
std::vector<std::string> describable_names();
std::string describe_text(const std::string& type);
std::string describe_json(const std::string& type);
// The table README.md shows for a connector (the format tests/unit/test_readme_options.cpp checks).
std::string describe_markdown(const std::string& type);
std::string markdown_table(const OptionTable& table);
// kbridge.yaml(5), in roff.
std::string pipeline_file_man_page();

std::string roff_escape(const std::string& text);

}  // namespace kbridge
