#pragma once
// A logical replication connection (replication=database) through libpq: creates the slot,
// starts pgoutput streaming, hands out the stream's CopyData messages with bounded waits, and
// sends standby status updates. Every wait ends by its deadline or soon after a stop request.
#include <optional>
#include <string>
#include <string_view>

#include "connectors/postgres/connection.h"
#include "connectors/postgres_cdc/pgoutput.h"
#include "core/wait.h"

namespace kbridge {

// `url` (URL or conninfo) as a conninfo with `extra` key/values added (later ones win).
std::string conninfo_with(const std::string& url,
                          const std::vector<std::pair<std::string, std::string>>& extra);

class ReplicationStream {
  public:
    ReplicationStream(const std::string& url, std::chrono::milliseconds connect_timeout,
                      std::chrono::milliseconds query_timeout);
    void connect();
    bool connected() const { return conn_.is_connected(); }
    void close();
    PostgresConnection& connection() { return conn_; }

    struct Slot {
        pgoutput::Lsn consistent_point = 0;
        std::string snapshot;  // exported snapshot name; empty unless asked for
    };
    Slot create_slot(const std::string& slot, bool export_snapshot);
    // START_REPLICATION of pgoutput protocol 1 for `publication`, with logical messages.
    void start(const std::string& slot, pgoutput::Lsn from, const std::string& publication);
    // The next CopyData message (valid until the next call), waiting for one until `deadline`;
    // none when none came by then. Throws PostgresError when the stream ends or breaks.
    std::optional<std::string_view> next(SteadyClock::time_point deadline);
    void send_status(pgoutput::Lsn received, pgoutput::Lsn flushed, bool reply_requested);

  private:
    void flush();
    PostgresConnection conn_;
    std::unique_ptr<char, void (*)(void*)> buffer_{nullptr, PQfreemem};
    bool streaming_ = false;
};

}  // namespace kbridge
