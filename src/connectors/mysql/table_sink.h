#pragma once
// Sink `mysql_table` (MariaDB >= 10.5, MySQL 8): the SQL sink core (connectors/sql/sink.h) with
// the MySQL dialect. Rows by multi-row prepared INSERT, upserts by INSERT ... ON DUPLICATE KEY
// UPDATE, exactly_once offsets in an InnoDB table of the same database and transaction.
#include <memory>

#include "config/options.h"
#include "core/registry.h"
#include "core/sink.h"

namespace kbridge {

const OptionTable& mysql_sink_options();
std::unique_ptr<Sink> make_mysql_sink(const Options& options, const ConnectorContext& ctx);

}  // namespace kbridge
