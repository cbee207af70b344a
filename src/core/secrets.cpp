#include "core/secrets.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

namespace kbridge {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_unreserved(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

std::string percent_encode(std::string_view text) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        if (is_unreserved(c)) {
            out += c;
        } else {
            out += '%';
            out += kHex[static_cast<unsigned char>(c) >> 4];
            out += kHex[static_cast<unsigned char>(c) & 0xf];
        }
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "scheme://" at the start: letters, digits, '+', '-', '.' after a first letter (RFC 3986).
size_t scheme_length(const std::string& text) {
    if (text.empty() || !std::isalpha(static_cast<unsigned char>(text[0]))) return 0;
    size_t i = 1;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                               text[i] == '+' || text[i] == '-' || text[i] == '.'))
        ++i;
    return text.compare(i, 3, "://") == 0 ? i : 0;
}

ConnectionString parse_url(const std::string& text, size_t scheme_end) {
    ConnectionString out;
    out.is_url = true;
    out.scheme = text.substr(0, scheme_end);
    std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string rest = text.substr(scheme_end + 3);
    const size_t first_query = rest.find('?');
    size_t at = rest.rfind('@', first_query == std::string::npos ? std::string::npos : first_query);
    if (at == std::string::npos) at = rest.rfind('@');
    size_t host_start = 0;
    if (at != std::string::npos) {
        const std::string userinfo = rest.substr(0, at);
        const size_t colon = userinfo.find(':');
        const bool password_alone =
            colon == std::string::npos && (out.scheme == "redis" || out.scheme == "rediss");
        if (password_alone) {
            out.password = percent_decode(userinfo);
            out.has_password = true;
        } else {
            out.user = percent_decode(userinfo.substr(0, colon));
            if (colon != std::string::npos) {
                out.password = percent_decode(userinfo.substr(colon + 1));
                out.has_password = true;
            }
        }
        host_start = at + 1;
    }
    const size_t host_end = rest.find_first_of("/?#", host_start);
    out.hosts = rest.substr(
        host_start, host_end == std::string::npos ? std::string::npos : host_end - host_start);
    if (host_end == std::string::npos) return out;
    const size_t fragment = rest.find('#', host_end);
    const std::string tail = rest.substr(
        host_end, fragment == std::string::npos ? std::string::npos : fragment - host_end);
    const size_t query = tail.find('?');
    if (tail[0] == '/')
        out.path = percent_decode(
            tail.substr(1, query == std::string::npos ? std::string::npos : query - 1));
    if (query == std::string::npos) return out;
    size_t start = query + 1;
    while (start <= tail.size()) {
        size_t end = tail.find('&', start);
        if (end == std::string::npos) end = tail.size();
        const std::string pair = tail.substr(start, end - start);
        if (!pair.empty()) {
            const size_t eq = pair.find('=');
            if (eq == std::string::npos || eq == 0)
                throw std::invalid_argument("a URL parameter is not of the form key=value");
            out.params.emplace_back(percent_decode(pair.substr(0, eq)),
                                    percent_decode(pair.substr(eq + 1)));
        }
        start = end + 1;
    }
    return out;
}

// libpq's rules (conninfo_parse): key = value pairs separated by white space; a value is
// single-quoted or runs to white space; a backslash takes the next character literally.
ConnectionString parse_conninfo(const std::string& text) {
    ConnectionString out;
    size_t i = 0;
    while (true) {
        while (i < text.size() && is_space(text[i])) ++i;
        if (i == text.size()) break;
        std::string key;
        while (i < text.size() && text[i] != '=' && !is_space(text[i])) key += text[i++];
        while (i < text.size() && is_space(text[i])) ++i;
        if (i == text.size() || text[i] != '=' || key.empty())
            throw std::invalid_argument(
                "expected a URL (postgresql://...) or key=value pairs (host=... dbname=...)");
        ++i;
        while (i < text.size() && is_space(text[i])) ++i;
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            ++i;
            while (true) {
                if (i == text.size())
                    throw std::invalid_argument("a quoted value has no closing quote");
                if (text[i] == '\\' && i + 1 < text.size()) {
                    value += text[i + 1];
                    i += 2;
                } else if (text[i] == '\'') {
                    ++i;
                    break;
                } else {
                    value += text[i++];
                }
            }
        } else {
            while (i < text.size() && !is_space(text[i])) {
                if (text[i] == '\\' && i + 1 < text.size()) ++i;
                value += text[i++];
            }
        }
        if (key == "password") {
            out.password = value;
            out.has_password = true;
        } else if (key == "user") {
            out.user = value;
        }
        out.params.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

std::string quoted_for_conninfo(const std::string& value) {
    const bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
        return is_space(c) || c == '\'' || c == '\\';
    });
    if (plain) return value;
    std::string out = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

// Pieces of a secret between URL and conninfo delimiters, and every run of neighbouring pieces, 5
// characters or longer: what a parser that split the URL elsewhere would have shown of it.
std::vector<std::string> needles_of(const std::string& secret) {
    constexpr size_t kMinPiece = 5;
    constexpr size_t kMinWhole = 3;
    std::vector<std::string> out;
    if (secret.size() >= kMinWhole) {
        out.push_back(secret);
        out.push_back(percent_encode(secret));
    }
    std::vector<std::pair<size_t, size_t>> pieces;  // [begin, end)
    // Only what ends a part of a URL or a conninfo value: "hunter2-redis" stays one piece, so
    // the word "redis" is not taken out of every line.
    auto delimiter = [](char c) {
        return std::string_view("@:/?#%&=;,'\"\\").find(c) != std::string_view::npos || is_space(c);
    };
    for (size_t i = 0; i < secret.size();) {
        while (i < secret.size() && delimiter(secret[i])) ++i;
        const size_t begin = i;
        while (i < secret.size() && !delimiter(secret[i])) ++i;
        if (i > begin) pieces.emplace_back(begin, i);
    }
    constexpr size_t kMaxPieces = 16;  // runs grow as the square of the pieces
    for (size_t a = 0; a < pieces.size(); ++a)
        for (size_t b = a; b < pieces.size() && (b == a || pieces.size() <= kMaxPieces); ++b) {
            const size_t length = pieces[b].second - pieces[a].first;
            if (length >= kMinPiece) out.push_back(secret.substr(pieces[a].first, length));
        }
    return out;
}

struct Registry {
    std::mutex mutex;
    std::vector<std::string> needles;  // longest first
    std::atomic<bool> any{false};
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

bool is_secret_key(std::string_view key) {
    std::string lower(key);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* word : {"password", "passwd", "secret", "token", "credential",
                             "sasl.oauthbearer.config", "ssl.key.pem", "ssl_key_pem", "private"})
        if (lower.find(word) != std::string::npos) return true;
    return lower == "pass" || lower == "pwd" || lower == "auth";
}

ConnectionString parse_connection_string(const std::string& text) {
    const size_t scheme = scheme_length(text);
    return scheme > 0 ? parse_url(text, scheme) : parse_conninfo(text);
}

std::string mask_connection_string(const std::string& text) {
    ConnectionString parsed;
    try {
        parsed = parse_connection_string(text);
    } catch (const std::invalid_argument&) {
        const size_t scheme = scheme_length(text);
        return (scheme > 0 ? text.substr(0, scheme + 3) : std::string()) + "(unparsable, hidden)";
    }
    // libpq reads a dbname that is itself a URL or conninfo as one ("expand_dbname").
    auto shown = [](const std::pair<std::string, std::string>& p) {
        if (is_secret_key(p.first)) return std::string("***");
        if (p.first == "dbname" && holds_connection_string(p.second))
            return mask_connection_string(p.second);
        return p.second;
    };
    std::string out;
    if (!parsed.is_url) {
        for (const auto& p : parsed.params)
            out += (out.empty() ? "" : " ") + p.first + "=" + quoted_for_conninfo(shown(p));
        return out;
    }
    out = parsed.scheme + "://";
    const bool redis = parsed.scheme == "redis" || parsed.scheme == "rediss";
    if (parsed.has_password && parsed.user.empty() && redis)
        out += "***@";  // the password alone, as redis-cli writes it
    else if (!parsed.user.empty() || parsed.has_password)
        out += percent_encode(parsed.user) + (parsed.has_password ? ":***@" : "@");
    out += parsed.hosts;
    if (!parsed.path.empty()) out += "/" + parsed.path;
    for (size_t i = 0; i < parsed.params.size(); ++i)
        out += (i ? "&" : "?") + parsed.params[i].first + "=" + shown(parsed.params[i]);
    return out;
}

void remember_secret(const std::string& secret) {
    if (secret.empty()) return;
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (auto& needle : needles_of(secret))
        if (std::find(r.needles.begin(), r.needles.end(), needle) == r.needles.end())
            r.needles.push_back(std::move(needle));
    std::stable_sort(
        r.needles.begin(), r.needles.end(),
        [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    r.any = !r.needles.empty();
}

void remember_secrets(const ConnectionString& parsed) {
    if (parsed.has_password) remember_secret(parsed.password);
    for (const auto& [key, value] : parsed.params) {
        if (is_secret_key(key)) remember_secret(value);
        if (key == "dbname" && holds_connection_string(value)) {
            try {
                remember_secrets(parse_connection_string(value));
            } catch (const std::invalid_argument&) {
                remember_secret(value);  // unparsable: the whole of it is kept out of sight
            }
        }
    }
}

bool holds_connection_string(const std::string& value) {
    return scheme_length(value) > 0 || value.find('=') != std::string::npos;
}

std::string scrub_secrets(std::string text) {
    Registry& r = registry();
    if (!r.any.load(std::memory_order_relaxed)) return text;
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& needle : r.needles)
        for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 3))
            text.replace(at, needle.size(), "***");
    return text;
}

}  // namespace kbridge
