// COPY text encoding: whatever the bytes, the server must read back exactly the cells we sent.
// The input is split into cells at 0xFF bytes; each is escaped, the row joined with tabs, and
// the row read again by COPY's text-format rules.
#include "connectors/postgres/copy_text.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "copy_text: %s\n", what);
    std::abort();
}

int octal(char c) {
    return c >= '0' && c <= '7' ? c - '0' : -1;
}
int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// One line of COPY text format (PostgreSQL's CopyReadAttributesText): cells split at unescaped
// tabs; \b \f \n \r \t \v, \digits (octal, up to 3), \xhh (hex, up to 2), any other escaped
// character is itself. A cell that is exactly \N is NULL, which the encoder must never produce.
std::vector<std::string> read_row(std::string_view line) {
    std::vector<std::string> cells(1);
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '\t') {
            cells.emplace_back();
            continue;
        }
        if (c == '\n' || c == '\r') finding("raw line break in the encoded row");
        std::string& cell = cells.back();
        if (c != '\\') {
            cell += c;
            continue;
        }
        if (++i == line.size()) finding("row ends in a lone backslash");
        const char e = line[i];
        if (e == 'N' && cell.empty() && (i + 1 == line.size() || line[i + 1] == '\t'))
            finding("a cell encoded as \\N, which COPY reads as NULL");
        if (octal(e) >= 0) {
            int value = octal(e);
            for (int k = 0; k < 2 && i + 1 < line.size() && octal(line[i + 1]) >= 0; ++k)
                value = value * 8 + octal(line[++i]);
            cell += static_cast<char>(value);
        } else if (e == 'x' && i + 1 < line.size() && hex(line[i + 1]) >= 0) {
            int value = hex(line[++i]);
            if (i + 1 < line.size() && hex(line[i + 1]) >= 0) value = value * 16 + hex(line[++i]);
            cell += static_cast<char>(value);
        } else {
            switch (e) {
                case 'b':
                    cell += '\b';
                    break;
                case 'f':
                    cell += '\f';
                    break;
                case 'n':
                    cell += '\n';
                    break;
                case 'r':
                    cell += '\r';
                    break;
                case 't':
                    cell += '\t';
                    break;
                case 'v':
                    cell += '\v';
                    break;
                default:
                    cell += e;
            }
        }
    }
    return cells;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> cells;
    size_t start = 0;
    while (true) {
        const size_t end = input.find('\xff', start);
        cells.push_back(input.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }

    std::string row;
    for (size_t i = 0; i < cells.size(); ++i) {
        if (i) row += '\t';
        const size_t before = row.size();
        kbridge::append_escaped(row, cells[i]);
        if (row.find_first_of("\t\n\r", before) != std::string::npos)
            finding("raw tab, newline or carriage return in an escaped cell");
    }
    const std::vector<std::string> back = read_row(row);
    if (back.size() != cells.size()) finding("the row reads back as another number of cells");
    for (size_t i = 0; i < cells.size(); ++i)
        if (back[i] != cells[i]) finding("a cell reads back as other bytes");
    return 0;
}
