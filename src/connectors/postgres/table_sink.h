#pragma once
// Sink `postgres_table`: the SQL sink core (connectors/sql/sink.h) with the PostgreSQL dialect.
// Rows go in by COPY, straight into the table for inserts and through a temporary stage table
// for upserts, updates and deletes; a batch's whole transaction (COPY, statements, offsets,
// COMMIT) is sent as one request without waiting for the server.
#include <memory>

#include "config/options.h"
#include "core/registry.h"
#include "core/sink.h"

namespace kbridge {

const OptionTable& postgres_sink_options();
std::unique_ptr<Sink> make_postgres_sink(const Options& options, const ConnectorContext& ctx);

}  // namespace kbridge
