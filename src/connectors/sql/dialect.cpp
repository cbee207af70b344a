#include "connectors/sql/dialect.h"

namespace kbridge {
namespace {

[[noreturn]] void not_asynchronous() {
    throw std::logic_error("the SQL dialect has no asynchronous fast path");
}

}  // namespace

// A dialect that is not asynchronous() is never asked for these.
void SqlDialect::send_fence(const std::string&, const TopicPartitions&) {
    not_asynchronous();
}
bool SqlDialect::fence_ready(std::chrono::milliseconds, StoredOffsets&) {
    not_asynchronous();
}
void SqlDialect::queue_transaction(const SqlBatch&, const std::vector<size_t>&, bool,
                                   const std::string&, const std::vector<PartitionOffset>&) {
    not_asynchronous();
}
bool SqlDialect::send_queued(std::chrono::milliseconds) {
    not_asynchronous();
}
bool SqlDialect::commit_ready(std::chrono::milliseconds) {
    not_asynchronous();
}
void SqlDialect::abandon(const std::string& why) {
    throw SqlError(why, "", true);
}

}  // namespace kbridge
