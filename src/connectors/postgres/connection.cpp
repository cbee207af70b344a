#include "connectors/postgres/connection.h"

#include <arpa/inet.h>

#include <cstring>

#include "connectors/postgres/conninfo.h"
#include "core/secrets.h"

namespace kbridge {

std::string redact_postgres_url(const std::string& url) {
    return mask_connection_string(url);
}

void PostgresConnection::connect() {
    redacted_ = redact_postgres_url(url_);
    PostgresParams params;
    try {
        params = postgres_params(url_);
    } catch (const std::invalid_argument& e) {
        throw PostgresError("postgres " + redacted_ + ": cannot connect: " + e.what());
    }
    std::vector<const char*> keys, values;
    for (const auto& [key, value] : params) {
        keys.push_back(key.c_str());
        values.push_back(value.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), values.data(), 0));
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) fail("cannot connect");
    if (PQsetClientEncoding(conn_.get(), "UTF8") != 0) fail("cannot use UTF8");
}

void PostgresConnection::fail(const std::string& what, const PGresult* result) {
    std::string message = result ? PQresultErrorMessage(result)
                                 : (conn_ ? PQerrorMessage(conn_.get()) : "out of memory");
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const bool lost = !conn_ || PQstatus(conn_.get()) != CONNECTION_OK;
    throw PostgresError("postgres " + redacted_ + ": " + what + ": " + scrub_secrets(message),
                        state ? state : "", lost);
}

PgResult PostgresConnection::exec(const std::string& sql) {
    PgResult result(PQexec(conn_.get(), sql.c_str()));
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("query failed", result.get());
    return result;
}

PgResult PostgresConnection::exec_params(const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult result(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0));
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("query failed", result.get());
    return result;
}

std::string PostgresConnection::quote_identifier(const std::string& name) {
    std::unique_ptr<char, void (*)(void*)> quoted(
        PQescapeIdentifier(conn_.get(), name.data(), name.size()), PQfreemem);
    if (!quoted) fail("cannot quote identifier");
    return quoted.get();
}

std::string PostgresConnection::quote_literal(const std::string& value) {
    std::unique_ptr<char, void (*)(void*)> quoted(
        PQescapeLiteral(conn_.get(), value.data(), value.size()), PQfreemem);
    if (!quoted) fail("cannot quote literal");
    return quoted.get();
}

std::string PostgresConnection::quote_table(const std::string& table) {
    const auto dot = table.find('.');
    if (dot == std::string::npos) return quote_identifier(table);
    return quote_identifier(table.substr(0, dot)) + "." + quote_identifier(table.substr(dot + 1));
}

void PostgresConnection::copy_in(const std::string& copy_sql) {
    PgResult result(PQexec(conn_.get(), copy_sql.c_str()));
    if (PQresultStatus(result.get()) != PGRES_COPY_IN) fail("COPY failed", result.get());
}

void PostgresConnection::put_copy_data(std::string_view data) {
    if (PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) != 1)
        fail("COPY failed");
}

void PostgresConnection::end_copy_in() {
    if (PQputCopyEnd(conn_.get(), nullptr) != 1) fail("COPY failed");
    PgResult result(PQgetResult(conn_.get()));
    const bool ok = PQresultStatus(result.get()) == PGRES_COMMAND_OK;
    if (!ok) {
        try {
            fail("COPY failed", result.get());
        } catch (...) {
            while (PgResult(PQgetResult(conn_.get()))) {
            }
            throw;
        }
    }
    while (PgResult(PQgetResult(conn_.get()))) {
    }
}

void PostgresConnection::copy_out(const std::string& copy_sql) {
    PgResult result(PQexec(conn_.get(), copy_sql.c_str()));
    if (PQresultStatus(result.get()) != PGRES_COPY_OUT) fail("COPY failed", result.get());
    copy_header_seen_ = false;
}

namespace {

uint16_t read_u16(const char*& p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    p += 2;
    return ntohs(v);
}
uint32_t read_u32(const char*& p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return ntohl(v);
}

// PGCOPY\n\377\r\n\0, flags, header extension length.
constexpr char kCopySignature[] = "PGCOPY\n\377\r\n";
constexpr size_t kCopyHeaderSize = 11 + 4 + 4;

}  // namespace

bool PostgresConnection::next_copy_row(std::vector<std::optional<std::string_view>>& fields) {
    fields.clear();
    char* raw = nullptr;
    const int size = PQgetCopyData(conn_.get(), &raw, 0);
    copy_buffer_.reset(raw);
    if (size == -1) {
        PgResult result(PQgetResult(conn_.get()));
        if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) fail("COPY failed", result.get());
        while (PgResult(PQgetResult(conn_.get()))) {
        }
        return false;
    }
    if (size < 0) fail("COPY failed");
    const char* p = raw;
    const char* end = raw + size;
    if (!copy_header_seen_) {
        if (size < static_cast<int>(kCopyHeaderSize) || std::memcmp(p, kCopySignature, 11) != 0)
            throw PostgresError("postgres " + redacted_ + ": unexpected COPY header");
        p += 11 + 4;
        p += read_u32(p);  // header extension, unused
        copy_header_seen_ = true;
        if (p == end) return next_copy_row(fields);
    }
    const int16_t count = static_cast<int16_t>(read_u16(p));
    if (count == -1) return next_copy_row(fields);  // the trailer; the end follows
    for (int16_t i = 0; i < count; ++i) {
        if (end - p < 4) throw PostgresError("postgres " + redacted_ + ": truncated COPY row");
        const int32_t length = static_cast<int32_t>(read_u32(p));
        if (length < 0) {
            fields.emplace_back(std::nullopt);
            continue;
        }
        if (end - p < length) throw PostgresError("postgres " + redacted_ + ": truncated COPY row");
        fields.emplace_back(std::string_view(p, length));
        p += length;
    }
    return true;
}

}  // namespace kbridge
