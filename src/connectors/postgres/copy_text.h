#pragma once
// PostgreSQL COPY text format: the cell encoding the table sink streams to the server.
#include <string>
#include <string_view>

namespace kbridge {

// Appends `text` with COPY's text-format escapes for the characters that delimit it (backslash,
// tab, newline, carriage return), so the server reads back exactly `text`.
void append_escaped(std::string& out, std::string_view text);

}  // namespace kbridge
