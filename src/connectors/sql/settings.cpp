#include "connectors/sql/settings.h"

#include "core/registry.h"

namespace kbridge {

OptionTable sql_sink_options(OptionTable head, bool several_connections, const OptionTable& tail) {
    const OptionTable shared = {
        {"table", OptionType::String, "", "target table, table or schema.table", {}, true},
        {"mode",
         OptionType::Choice,
         "insert",
         "how records are written",
         {"insert", "upsert", "update"}},
        {"key_columns", OptionType::StringList, "",
         "columns that identify a row (default: the primary key)"},
        {"columns", OptionType::StringMap, "",
         "column -> template (default: fields named like columns)"},
        {"delete_on_tombstone", OptionType::Boolean, "false",
         "a record without value deletes its key's row"},
        {"batch_size", OptionType::Integer, "10000", "records per transaction at most"},
        {"exactly_once", OptionType::Boolean, "false",
         "keep the Kafka offsets in the table's database, in the same transaction"},
        {"offsets_table", OptionType::String, "kbridge_offsets",
         "where exactly_once keeps the offsets"},
    };
    head.insert(head.end(), shared.begin(), shared.end());
    if (several_connections)
        head.push_back({"connections", OptionType::Integer, "2",
                        "connections writing at once, each its share of the Kafka partitions"});
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

SqlSettings sql_sink_settings(const Options& options, const ConnectorContext& ctx,
                              const std::string& type, bool several_connections) {
    SqlSettings s;
    s.type = type;
    s.pipeline = ctx.pipeline;
    s.dry_run = ctx.dry_run;
    s.table = options.str("table");
    const std::string mode = options.str("mode");
    s.mode = mode == "upsert"   ? SqlMode::Upsert
             : mode == "update" ? SqlMode::Update
                                : SqlMode::Insert;
    s.key_columns = options.string_list("key_columns");
    for (const auto& [column, text] : options.string_map("columns")) {
        try {
            s.column_templates.emplace_back(column, Template(text));
        } catch (const std::invalid_argument& e) {
            throw options.error("columns", column + ": " + e.what());
        }
    }
    s.delete_on_tombstone = options.boolean("delete_on_tombstone");
    const int64_t batch_size = options.integer("batch_size");
    if (batch_size < 1) throw options.error("batch_size", "must be at least 1");
    s.batch_size = static_cast<size_t>(batch_size);
    s.exactly_once = options.boolean("exactly_once");
    s.offsets_table = options.str("offsets_table");
    if (several_connections) {
        const int64_t connections = options.integer("connections");
        if (connections < 1 || connections > 64)
            throw options.error("connections", "must be between 1 and 64");
        // They split a Kafka source's partitions; other sources' records have none.
        if (ctx.source_type == "kafka") s.connections = static_cast<size_t>(connections);
    }
    return s;
}

}  // namespace kbridge
