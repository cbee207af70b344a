#pragma once
// What every SQL table sink shares: its options (same names and meanings in every dialect) and
// the settings parsed from them.
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"
#include "connectors/sql/dialect.h"
#include "formats/template.h"

namespace kbridge {

struct ConnectorContext;

struct SqlSettings {
    std::string type;   // the sink's `type:`, e.g. postgres_table, for logs
    std::string table;  // as written in the options
    SqlMode mode = SqlMode::Insert;
    std::vector<std::string> key_columns;                            // empty: the primary key
    std::vector<std::pair<std::string, Template>> column_templates;  // empty: fields by name
    bool delete_on_tombstone = false;
    size_t batch_size = 10000;
    bool exactly_once = false;
    std::string offsets_table = "kbridge_offsets";
    size_t connections = 1;
    bool dry_run = false;  // --dry-run and check: write nothing, create nothing
    std::string pipeline;
};

// The shared options between the dialect's own `head` (type, where to connect) and `tail`;
// `connections` is left out for a database with one writer.
OptionTable sql_sink_options(OptionTable head, bool several_connections, const OptionTable& tail);
// Parses the shared options. Connections > 1 only for a kafka source (they split partitions).
SqlSettings sql_sink_settings(const Options& options, const ConnectorContext& ctx,
                              const std::string& type, bool several_connections);

}  // namespace kbridge
