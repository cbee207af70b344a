#pragma once
// A PostgreSQL URL or conninfo string as libpq keyword/value pairs, parsed by kbridge so that
// libpq never reads the text itself: a password with '@', ':', '/' or '#' in it reaches the
// server as the user meant, and what the logs show is what was connected to.
#include <string>
#include <utility>
#include <vector>

namespace kbridge {

using PostgresParams = std::vector<std::pair<std::string, std::string>>;

// postgresql://user:password@host1:port1,host2/dbname?key=value&... or key=value conninfo.
// Throws std::invalid_argument (the message never quotes the text). Remembers the password.
PostgresParams postgres_params(const std::string& url);

class Options;
// For a connector's settings: a URL that does not parse is a config error at `url` (the
// connector's own option when given, else postgres.url in `defaults`).
void check_postgres_url(const std::string& url, const Options& options, const Options& defaults);

}  // namespace kbridge
