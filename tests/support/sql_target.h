#pragma once
// A target database for the SQL sinks' shared semantic suite: the same tests run against each
// dialect through this interface (SQL the test runs itself, the sink's YAML, what the database
// says when it refuses a record, and a way to interrupt the sink mid-stream).
#include <memory>
#include <string>

#include "support/process.h"

namespace kbridge::test {

class SqlTarget {
  public:
    virtual ~SqlTarget() = default;
    virtual void exec(const std::string& sql) = 0;
    virtual std::string scalar(const std::string& sql) = 0;
    long long count(const std::string& sql) { return std::stoll(scalar(sql)); }
    // The top-level YAML blocks the sink needs (e.g. postgres: {url: ...}), may be empty.
    virtual std::string globals() const = 0;
    // The sink block's own lines after `type:`, indented by six spaces.
    virtual std::string sink_lines() const = 0;
    virtual std::string type() const = 0;
    // What the database's messages say for a CHECK and for a duplicate key.
    virtual std::string check_violation() const = 0;
    virtual std::string duplicate_key() const = 0;
    // Gets in the sink's way once, as an outage would: its connections dropped, or (one file)
    // the write lock held for a while. Returns at once.
    virtual void interrupt() = 0;
    // Whether a table of this name exists.
    virtual bool has_table(const std::string& name) = 0;
};

// "postgres", "mariadb", "sqlite" or "sqlite_normal" (synchronous: normal), in `dir`.
std::unique_ptr<SqlTarget> make_sql_target(const std::string& kind, const TempDir& dir);

}  // namespace kbridge::test
