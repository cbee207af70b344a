#pragma once
// Connection strings taken apart by parsing (never by pattern), so that what is shown and what
// is connected to are the same reading of the text; and a scrubber for what the client libraries
// echo back.
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kbridge {

// A URL (scheme://[user[:password]@]hosts[/path][?key=value&...]) or a libpq conninfo string
// (key=value key='quoted \' value' ...). Users, passwords, paths and parameters are
// percent-decoded; `hosts` is the raw host list ("h1:5432,[::1]:5433").
struct ConnectionString {
    bool is_url = false;
    std::string scheme;  // "postgresql", "redis", ...; empty for conninfo
    std::string user;
    std::string password;
    bool has_password = false;
    std::string hosts;
    std::string path;                                         // without its leading '/'
    std::vector<std::pair<std::string, std::string>> params;  // query or conninfo, in order
};

// Throws std::invalid_argument saying what is wrong; the message never quotes the input, which
// may hold a secret. In a URL the userinfo ends at the last '@' before the query (or at the last
// '@' at all when none comes before a '?'), so raw '@', ':', '/', '#' and '?' in a password read
// as the user meant; everything from '#' after the host part on is ignored.
ConnectionString parse_connection_string(const std::string& text);

// The text for logs and errors: user, hosts, database and parameters kept, every password and
// secret parameter shown as ***. Text that does not parse is hidden whole.
std::string mask_connection_string(const std::string& text);

// A URL or conninfo inside a value (libpq expands such a dbname into parameters).
bool holds_connection_string(const std::string& value);

// password, sslpassword, sasl.password, ssl.key.password, *secret*, *token* ...
bool is_secret_key(std::string_view key);

// "a%40b" -> "a@b"; invalid escapes stay as they are.
std::string percent_decode(std::string_view text);

// Secrets seen in the configuration, process-wide: every log line, every error printed and every
// message from libpq, hiredis and librdkafka passes through scrub_secrets() before it is shown.
void remember_secret(const std::string& secret);
void remember_secrets(const ConnectionString& parsed);
// `text` with each remembered secret, its percent-encoded form and each run of 5 or more
// characters of it between URL delimiters (@ : / ? # % & = ; , quotes, white space: what a
// mis-parse would cut it into) replaced by ***.
std::string scrub_secrets(std::string text);

}  // namespace kbridge
