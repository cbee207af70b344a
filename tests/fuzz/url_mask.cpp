// URL and conninfo parsing and masking: whatever the text, parsing either succeeds or throws
// std::invalid_argument, and the masked form never shows the password it parsed (nor, for text
// that does not parse, the text itself).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/secrets.h"

namespace {

[[noreturn]] void finding(const std::string& what, const std::string& text) {
    std::fprintf(stderr, "url_mask: %s\n", what.c_str());
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fputc('\n', stderr);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    kbridge::ConnectionString parsed;
    bool parses = true;
    try {
        parsed = kbridge::parse_connection_string(text);
    } catch (const std::invalid_argument& e) {
        parses = false;
        if (size >= 6 && std::string(e.what()).find(text) != std::string::npos)
            finding("the error quotes the text", text);
    }
    const std::string masked = kbridge::mask_connection_string(text);
    if (!parses) {
        if (size >= 6 && masked.find(text) != std::string::npos)
            finding("text that does not parse is shown", text);
        return 0;
    }
    // A password is hidden unless the same characters also stand in a part that is shown.
    const std::string& password = parsed.password;
    std::string shown = parsed.user + " " + parsed.hosts + " " + parsed.path + " " + parsed.scheme;
    for (const auto& [key, value] : parsed.params)
        shown += " " + key + " " + (kbridge::is_secret_key(key) ? "" : value);
    if (parsed.has_password && password.size() >= 6 && shown.find(password) == std::string::npos &&
        masked.find(password) != std::string::npos)
        finding("the password is shown: " + masked, text);
    // Masking is stable: a masked text masks to itself.
    if (kbridge::mask_connection_string(masked) != masked &&
        masked.find("***") == std::string::npos)
        finding("masking twice changes a text without secrets", text);
    return 0;
}
