#include "connectors/postgres/copy_text.h"

namespace kbridge {

// Runs of plain characters are appended whole: most values have no character to escape.
void append_escaped(std::string& out, std::string_view text) {
    size_t plain = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char* escaped;
        switch (text[i]) {
            case '\\':
                escaped = "\\\\";
                break;
            case '\n':
                escaped = "\\n";
                break;
            case '\r':
                escaped = "\\r";
                break;
            case '\t':
                escaped = "\\t";
                break;
            default:
                continue;
        }
        out.append(text.data() + plain, i - plain);
        out += escaped;
        plain = i + 1;
    }
    out.append(text.data() + plain, text.size() - plain);
}

}  // namespace kbridge
