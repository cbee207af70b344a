#include "connectors/postgres/table_sink.h"

#include "connectors/postgres/conninfo.h"
#include "connectors/postgres/sink_dialect.h"
#include "connectors/sql/sink.h"
#include "core/wait.h"

namespace kbridge {
namespace {

const OptionTable kOptions = sql_sink_options(
    {
        {"type", OptionType::String, "", "postgres_table"},
        {"url", OptionType::String, "", "libpq URI or key=value conninfo (default: postgres.url)"},
    },
    true,
    {
        {"connect_timeout", OptionType::Duration, "",
         "bound on connecting (default: postgres.connect_timeout, 10s)"},
        {"query_timeout", OptionType::Duration, "",
         "bound on a wait for a transaction's answer (default: postgres.query_timeout, 5m)"},
    });

}  // namespace

const OptionTable& postgres_sink_options() {
    return kOptions;
}

std::unique_ptr<Sink> make_postgres_sink(const Options& options, const ConnectorContext& ctx) {
    PostgresTarget target;
    target.url = options.has("url") ? options.str("url") : ctx.config.postgres.str("url");
    if (target.url.empty())
        throw options.error("url", "no PostgreSQL URL: set url here or postgres.url");
    target.connect_timeout = connect_timeout_option(options, ctx.config.postgres);
    target.query_timeout = query_timeout_option(options, ctx.config.postgres);
    check_postgres_url(target.url, options, ctx.config.postgres);
    const SqlSettings settings = sql_sink_settings(options, ctx, "postgres_table", true);
    return make_sql_sink(settings,
                         [=] { return std::make_unique<PostgresDialect>(target, settings); });
}

}  // namespace kbridge
