#include "connectors/sql/sink.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "connectors/sql/lanes.h"
#include "core/runner.h"
#include "core/shutdown.h"
#include "core/wait.h"

namespace kbridge {
namespace {

constexpr int kMaxAttempts = 10;

// The server's message with its DETAIL and CONTEXT lines, as one line for headers and logs.
std::string one_line(const std::string& message) {
    std::string out;
    for (const char c : message) {
        if (c == '\n') {
            out += "; ";
        } else if (!(c == ' ' && !out.empty() && out.back() == ' ')) {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::unique_ptr<Sink> make_sql_sink(const SqlSettings& settings,
                                    const std::function<std::unique_ptr<SqlDialect>()>& dialect) {
    if (settings.connections > 1) return std::make_unique<SqlLanes>(settings, dialect);
    return std::make_unique<SqlSink>(settings, dialect());
}

SqlSink::SqlSink(SqlSettings settings, std::unique_ptr<SqlDialect> dialect)
    : settings_(std::move(settings)), dialect_(std::move(dialect)) {}

// A dialect may still be writing current_ on a thread of its own (SQLite's): it ends first.
SqlSink::~SqlSink() {
    dialect_.reset();
}

bool SqlSink::needs_fields() const {
    if (settings_.column_templates.empty()) return true;
    for (const auto& c : settings_.column_templates)
        if (c.second.needs_fields()) return true;
    return false;
}

// The key columns and the template columns, checked against the table the dialect found.
void SqlSink::resolve_shape(TableShape shape) {
    const std::string what = dialect_->name() + " table " + settings_.table;
    auto index_of = [&](const std::string& name) -> size_t {
        for (size_t i = 0; i < shape.columns.size(); ++i)
            if (shape.columns[i].name == name) return i;
        throw SqlError(what + " has no column '" + name + "'");
    };
    for (const auto& [column, tmpl] : settings_.column_templates) index_of(column);
    std::vector<size_t> keys;
    for (const auto& k : settings_.key_columns) keys.push_back(index_of(k));
    if (!keys.empty()) shape.keys = keys;
    const bool needs_keys = settings_.mode != SqlMode::Insert || settings_.delete_on_tombstone;
    if (needs_keys && shape.keys.empty())
        throw SqlError(what + " has no primary key: name key_columns for " +
                       (settings_.mode == SqlMode::Upsert   ? "mode upsert"
                        : settings_.mode == SqlMode::Update ? "mode update"
                                                            : "delete_on_tombstone"));
    shape_ = std::move(shape);
    dialect_->use_shape(shape_);
    in_.width = current_.width = shape_.columns.size();
}

void SqlSink::connect() {
    dialect_->connect();
    resolve_shape(dialect_->introspect());
    // --dry-run and check write nothing: what a run would create is only told.
    if (settings_.dry_run) return;
    if (settings_.exactly_once) dialect_->create_offsets_table();
    dialect_->prepare_session();
}

void SqlSink::check() {
    connect();
    if (settings_.exactly_once && !dialect_->offsets_table_exists())
        std::printf("note  %s: sink %s: would create table %s (exactly_once)\n",
                    settings_.pipeline.c_str(), describe().c_str(),
                    settings_.offsets_table.c_str());
}

void SqlSink::ensure_connected() {
    if (dialect_->connected()) return;
    spdlog::warn("{} sink {}: reconnecting to {}", settings_.type, settings_.table,
                 dialect_->endpoint());
    dialect_->connect();
    if (!settings_.dry_run) dialect_->prepare_session();
}

SqlBatch::Bytes SqlSink::keep(std::optional<std::string_view> bytes) {
    if (!bytes) return {};
    SqlBatch::Bytes b{in_.originals.size(), static_cast<int64_t>(bytes->size())};
    in_.originals.append(*bytes);
    return b;
}

std::vector<size_t> SqlSink::all() const {
    std::vector<size_t> records(current_.size());
    std::iota(records.begin(), records.end(), 0);
    return records;
}

bool SqlSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                   Rejection& why) {
    const bool tombstone = !record.value;
    if (tombstone && !settings_.delete_on_tombstone) {
        listener_->delivered(batch);  // nothing to write: tombstones only matter to deleting tables
        return true;
    }
    if (!encoder_.encode(record, fields, in_, why)) return false;
    uint32_t topic = 0;
    while (topic < topics_.size() && topics_[topic] != record.topic) ++topic;
    if (topic == topics_.size()) topics_.push_back(record.topic);
    in_.rows.push_back({batch, tombstone, topic, record.partition, record.offset, keep(record.key),
                        keep(record.value)});
    if (in_.size() < settings_.batch_size) return true;
    if (queue_full_batches_) {
        full_.push_back(std::move(in_));
        in_ = SqlBatch(&topics_);
        if (!spare_.empty()) {
            in_ = std::move(spare_.back());
            spare_.pop_back();
        }
        in_.width = shape_.columns.size();
        if (state_ == FastPath::Idle) start_next();
    } else {
        finish_inflight();
        start_next();
    }
    return true;
}

// A batch's transaction runs while the next batch is read and encoded: poll() moves the one in
// flight on without waiting (unless asked to) and starts the next once it is done.
void SqlSink::poll(std::chrono::milliseconds wait) {
    progress(wait);
    if (state_ == FastPath::Idle && (!full_.empty() || !in_.empty())) {
        start_next();
        progress(std::chrono::milliseconds(0));
    }
}

void SqlSink::finish_inflight() {
    while (state_ != FastPath::Idle) progress(std::chrono::milliseconds(1000));
}

short SqlSink::wanted_events() const {
    switch (state_) {
        case FastPath::Sending:
            return POLLOUT | POLLIN;
        case FastPath::Fencing:
        case FastPath::Committing:
            return POLLIN;
        case FastPath::Idle:
            break;
    }
    return 0;
}

// The oldest encoded batch becomes the one written (its buffers swapped, not copied).
void SqlSink::start_next() {
    SqlBatch& next = full_.empty() ? in_ : full_.front();
    std::swap(current_, next);
    next.clear();
    next.width = shape_.columns.size();
    if (!full_.empty()) {
        // Kept for the next batch: its vectors have grown to a batch's size already, and growing
        // fresh ones each batch costs page faults and copies.
        if (spare_.size() < kSpareBatches) spare_.push_back(std::move(full_.front()));
        full_.pop_front();
    }
    if (!current_.empty()) start_fast();
}

void SqlSink::start_fast() {
    // The commit stores offsets past records refused before they reached this sink (invalid
    // JSON, a failed template): with exactly_once the dead letter must hold them first.
    if (settings_.exactly_once && !listener_->settle_dead_letters()) {
        fail_all("not written: the dead letter failed to take a record refused before it");
        return;
    }
    const bool insert_deletes = settings_.mode == SqlMode::Insert &&
                                std::any_of(current_.rows.begin(), current_.rows.end(),
                                            [](const SqlBatch::Row& r) { return r.tombstone; });
    if (insert_deletes) {
        flush();
        return;
    }
    if (!dialect_->asynchronous()) {
        write_blocking();
        return;
    }
    try {
        ensure_connected();
        if (settings_.exactly_once) {
            dialect_->send_fence(group_, current_.partitions(all()));
            state_ = FastPath::Fencing;
            sent_at_ = std::chrono::steady_clock::now();
            return;
        }
        queue(all(), true);
    } catch (const SqlError& e) {
        // Before the end of the rows is sent nothing can have been committed.
        state_ = FastPath::Idle;
        recover(e, false);
    }
}

// The fast path of a dialect that waits for each step: one transaction, no savepoints.
void SqlSink::write_blocking() {
    try {
        ensure_connected();
        state_ = FastPath::Sending;
        dialect_->begin();
        std::vector<size_t> todo = all();
        if (settings_.exactly_once)
            todo = unapplied(todo, dialect_->lock_offsets(group_, current_.partitions(todo)));
        apply(todo);
        if (settings_.exactly_once) dialect_->write_offsets(group_, next_offsets());
        state_ = FastPath::Committing;
        dialect_->commit();
        state_ = FastPath::Idle;
        deliver_all();
    } catch (const SqlError& e) {
        const bool commit_sent = state_ == FastPath::Committing;
        state_ = FastPath::Idle;
        recover(e, commit_sent);
    }
}

// `todo`: the batch's records not yet applied; the transaction is open already unless `begin`.
void SqlSink::queue(const std::vector<size_t>& todo, bool begin) {
    const std::vector<size_t> rows =
        settings_.mode == SqlMode::Insert ? todo : last_per_key(current_, todo, shape_.keys);
    state_ = FastPath::Sending;
    sent_at_ = std::chrono::steady_clock::now();
    dialect_->queue_transaction(
        current_, rows, begin, group_,
        settings_.exactly_once ? next_offsets() : std::vector<PartitionOffset>());
}

void SqlSink::progress(std::chrono::milliseconds wait) {
    try {
        if (state_ == FastPath::Fencing) {
            StoredOffsets stored;
            if (!dialect_->fence_ready(wait, stored)) return give_up_if_stalled();
            queue(unapplied(all(), stored), false);
            wait = std::chrono::milliseconds(0);
        }
        if (state_ == FastPath::Sending) {
            if (!dialect_->send_queued(wait)) return give_up_if_stalled();
            state_ = FastPath::Committing;
            wait = std::chrono::milliseconds(0);
        }
        if (state_ == FastPath::Committing) {
            if (!dialect_->commit_ready(wait)) return give_up_if_stalled();
            state_ = FastPath::Idle;
            deliver_all();
        }
    } catch (const SqlError& e) {
        const bool commit_sent = state_ == FastPath::Committing;  // in doubt if the link is lost
        state_ = FastPath::Idle;
        recover(e, commit_sent);
    }
}

// The fast path's transaction has waited past query_timeout, or past the grace a stopping run
// allows: the connection is dropped (a SqlError, connection lost).
void SqlSink::give_up_if_stalled() {
    const auto now = std::chrono::steady_clock::now();
    if (stop_requested().load() && !stop_seen_) stop_seen_ = now;
    if (now - sent_at_ > dialect_->query_timeout())
        dialect_->abandon("no answer within " + duration_text(dialect_->query_timeout()) +
                          " (query_timeout) while writing a batch");
    if (stop_seen_ && now - *stop_seen_ > kStopGrace)
        dialect_->abandon("gave up waiting for a batch's transaction: the run is stopping");
}

void SqlSink::deliver_all() {
    for (const auto& row : current_.rows) listener_->delivered(row.batch);
    current_.clear();
}

void SqlSink::fail_all(const std::string& error) {
    fail_unreported(std::vector<bool>(current_.size()), error);
}

// The fast path failed: roll back and write the batch the careful way. A COMMIT whose outcome
// the lost connection hides is resolved as flush() resolves it.
void SqlSink::recover(const SqlError& e, bool commit_sent) {
    dialect_->stop_async();
    if (commit_sent && e.connection_lost()) {
        if (settings_.exactly_once) {
            try {
                ensure_connected();
                if (committed_before(all())) return deliver_all();
            } catch (const SqlError&) {
            }
        } else if (settings_.mode == SqlMode::Insert) {
            return fail_all("COMMIT in doubt (" + std::string(e.what()) +
                            "); not retried, as it could insert the rows twice");
        }
    }
    if (!e.connection_lost()) dialect_->rollback();
    if (dialect_->classify(e) == SqlFailure::Fatal) return fail_all(e.what());
    flush();
}

void SqlSink::flush() {
    if (current_.empty()) return;
    std::vector<Rejected> rejected;
    std::vector<bool> reported(current_.size(), false);  // refused, and told so already
    std::chrono::milliseconds backoff(100);
    for (int attempt = 1;; ++attempt) {
        rejected.clear();
        bool commit_sent = false;
        try {
            ensure_connected();
            dialect_->begin();
            std::vector<size_t> todo = all();
            if (settings_.exactly_once)
                todo = unapplied(todo, dialect_->lock_offsets(group_, current_.partitions(todo)));
            isolate(todo, rejected);
            if (!rejected.empty() && !dead_letter_available_) {
                // The run stops at the refused record: none of its batch is written, so a rerun
                // after the fix writes each record once.
                dialect_->rollback();
                report_refused(rejected, reported);
                return fail_unreported(reported,
                                       "not written: its batch holds a record the table refused");
            }
            if (settings_.exactly_once && !rejected.empty()) {
                // The stored offsets pass the refused records with this commit: they go to the
                // dead letter first, or a crash just after the commit would leave them nowhere.
                report_refused(rejected, reported);
                if (!listener_->settle_dead_letters()) {
                    dialect_->rollback();
                    return fail_unreported(reported,
                                           "not written: the dead letter failed to take a record "
                                           "of its batch the table refused");
                }
            }
            if (settings_.exactly_once) dialect_->write_offsets(group_, next_offsets());
            commit_sent = true;
            dialect_->commit();
            break;
        } catch (const SqlError& e) {
            std::string error = e.what();
            bool may_retry = dialect_->classify(e) == SqlFailure::Transient;
            if (commit_sent && e.connection_lost()) {
                // In doubt: the COMMIT may have happened. Only the stored offsets can tell; an
                // upsert or update may safely happen twice, an insert may not.
                if (settings_.exactly_once) {
                    try {
                        ensure_connected();
                        if (committed_before(all())) break;
                    } catch (const SqlError&) {
                    }
                } else if (settings_.mode == SqlMode::Insert) {
                    may_retry = false;
                    error = "COMMIT in doubt (" + error +
                            "); not retried, as it could insert the rows twice";
                }
            }
            if (!e.connection_lost()) dialect_->rollback();
            if (may_retry && attempt < kMaxAttempts && !stop_requested().load()) {
                spdlog::warn("{} sink {}: {} (attempt {} of {}, retrying in {} ms)", settings_.type,
                             settings_.table, error, attempt, kMaxAttempts, backoff.count());
                sleep_unless_stopped(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                retried_ += current_.size();
                continue;
            }
            return fail_unreported(reported, error);
        }
    }
    report_refused(rejected, reported);
    for (size_t i = 0; i < current_.size(); ++i)
        if (!reported[i]) listener_->delivered(current_.rows[i].batch);
    current_.clear();
}

// The batch's records not reported refused have failed: the run stops.
void SqlSink::fail_unreported(const std::vector<bool>& reported, const std::string& error) {
    for (size_t i = 0; i < current_.size(); ++i)
        if (!reported[i]) listener_->failed(current_.rows[i].batch, error);
    current_.clear();
}

// Each refused record is reported once, however many attempts found it.
void SqlSink::report_refused(const std::vector<Rejected>& rejected, std::vector<bool>& reported) {
    for (const auto& r : rejected) {
        if (reported[r.index]) continue;
        reported[r.index] = true;
        Record original;
        original.key = current_.original_key(r.index);
        original.value = current_.original_value(r.index);
        original.topic = current_.topic(r.index);
        original.partition = current_.partition(r.index);
        original.offset = current_.offset(r.index);
        listener_->rejected(current_.rows[r.index].batch, std::move(original),
                            Rejection{"database", r.message});
    }
}

// Applies `records`, or if the database refuses them for what they hold, halves them until the
// refused records stand alone; the others still apply, in their order.
void SqlSink::isolate(const std::vector<size_t>& records, std::vector<Rejected>& rejected) {
    if (records.empty()) return;
    dialect_->savepoint();
    try {
        apply(records);
        dialect_->release_savepoint();
        return;
    } catch (const SqlError& e) {
        if (dialect_->classify(e) != SqlFailure::Refused) throw;
        dialect_->rollback_to_savepoint();
        if (records.size() == 1) {
            rejected.push_back({records[0], one_line(e.what())});
            return;
        }
    }
    const auto middle = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
    isolate(std::vector<size_t>(records.begin(), middle), rejected);
    isolate(std::vector<size_t>(middle, records.end()), rejected);
}

void SqlSink::apply(const std::vector<size_t>& records) {
    if (settings_.mode != SqlMode::Insert) {
        const std::vector<size_t> last = last_per_key(current_, records, shape_.keys);
        if (!last.empty()) dialect_->merge(current_, last);
        return;
    }
    // Inserts and deletes in their order: runs of inserts together, each delete by itself.
    std::vector<size_t> run;
    for (size_t r : records) {
        if (!current_.tombstone(r)) {
            run.push_back(r);
            continue;
        }
        if (!run.empty()) dialect_->insert(current_, run);
        run.clear();
        dialect_->remove(current_, r);
    }
    if (!run.empty()) dialect_->insert(current_, run);
}

// The records at or past the stored offsets.
std::vector<size_t> SqlSink::unapplied(const std::vector<size_t>& records,
                                       const StoredOffsets& stored) {
    std::vector<size_t> todo;
    for (size_t r : records) {
        auto it = stored.find({current_.topic(r), current_.partition(r)});
        if (it == stored.end() || current_.offset(r) >= it->second) todo.push_back(r);
    }
    if (todo.size() != records.size())
        spdlog::info("{} sink {}: skipped {} records already applied (offsets in {})",
                     settings_.type, settings_.table, records.size() - todo.size(),
                     settings_.offsets_table);
    return todo;
}

bool SqlSink::committed_before(const std::vector<size_t>& records) {
    const StoredOffsets stored = dialect_->read_offsets(group_);
    for (size_t r : records) {
        auto it = stored.find({current_.topic(r), current_.partition(r)});
        if (it == stored.end() || it->second <= current_.offset(r)) return false;
    }
    return true;
}

// The batch's next offset of each partition.
std::vector<PartitionOffset> SqlSink::next_offsets() const {
    StoredOffsets next;
    for (size_t r = 0; r < current_.size(); ++r) {
        auto [it, inserted] =
            next.try_emplace({current_.topic(r), current_.partition(r)}, current_.offset(r) + 1);
        if (!inserted) it->second = std::max(it->second, current_.offset(r) + 1);
    }
    std::vector<PartitionOffset> out;
    for (const auto& [tp, offset] : next) out.push_back({tp.first, tp.second, offset});
    return out;
}

std::vector<PartitionOffset> SqlSink::stored_offsets(
    const std::vector<PartitionOffset>& partitions) {
    ensure_connected();
    // --dry-run reads what is stored, and creates neither the table nor its rows.
    if (settings_.dry_run && !dialect_->offsets_table_exists()) {
        std::vector<PartitionOffset> none = partitions;
        for (auto& p : none) p.next_offset = -1;
        return none;
    }
    return dialect_->initial_offsets(group_, partitions, !settings_.dry_run);
}

}  // namespace kbridge
