// URL and conninfo parsing and masking: whatever the text, parsing either succeeds or throws
// std::invalid_argument without quoting it, and the masked form shows *** for the password and
// every secret parameter it parsed (and nothing of text that does not parse).
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

// Refused text must never be quoted back (it may hold a secret): a marker put somewhere in it
// must not show in the error or the mask. (Checking for the whole text would also flag an input
// that happens to be a piece of a fixed message; input that already holds the marker, learnt by
// the fuzzer from the comparisons, would be flagged for showing its own harmless scheme.)
void check_refused_text_is_hidden(const std::string& text, size_t marker_at) {
    if (text.find("KBZ") != std::string::npos) return;
    std::string marked = text;
    marked.insert(marker_at, "\x7fKBZ");
    try {
        kbridge::parse_connection_string(marked);
    } catch (const std::invalid_argument& e) {
        if (std::string(e.what()).find("KBZ") != std::string::npos)
            finding("the error quotes the text", marked);
        if (kbridge::mask_connection_string(marked).find("KBZ") != std::string::npos)
            finding("text that does not parse is shown", marked);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    check_refused_text_is_hidden(text, size ? data[0] % (size + 1) : 0);
    kbridge::ConnectionString parsed;
    try {
        parsed = kbridge::parse_connection_string(text);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    const std::string masked = kbridge::mask_connection_string(text);
    // Where the password stood, *** stands. (Its bytes may still show by chance, spread over
    // parts that are shown: a host and a path, say.)
    if (parsed.has_password && !parsed.password.empty() && masked.find("***") == std::string::npos)
        finding("the password is not masked: " + masked, text);
    for (const auto& [key, value] : parsed.params)
        if (kbridge::is_secret_key(key) && !value.empty() &&
            masked.find(key + "=***") == std::string::npos)
            finding("secret parameter " + key + " is not masked: " + masked, text);
    return 0;
}
