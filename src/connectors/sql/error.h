#pragma once
// The errors of every SQL dialect, and what the SQL sink core makes of them.
#include <stdexcept>
#include <string>

namespace kbridge {

// Errors of every dialect. `code` is the database's own (a SQLSTATE, a MariaDB error number,
// an SQLite result code); empty when the error did not come from the server.
class SqlError : public std::runtime_error {
  public:
    explicit SqlError(const std::string& message, std::string code = {},
                      bool connection_lost = false)
        : std::runtime_error(message), code_(std::move(code)), connection_lost_(connection_lost) {}
    const std::string& code() const { return code_; }
    // The connection is gone: whatever was sent last may or may not have happened.
    bool connection_lost() const { return connection_lost_; }

  private:
    std::string code_;
    bool connection_lost_;
};

// How the core acts on an error: Transient is retried after reconnecting, Refused means the
// records themselves are at fault (they are isolated and dead-lettered), Fatal stops the run.
enum class SqlFailure { Transient, Refused, Fatal };

}  // namespace kbridge
