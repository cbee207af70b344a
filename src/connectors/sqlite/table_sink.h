#pragma once
// Sink `sqlite_table`: the SQL sink core (connectors/sql/sink.h) with the SQLite dialect. One
// writer on a database file in WAL mode; rows by prepared INSERT, upserts by INSERT ... ON
// CONFLICT DO UPDATE, exactly_once offsets in a table of the same file.
#include <memory>

#include "config/options.h"
#include "core/registry.h"
#include "core/sink.h"

namespace kbridge {

const OptionTable& sqlite_sink_options();
std::unique_ptr<Sink> make_sqlite_sink(const Options& options, const ConnectorContext& ctx);

}  // namespace kbridge
