#include "connectors/sql/lanes.h"

#include <poll.h>

#include <algorithm>

namespace kbridge {

SqlLanes::SqlLanes(const SqlSettings& settings,
                   const std::function<std::unique_ptr<SqlDialect>()>& dialect)
    : exactly_once_(settings.exactly_once) {
    for (size_t i = 0; i < settings.connections; ++i) {
        lanes_.push_back(std::make_unique<SqlSink>(settings, dialect()));
        lanes_.back()->queue_full_batches();
    }
}

void SqlLanes::set_listener(DeliveryListener* listener) {
    Sink::set_listener(listener);
    for (auto& lane : lanes_) lane->set_listener(listener);
}

void SqlLanes::set_dead_letter_available(bool available) {
    Sink::set_dead_letter_available(available);
    for (auto& lane : lanes_) lane->set_dead_letter_available(available);
}

void SqlLanes::connect() {
    for (size_t i = 0; i < lanes_.size(); ++i) {
        tried_ = std::max(tried_, i + 1);
        if (!lanes_[i]->reachable()) lanes_[i]->connect();
    }
}

bool SqlLanes::send(const Record& record, const json::Value* fields, BatchState* batch,
                    Rejection& why) {
    const size_t partition = record.partition > 0 ? static_cast<size_t>(record.partition) : 0;
    return lanes_[partition % lanes_.size()]->send(record, fields, batch, why);
}

bool SqlLanes::preview(const Record& record, const json::Value* fields, std::string& out,
                       Rejection& why) {
    return lanes_.front()->preview(record, fields, out, why);
}

// Waits up to `wait` for any of the connections, then moves each on.
void SqlLanes::poll(std::chrono::milliseconds wait) {
    // A step first: a result libpq already read shows in no socket.
    for (auto& lane : lanes_) lane->poll(std::chrono::milliseconds(0));
    if (wait.count() <= 0) return;
    std::vector<pollfd> fds;
    for (auto& lane : lanes_)
        if (const short events = lane->wanted_events(); events && lane->socket() >= 0)
            fds.push_back({lane->socket(), events, 0});
    if (fds.empty()) return;
    ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    for (auto& lane : lanes_) lane->poll(std::chrono::milliseconds(0));
}

// A connection not tried yet (connect() stopped at a mistake before it) is not a lost one.
bool SqlLanes::reachable() const {
    for (size_t i = 0; i < tried_; ++i)
        if (!lanes_[i]->reachable()) return false;
    return true;
}

uint64_t SqlLanes::retried() const {
    uint64_t sum = 0;
    for (const auto& lane : lanes_) sum += lane->retried();
    return sum;
}

void SqlLanes::bind_group(const std::string& group) {
    for (auto& lane : lanes_) lane->offset_store()->bind_group(group);
}

std::vector<PartitionOffset> SqlLanes::stored_offsets(
    const std::vector<PartitionOffset>& partitions) {
    return lanes_.front()->offset_store()->stored_offsets(partitions);
}

}  // namespace kbridge
