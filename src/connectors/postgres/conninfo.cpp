#include "connectors/postgres/conninfo.h"

#include <stdexcept>

#include "config/options.h"
#include "core/secrets.h"

namespace kbridge {
namespace {

// "h1:5432,[::1]:5433,/tmp" -> hosts "h1,::1,/tmp" and ports "5432,5433," (libpq's lists).
void split_hosts(const std::string& text, PostgresParams& out) {
    std::string hosts, ports;
    bool any_host = false, any_port = false;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
        std::string port;
        const size_t bracket = item.rfind(']');
        const size_t colon = item.rfind(':');
        if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
            port = item.substr(colon + 1);
            item.resize(colon);
            if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
                throw std::invalid_argument("a port in the URL is not a number");
        }
        if (item.size() >= 2 && item.front() == '[' && item.back() == ']')
            item = item.substr(1, item.size() - 2);
        item = percent_decode(item);  // %2Ftmp: a socket directory
        any_host |= !item.empty();
        any_port |= !port.empty();
        hosts += (start ? "," : "") + item;
        ports += (start ? "," : "") + port;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (any_host) out.emplace_back("host", hosts);
    if (any_port) out.emplace_back("port", ports);
}

}  // namespace

PostgresParams postgres_params(const std::string& url) {
    const ConnectionString parsed = parse_connection_string(url);
    remember_secrets(parsed);
    if (!parsed.is_url) {
        // As libpq's expand_dbname: a dbname that is a URL or conninfo gives its parameters,
        // and parameters after it override them. Expanded here, it is parsed by the same rules.
        PostgresParams out;
        for (const auto& [key, value] : parsed.params) {
            if (key != "dbname" || !holds_connection_string(value)) {
                out.emplace_back(key, value);
                continue;
            }
            for (auto& inner : postgres_params(value)) out.push_back(std::move(inner));
        }
        return out;
    }
    if (parsed.scheme != "postgresql" && parsed.scheme != "postgres")
        throw std::invalid_argument("expected postgresql://... or key=value conninfo");
    PostgresParams out;
    if (!parsed.user.empty()) out.emplace_back("user", parsed.user);
    if (parsed.has_password) out.emplace_back("password", parsed.password);
    split_hosts(parsed.hosts, out);
    if (!parsed.path.empty()) out.emplace_back("dbname", parsed.path);
    for (const auto& [key, value] : parsed.params) {
        if (key == "ssl" && value == "true")  // libpq's alias for JDBC users
            out.emplace_back("sslmode", "require");
        else
            out.emplace_back(key, value);
    }
    return out;
}

void check_postgres_url(const std::string& url, const Options& options, const Options& defaults) {
    try {
        postgres_params(url);
    } catch (const std::invalid_argument& e) {
        throw options.has("url") ? options.error("url", e.what()) : defaults.error("url", e.what());
    }
}

}  // namespace kbridge
