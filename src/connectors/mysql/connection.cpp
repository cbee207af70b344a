#include "connectors/mysql/connection.h"

#include <errmsg.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/secrets.h"

namespace kbridge {
namespace {

unsigned seconds(std::chrono::milliseconds ms) {
    return static_cast<unsigned>(std::max<long long>(1, (ms.count() + 999) / 1000));
}

bool lost(unsigned number) {
    return number == CR_SERVER_GONE_ERROR || number == CR_SERVER_LOST ||
           number == CR_CONNECTION_ERROR || number == CR_CONN_HOST_ERROR ||
           number == CR_SERVER_LOST_EXTENDED || number == 4031 /* idle timeout */;
}

}  // namespace

MysqlUrl parse_mysql_url(const std::string& url) {
    const std::string scheme = "mysql://";
    if (url.rfind(scheme, 0) != 0)
        throw std::invalid_argument("not a mysql:// URL (mysql://user:password@host:3306/db)");
    std::string_view rest(url);
    rest.remove_prefix(scheme.size());
    MysqlUrl out;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        const std::string_view query = rest.substr(q + 1);
        rest = rest.substr(0, q);
        if (query.rfind("socket=", 0) != 0)
            throw std::invalid_argument("the only URL parameter is socket=/path");
        out.socket = percent_decode(query.substr(7));
    }
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = userinfo.find(':');
        out.user = percent_decode(userinfo.substr(0, colon));
        if (colon != std::string_view::npos)
            out.password = percent_decode(userinfo.substr(colon + 1));
    }
    const auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
        out.database = percent_decode(rest.substr(slash + 1));
        rest = rest.substr(0, slash);
    }
    if (out.database.empty()) throw std::invalid_argument("the URL names no database (.../db)");
    const auto colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
        const std::string port(rest.substr(colon + 1));
        char* end = nullptr;
        const long value = std::strtol(port.c_str(), &end, 10);
        if (port.empty() || *end || value < 1 || value > 65535)
            throw std::invalid_argument("the port must be a number from 1 to 65535");
        out.port = static_cast<unsigned>(value);
        rest = rest.substr(0, colon);
    }
    if (!rest.empty()) out.host = std::string(rest);
    return out;
}

MysqlConnection::MysqlConnection(std::string url, std::chrono::milliseconds connect_timeout,
                                 std::chrono::milliseconds query_timeout)
    : url_(std::move(url)),
      redacted_(mask_connection_string(url_)),
      connect_timeout_(connect_timeout),
      query_timeout_(query_timeout) {}

void MysqlConnection::connect() {
    statements_.clear();
    conn_.reset();
    MysqlUrl u;
    try {
        u = parse_mysql_url(url_);
    } catch (const std::invalid_argument& e) {
        throw SqlError("mysql " + redacted_ + ": cannot connect: " + e.what());
    }
    std::unique_ptr<MYSQL, ConnDeleter> c(mysql_init(nullptr));
    if (!c) throw SqlError("mysql " + redacted_ + ": out of memory");
    const unsigned connect = seconds(connect_timeout_), io = seconds(query_timeout_);
    mysql_options(c.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(c.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect);
    mysql_options(c.get(), MYSQL_OPT_READ_TIMEOUT, &io);
    mysql_options(c.get(), MYSQL_OPT_WRITE_TIMEOUT, &io);
    const unsigned local_infile = 1;  // served by infile_read() only: see load_data()
    mysql_options(c.get(), MYSQL_OPT_LOCAL_INFILE, &local_infile);
    if (!mysql_real_connect(c.get(), u.host.c_str(), u.user.c_str(),
                            u.password.empty() ? nullptr : u.password.c_str(), u.database.c_str(),
                            u.port, u.socket.empty() ? nullptr : u.socket.c_str(), 0))
        throw SqlError(
            "mysql " + redacted_ + ": cannot connect: " + scrub_secrets(mysql_error(c.get())),
            std::to_string(mysql_errno(c.get())), true);
    mysql_set_local_infile_handler(c.get(), infile_init, infile_read, infile_end, infile_error,
                                   this);
    conn_ = std::move(c);
    exec(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'");
}

void MysqlConnection::fail(unsigned number, const char* sqlstate, const char* message) {
    // `sqlstate` and `message` may live in the handle that a lost connection frees below.
    const std::string text = "mysql " + redacted_ + ": " + scrub_secrets(message);
    const std::string code = std::to_string(number) + "/" + (sqlstate ? sqlstate : "");
    const bool gone = lost(number);
    if (gone) {
        statements_.clear();
        conn_.reset();
    }
    throw SqlError(text, code, gone);
}

void MysqlConnection::drop(const std::string& why) {
    statements_.clear();
    conn_.reset();
    throw SqlError("mysql " + redacted_ + ": " + why, "", true);
}

void MysqlConnection::exec(const std::string& sql) {
    if (!conn_) throw SqlError("mysql " + redacted_ + ": not connected", "", true);
    if (mysql_real_query(conn_.get(), sql.data(), sql.size()) != 0)
        fail(mysql_errno(conn_.get()), mysql_sqlstate(conn_.get()), mysql_error(conn_.get()));
    if (MYSQL_RES* r = mysql_store_result(conn_.get())) mysql_free_result(r);
}

uint64_t MysqlConnection::load_data(const std::string& sql, std::string_view data,
                                    unsigned& warnings) {
    if (!conn_) throw SqlError("mysql " + redacted_ + ": not connected", "", true);
    infile_ = data;
    const int rc = mysql_real_query(conn_.get(), sql.data(), sql.size());
    infile_.reset();
    if (rc != 0)
        fail(mysql_errno(conn_.get()), mysql_sqlstate(conn_.get()), mysql_error(conn_.get()));
    warnings = mysql_warning_count(conn_.get());
    return mysql_affected_rows(conn_.get());
}

// A server may ask for a local file in answer to any statement: only load_data()'s own data is
// ever sent, whatever file it names.
int MysqlConnection::infile_init(void** state, const char*, void* self) {
    *state = self;
    return static_cast<MysqlConnection*>(self)->infile_ ? 0 : 1;
}

int MysqlConnection::infile_read(void* state, char* buffer, unsigned int size) {
    auto& data = *static_cast<MysqlConnection*>(state)->infile_;
    const size_t n = std::min<size_t>(size, data.size());
    std::memcpy(buffer, data.data(), n);
    data.remove_prefix(n);
    return static_cast<int>(n);
}

int MysqlConnection::infile_error(void*, char* message, unsigned int size) {
    std::snprintf(message, size, "kbridge sends only its own rows as a local file");
    return CR_UNKNOWN_ERROR;
}

MYSQL_STMT* MysqlConnection::prepared(const std::string& sql, const MysqlParams& params) {
    if (!conn_) throw SqlError("mysql " + redacted_ + ": not connected", "", true);
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        std::unique_ptr<MYSQL_STMT, StmtDeleter> s(mysql_stmt_init(conn_.get()));
        if (!s || mysql_stmt_prepare(s.get(), sql.data(), sql.size()) != 0)
            fail(s ? mysql_stmt_errno(s.get()) : mysql_errno(conn_.get()),
                 s ? mysql_stmt_sqlstate(s.get()) : mysql_sqlstate(conn_.get()),
                 s ? mysql_stmt_error(s.get()) : mysql_error(conn_.get()));
        it = statements_.emplace(sql, std::move(s)).first;
    }
    MYSQL_STMT* s = it->second.get();
    binds_.assign(params.size(), MYSQL_BIND{});
    lengths_.assign(params.size(), 0);
    nulls_.assign(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
        MYSQL_BIND& b = binds_[i];
        b.buffer_type = MYSQL_TYPE_STRING;
        if (!params[i]) {
            nulls_[i] = 1;
        } else {
            b.buffer = const_cast<char*>(params[i]->data());
            lengths_[i] = params[i]->size();
            b.buffer_length = params[i]->size();
        }
        b.length = &lengths_[i];
        b.is_null = &nulls_[i];
    }
    if (mysql_stmt_bind_param(s, binds_.data()) != 0)
        fail(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
    if (mysql_stmt_execute(s) != 0)
        fail(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
    return s;
}

void MysqlConnection::execute(const std::string& sql, const MysqlParams& params) {
    prepared(sql, params);
}

MysqlRows MysqlConnection::query(const std::string& sql, const MysqlParams& params) {
    MYSQL_STMT* s = prepared(sql, params);
    const unsigned columns = mysql_stmt_field_count(s);
    constexpr size_t kWidth = 1024;  // names, types and offsets: short
    std::vector<char> buffers(columns * kWidth);
    std::vector<MYSQL_BIND> out(columns, MYSQL_BIND{});
    std::vector<unsigned long> lengths(columns);
    std::vector<my_bool> nulls(columns);
    for (unsigned c = 0; c < columns; ++c) {
        out[c].buffer_type = MYSQL_TYPE_STRING;
        out[c].buffer = &buffers[c * kWidth];
        out[c].buffer_length = kWidth;
        out[c].length = &lengths[c];
        out[c].is_null = &nulls[c];
    }
    if (mysql_stmt_bind_result(s, out.data()) != 0 || mysql_stmt_store_result(s) != 0)
        fail(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
    MysqlRows rows;
    for (;;) {
        const int rc = mysql_stmt_fetch(s);
        if (rc == MYSQL_NO_DATA) break;
        if (rc == 1) fail(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s));
        auto& row = rows.emplace_back();
        for (unsigned c = 0; c < columns; ++c)
            row.emplace_back(
                nulls[c] ? std::nullopt
                         : std::optional<std::string>(std::string(
                               &buffers[c * kWidth], std::min<size_t>(lengths[c], kWidth))));
    }
    mysql_stmt_free_result(s);
    return rows;
}

std::string MysqlConnection::quote_identifier(const std::string& name) {
    std::string out = "`";
    for (const char c : name) {
        if (c == '`') out += '`';
        out += c;
    }
    return out + "`";
}

std::string MysqlConnection::quote_table(const std::string& table) {
    const auto dot = table.find('.');
    if (dot == std::string::npos) return quote_identifier(table);
    return quote_identifier(table.substr(0, dot)) + "." + quote_identifier(table.substr(dot + 1));
}

}  // namespace kbridge
