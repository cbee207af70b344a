#include "core/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "core/log.h"

namespace kbridge {
namespace {

using std::chrono::milliseconds;

int64_t unix_ms() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Enough of a record to find it, without flooding the log.
std::string describe_record(const Record& record) {
    std::string out;
    if (record.key) out += "key '" + std::string(record.key->substr(0, 64)) + "' ";
    if (record.value) {
        out += "value '" + std::string(record.value->substr(0, 80)) +
               (record.value->size() > 80 ? "…" : "") + "'";
    } else {
        out += "tombstone";
    }
    return out;
}

}  // namespace

PipelineRunner::PipelineRunner(std::string name, std::unique_ptr<Source> source,
                               std::unique_ptr<Sink> sink, std::unique_ptr<Sink> dead_letter,
                               RunSettings settings)
    : name_(std::move(name)),
      source_(std::move(source)),
      sink_(std::move(sink)),
      dead_letter_(std::move(dead_letter)),
      settings_(settings),
      quarantine_(settings.state_dir, name_) {
    sink_->set_listener(this);
    sink_->set_dead_letter_available(dead_letter_ != nullptr);
    if (dead_letter_) dead_letter_->set_listener(&dead_letter_listener_);
}

PipelineRunner::~PipelineRunner() {
    // Sinks flush on destruction; their late reports must not reach a half-destroyed runner.
    sink_.reset();
    dead_letter_.reset();
}

int PipelineRunner::run(const std::atomic<bool>& stop) {
    const LogContext context(name_, source_type_, sink_type_);
    started_ = last_progress_ = std::chrono::steady_clock::now();
    started_ms_ = steady_ms();
    beat();
    milliseconds backoff(1000);
    while (!stop.load() && !fatal_) {
        try {
            connect_endpoints();
            backoff = milliseconds(1000);
            loop(stop);
            break;
        } catch (const std::exception& e) {
            const std::string unreachable = unreachable_endpoint();
            if (stop.load()) {
                // A wait cut short by the stop request (or an error while stopping): nothing
                // more is read; what was read is settled below, the rest stays in the source.
                spdlog::warn("pipeline {}: stopping: {}", name_, e.what());
                break;
            }
            if (settings_.once || unreachable.empty()) {
                log_event(spdlog::level::err,
                          {log_field("event", "pipeline_failed"),
                           log_field("error_class", unreachable.empty() ? "fatal" : "unreachable")},
                          "pipeline " + name_ + ": " + e.what());
                fatal_ = true;
                break;
            }
            // Follow mode outlives an endpoint's outage: what was read is settled, the source
            // gives again what it could not acknowledge, and the connection is retried.
            stats_.connected = false;
            ++stats_.reconnects;
            set_unreachable(unreachable);
            log_event(spdlog::level::warn,
                      {log_field("event", "endpoint_unreachable"),
                       log_field("error_class", "unreachable"), log_field("endpoint", unreachable),
                       log_field("retry_in_seconds", backoff.count() / 1000.0),
                       log_field("reconnects", stats_.reconnects.load())},
                      fmt::format("pipeline {}: {} is unreachable: {}; retrying in {} s", name_,
                                  unreachable, e.what(), backoff.count() / 1000.0));
            settle_after_loss();
            wait_for(stop, backoff);
            backoff = std::min(backoff * 2, milliseconds(30000));
        }
    }
    drain();
    sample_gauges(true);
    try {
        if (source_connected_) source_->close();
    } catch (const std::exception& e) {
        log_event(spdlog::level::err,
                  {log_field("event", "pipeline_failed"), log_field("error_class", "fatal")},
                  fmt::format("pipeline {}: closing {}: {}", name_, source_->describe(), e.what()));
        fatal_ = true;
    }
    if (settings_.progress) show_progress(true);
    stats_.seconds =
        earlier_seconds_ +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    finished_ = true;
    return fatal_ ? 1 : 0;
}

// Connects what is not connected yet: after an outage, only the endpoint that was lost.
void PipelineRunner::connect_endpoints() {
    const bool first = !ever_connected_;
    if (!source_connected_) {
        source_->connect();
        source_connected_ = true;
    }
    if (!sink_connected_) {
        sink_->connect();
        sink_connected_ = true;
    }
    if (dead_letter_ && !dead_letter_connected_) {
        dead_letter_->connect();
        dead_letter_connected_ = true;
    }
    if (first && settings_.progress) total_ = source_->backlog();
    if (!first)
        log_event(
            spdlog::level::info,
            {log_field("event", "reconnected"), log_field("reconnects", stats_.reconnects.load())},
            "pipeline " + name_ + ": connected again");
    ever_connected_ = true;
    stats_.connected = true;
    set_unreachable("");
}

void PipelineRunner::loop(const std::atomic<bool>& stop) {
    while (!stop.load() && !fatal_ && !output_closed_) {
        beat();
        sample_gauges(false);
        if (in_flight_ >= settings_.max_in_flight) {
            poll(milliseconds(50));
            continue;
        }
        Batch batch;
        // Block in the source only when nothing awaits a delivery report.
        const ReadStatus status =
            source_->read(batch, in_flight_ ? milliseconds(0) : milliseconds(500));
        if (status != ReadStatus::Records && in_flight_ == 0)
            stats_.last_success_unix_ms = unix_ms();  // caught up, everything acknowledged
        if (status == ReadStatus::Records && settings_.dry_run_records) {
            preview(batch);
            if (previewed_ >= settings_.dry_run_records) break;
            continue;
        }
        const bool handed_out = status != ReadStatus::Records || dispatch(batch);
        // Only once every record before it went to the sink: a commit may then carry it.
        if (batch.resume && handed_out)
            if (PositionCommitter* committer = sink_->position_committer())
                committer->advance(*batch.resume);
        if (status == ReadStatus::End) break;
        poll(milliseconds(status == ReadStatus::Idle && in_flight_ ? 10 : 0));
        if (settings_.progress) show_progress(false);
    }
}

// Names the endpoint whose connection was lost (or never made), marking it for reconnecting;
// empty when the error was of another kind (a missing table, a refused password, ...).
std::string PipelineRunner::unreachable_endpoint() {
    std::string lost;
    auto check = [&](bool& connected, bool reachable, const std::string& what) {
        if (reachable) return;
        connected = false;
        lost += (lost.empty() ? "" : ", ") + what;
    };
    check(source_connected_, source_->reachable(), source_->describe());
    check(sink_connected_, sink_->reachable(), sink_->describe());
    if (dead_letter_)
        check(dead_letter_connected_, dead_letter_->reachable(), dead_letter_->describe());
    return lost;
}

// After losing an endpoint: lets the sinks finish what they took, acknowledges what still can
// be, and forgets the rest, which the source gives again once connected (as after a crash:
// duplicates possible, no loss).
void PipelineRunner::settle_after_loss() {
    try {
        while (records_pending()) {
            beat();
            sink_->poll(milliseconds(100));
            if (dead_letter_) dead_letter_->poll(milliseconds(0));
        }
    } catch (const std::exception& e) {
        log_event(spdlog::level::err,
                  {log_field("event", "pipeline_failed"), log_field("error_class", "fatal")},
                  "pipeline " + name_ + ": " + e.what());
        fatal_ = true;  // the sink cannot say what became of its records: stop as after a crash
        return;
    }
    try {
        ack_completed();
    } catch (const std::exception& e) {
        log_event(spdlog::level::warn,
                  {log_field("event", "batches_not_acknowledged"),
                   log_field("error_class", "unreachable"), log_field("batches", batches_.size())},
                  fmt::format("pipeline {}: {} batches not acknowledged will be read again: {}",
                              name_, batches_.size(), e.what()));
    }
    if (fatal_) return;
    batches_.clear();
    in_flight_ = 0;
}

void PipelineRunner::wait_for(const std::atomic<bool>& stop, milliseconds pause) {
    const auto until = std::chrono::steady_clock::now() + pause;
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
        beat();  // retrying is this loop's work: the watchdog must not kill it
        std::this_thread::sleep_for(milliseconds(50));
    }
}

bool PipelineRunner::records_pending() const {
    for (const auto& b : batches_)
        if (b->pending) return true;
    return false;
}

double PipelineRunner::elapsed_seconds() const {
    if (finished_) return stats_.seconds;
    const int64_t started = started_ms_.load();
    if (started == 0) return earlier_seconds_;
    return earlier_seconds_ + (steady_ms() - started) / 1000.0;
}

void PipelineRunner::set_types(std::string source, std::string sink) {
    source_type_ = std::move(source);
    sink_type_ = std::move(sink);
}

void PipelineRunner::continue_from(const PipelineRunner& earlier) {
    const PipelineStats& e = earlier.stats_;
    stats_.read = e.read.load();
    stats_.delivered = e.delivered.load();
    stats_.dead_lettered = e.dead_lettered.load();
    stats_.reconnects = e.reconnects.load();
    stats_.retried = e.retried.load();
    earlier_retried_ = e.retried.load();
    stats_.last_success_unix_ms = e.last_success_unix_ms.load();
    for (size_t i = 0; i < std::size(e.latency_buckets); ++i)
        stats_.latency_buckets[i] = e.latency_buckets[i].load();
    stats_.latency_sum_us = e.latency_sum_us.load();
    earlier_seconds_ = earlier.elapsed_seconds();
}

std::string PipelineRunner::unreachable() const {
    std::lock_guard<std::mutex> lock(unreachable_mutex_);
    return unreachable_;
}

void PipelineRunner::set_unreachable(const std::string& endpoints) {
    std::lock_guard<std::mutex> lock(unreachable_mutex_);
    unreachable_ = endpoints;
}

int64_t PipelineRunner::steady_ms() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void PipelineRunner::observe_latency(int64_t read_ms) {
    const double seconds = (steady_ms() - read_ms) / 1000.0;
    size_t bucket = 0;
    while (bucket < std::size(PipelineStats::kLatencyBounds) &&
           seconds > PipelineStats::kLatencyBounds[bucket])
        ++bucket;
    ++stats_.latency_buckets[bucket];
    stats_.latency_sum_us += static_cast<uint64_t>(seconds * 1e6);
}

// The stats that connectors keep themselves, copied for the metrics thread from the run loop
// (connectors are not thread-safe), about once a second.
void PipelineRunner::sample_gauges(bool now) {
    const int64_t at = steady_ms();
    if (!now && at - last_sample_ms_ < 1000) return;
    last_sample_ms_ = at;
    const auto lag = source_->lag();
    stats_.lag = lag ? static_cast<int64_t>(*lag) : -1;
    const auto pending = source_->pending();
    stats_.pending = pending ? static_cast<int64_t>(*pending) : -1;
    const auto claimed = source_->claimed();
    stats_.claimed = claimed ? static_cast<int64_t>(*claimed) : -1;
    const auto blocked = source_->blocked_seconds();
    stats_.blocked_ms = blocked ? static_cast<int64_t>(*blocked * 1000) : -1;
    stats_.source_healthy = source_->healthy();
    auto gauges = source_->gauges();
    {
        std::lock_guard<std::mutex> lock(stats_.source_gauges_mutex);
        stats_.source_gauges = std::move(gauges);
    }
    stats_.retried =
        earlier_retried_ + sink_->retried() + (dead_letter_ ? dead_letter_->retried() : 0);
}

void PipelineRunner::beat() {
    stats_.heartbeat_ms.store(steady_ms(), std::memory_order_relaxed);
}

bool PipelineRunner::dispatch(Batch& batch) {
    auto state = std::make_unique<BatchState>();
    BatchState* raw = state.get();
    raw->size = raw->pending = batch.records.size();
    raw->read_ms = steady_ms();
    raw->ack = std::move(batch.ack);
    batches_.push_back(std::move(state));
    in_flight_ += batch.records.size();
    stats_.read += batch.records.size();
    const bool csv = source_->format() == Format::Csv;
    const bool decode = csv || (source_->format() == Format::Json &&
                                (sink_->needs_fields() || !source_->values_are_valid_json()));
    json::Value fields;
    std::string error;
    // CSV lines turn into JSON objects, which are then what every sink sees as the value.
    std::vector<std::string> csv_errors;
    std::vector<std::pair<size_t, size_t>> csv_places;
    if (csv) {
        csv_json_.clear();
        csv_errors.resize(batch.records.size());
        csv_places.resize(batch.records.size());
        for (size_t i = 0; i < batch.records.size(); ++i) {
            const Record& record = batch.records[i];
            const size_t begin = csv_json_.size();
            if (record.value &&
                !csv_to_json(*record.value, source_->csv(), csv_json_, csv_errors[i]))
                continue;
            csv_places[i] = {begin, csv_json_.size() - begin};
        }
    }
    auto refused = batch.refused.begin();
    for (size_t i = 0; i < batch.records.size(); ++i) {
        Record& record = batch.records[i];
        const json::Value* decoded = nullptr;
        Rejection why;
        if (refused != batch.refused.end() && refused->first == i) {
            why = (refused++)->second;  // the source's own verdict, e.g. a line too long
        } else if (csv && record.value && !csv_errors[i].empty()) {
            why = {"invalid_csv", csv_errors[i]};
        } else {
            if (csv && record.value)
                record.value =
                    std::string_view(csv_json_.data() + csv_places[i].first, csv_places[i].second);
            if (decode && record.value) {
                if (decoder_.decode(*record.value, fields, error))
                    decoded = &fields;
                else
                    why = {"invalid_json", error};
            }
            if (why.reason.empty() && sink_->send(record, decoded, raw, why)) continue;
        }
        if (dead_letter(raw, std::move(record), why)) continue;
        // Nothing after a record that can go nowhere is sent: what was sent before it is
        // acknowledged once delivered, and the next run starts at this record.
        raw->stopped_at = i;
        raw->pending -= batch.records.size() - i - 1;
        return false;
    }
    return true;
}

// --dry-run: decode and template like dispatch(), print, and acknowledge nothing.
void PipelineRunner::preview(Batch& batch) {
    stats_.read += batch.records.size();
    json::Value fields;
    std::string error, line;
    std::vector<char> csv_json;
    auto refused = batch.refused.begin();
    for (size_t i = 0; i < batch.records.size(); ++i) {
        Record& record = batch.records[i];
        if (previewed_ >= settings_.dry_run_records) break;
        ++previewed_;
        if (refused != batch.refused.end() && refused->first == i) {
            std::printf("%s\tDEAD LETTER %s: %s\n", name_.c_str(), refused->second.reason.c_str(),
                        refused->second.detail.c_str());
            ++refused;
            continue;
        }
        line.clear();
        const json::Value* decoded = nullptr;
        std::string outcome;
        if (source_->format() == Format::Csv && record.value) {
            csv_json.clear();
            if (!csv_to_json(*record.value, source_->csv(), csv_json, error)) {
                std::printf("%s\tDEAD LETTER invalid_csv: %s\n", name_.c_str(), error.c_str());
                continue;
            }
            record.value = std::string_view(csv_json.data(), csv_json.size());
        }
        if (source_->format() != Format::Raw && record.value) {
            if (!decoder_.decode(*record.value, fields, error)) {
                std::printf("%s\tDEAD LETTER invalid_json: %s\n", name_.c_str(), error.c_str());
                continue;
            }
            decoded = &fields;
        }
        Rejection why;
        if (sink_->preview(record, decoded, line, why)) {
            std::printf("%s\t%s\n", name_.c_str(), line.c_str());
        } else {
            std::printf("%s\tDEAD LETTER %s: %s\n", name_.c_str(), why.reason.c_str(),
                        why.detail.c_str());
        }
    }
    std::fflush(stdout);
}

bool PipelineRunner::dead_letter(BatchState* batch, Record record, const Rejection& why) {
    if (!dead_letter_) {
        fail(batch, "record from " + source_->describe() + " (" + describe_record(record) +
                        ") cannot be written: " + why.reason + ": " + why.detail +
                        "; no dead_letter is configured, so it stays in the source");
        return false;
    }
    log_event(spdlog::level::warn,
              {log_field("event", "dead_letter"), log_field("error_class", "refused"),
               log_field("reason", why.reason)},
              fmt::format("pipeline {}: dead-lettering a record from {} ({}): {}: {}", name_,
                          source_->describe(), describe_record(record), why.reason, why.detail));
    record.headers.push_back({"kbridge.error.reason", why.reason});
    record.headers.push_back({"kbridge.error.message", why.detail});
    record.headers.push_back({"kbridge.pipeline", name_});
    record.headers.push_back({"kbridge.source", source_->describe()});
    if (why.reason == "too_large" && record.value &&
        record.value->size() > kQuarantinePreviewBytes) {
        // Too large for the dead letter as well: kept whole on disk, its head in the letter.
        try {
            const std::string sha256 = sha256_hex(*record.value);
            const std::string path = quarantine_.keep(record, sha256);
            spdlog::warn("pipeline {}: quarantined the whole record ({} bytes) in {}", name_,
                         record.value->size(), path);
            record.headers.push_back(
                {"kbridge.original.size", std::to_string(record.value->size())});
            record.headers.push_back({"kbridge.sha256", sha256});
            record.headers.push_back({"kbridge.quarantine", path});
            record.value = record.value->substr(0, kQuarantinePreviewBytes);
        } catch (const std::exception& e) {
            fail(batch,
                 "record from " + source_->describe() + " (" + describe_record(record) +
                     ") is too large to dead-letter, and quarantining it failed: " + e.what());
            return false;
        }
    }
    Rejection again;
    if (dead_letter_->send(record, nullptr, batch, again)) {
        ++dead_letters_in_flight_;
        return true;
    }
    fail(batch, "dead letter " + dead_letter_->describe() + " refused a record (" +
                    describe_record(record) + "): " + again.detail);
    return false;
}

bool PipelineRunner::settle_dead_letters() {
    const auto since = std::chrono::steady_clock::now();
    bool told = false;
    while (dead_letters_in_flight_ > 0 && !fatal_) {
        if (!told && std::chrono::steady_clock::now() - since > std::chrono::seconds(1)) {
            spdlog::warn(
                "pipeline {}: waiting for {} to take {} refused record(s) before "
                "committing past them",
                name_, dead_letter_->describe(), dead_letters_in_flight_);
            told = true;
        }
        beat();
        dead_letter_->poll(milliseconds(100));
    }
    return !fatal_;
}

void PipelineRunner::fail(BatchState* batch, const std::string& error) {
    stop_batch(batch, error);
    --batch->pending;
}

void PipelineRunner::fail_sent(BatchState* batch, const std::string& error) {
    batch->failed_after_send = true;
    fail(batch, error);
}

void PipelineRunner::stop_batch(BatchState* batch, const std::string& error) {
    if (!fatal_)
        log_event(spdlog::level::err,
                  {log_field("event", "pipeline_failed"), log_field("error_class", "fatal")},
                  "pipeline " + name_ + ": " + error);
    fatal_ = true;
    batch->failed = true;
}

void PipelineRunner::delivered(BatchState* batch) {
    --batch->pending;
    ++stats_.delivered;
}

void PipelineRunner::abandoned(BatchState* batch) {
    output_closed_ = true;
    if (!batch) return;  // found closed while idle
    --batch->pending;
    batch->failed = batch->failed_after_send = true;
}

void PipelineRunner::filtered(BatchState* batch) {
    --batch->pending;
    ++stats_.filtered;
}

void PipelineRunner::rejected(BatchState* batch, Record record, const Rejection& why) {
    if (!dead_letter(batch, std::move(record), why)) batch->failed_after_send = true;
}

void PipelineRunner::failed(BatchState* batch, const std::string& error) {
    fail_sent(batch, error);
}

void PipelineRunner::rejected_earlier(Record record, const Rejection& why) {
    ++earlier_.pending;
    dead_letter(&earlier_, std::move(record), why);
}

void PipelineRunner::DeadLetterListener::rejected_earlier(Record, const Rejection& why) {
    // A dead letter has no dead letter of its own to send such a record to.
    runner_.stop_batch(&runner_.earlier_, "dead letter " + runner_.dead_letter_->describe() +
                                              " holds a record refused earlier: " + why.detail);
}

void PipelineRunner::DeadLetterListener::delivered(BatchState* batch) {
    --runner_.dead_letters_in_flight_;
    --batch->pending;
    ++runner_.stats_.dead_lettered;
}

void PipelineRunner::DeadLetterListener::rejected(BatchState* batch, Record, const Rejection& why) {
    --runner_.dead_letters_in_flight_;
    runner_.fail_sent(batch, "dead letter " + runner_.dead_letter_->describe() +
                                 " rejected a record: " + why.detail);
}

void PipelineRunner::DeadLetterListener::failed(BatchState* batch, const std::string& error) {
    --runner_.dead_letters_in_flight_;
    runner_.fail_sent(batch, "dead letter: " + error);
}

void PipelineRunner::poll(milliseconds wait) {
    sink_->poll(wait);
    if (dead_letter_) dead_letter_->poll(milliseconds(0));
    ack_completed();
}

void PipelineRunner::ack_completed() {
    while (!batches_.empty() && batches_.front()->pending == 0) {
        // Batches complete out of order (partitions), but sources need acks in read order.
        BatchState& front = *batches_.front();
        if (front.failed) {
            // Stopped at a record: what was delivered before it is acknowledged, once, and
            // nothing after it.
            const auto ack = std::move(front.ack);
            front.ack = nullptr;
            if (ack && front.stopped_at && *front.stopped_at > 0 && !front.failed_after_send) {
                try {
                    ack(*front.stopped_at);
                } catch (const std::exception& e) {
                    spdlog::warn(
                        "pipeline {}: acknowledging the records before the one it "
                        "stopped at to {}: {}; they will be read again",
                        name_, source_->describe(), e.what());
                }
            }
            break;
        }
        try {
            if (front.ack) front.ack(front.size);
            observe_latency(front.read_ms);
            stats_.last_success_unix_ms = unix_ms();
        } catch (const std::exception& e) {
            // Lost the source in follow mode: the run loop reconnects and reads them again.
            if (!settings_.once && !source_->reachable()) throw;
            // Not acknowledged: the records stay in the source and are sent again next run.
            stop_batch(&front,
                       std::string("acknowledging to ") + source_->describe() + ": " + e.what());
            return;
        }
        batches_.pop_front();
    }
    in_flight_ = 0;
    for (const auto& b : batches_) in_flight_ += b->pending;
}

void PipelineRunner::drain() {
    // Every accepted record gets a report (librdkafka's message.timeout.ms bounds the wait).
    try {
        // At least once: sinks settle what an earlier run left them.
        if (sink_connected_ && (!dead_letter_ || dead_letter_connected_)) poll(milliseconds(0));
        while (records_pending()) {
            beat();
            poll(milliseconds(100));
            if (settings_.progress) show_progress(false);
        }
        ack_completed();
        if (sink_connected_) sink_->finish(fatal_);
    } catch (const std::exception& e) {
        log_event(spdlog::level::err,
                  {log_field("event", "pipeline_failed"), log_field("error_class", "fatal")},
                  "pipeline " + name_ + ": while draining: " + e.what());
        fatal_ = true;
    }
}

void PipelineRunner::show_progress(bool final_line) {
    const auto now = std::chrono::steady_clock::now();
    if (!final_line && now - last_progress_ < milliseconds(250)) return;
    last_progress_ = now;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    const uint64_t done = stats_.delivered + stats_.dead_lettered;
    const double rate = seconds > 0 ? done / seconds : 0;
    if (total_ && *total_ > 0) {
        // The total may be an estimate (PostgreSQL's reltuples): never show less than done.
        const uint64_t total = std::max<uint64_t>(*total_, done);
        const long eta = rate > 0 ? static_cast<long>((total - done) / rate) : 0;
        std::fprintf(stderr, "\r\033[K%s: %llu/%llu (%.0f%%) %.0f records/s, ETA %ld:%02ld",
                     name_.c_str(), static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(total), 100.0 * done / total, rate, eta / 60,
                     eta % 60);
    } else {
        std::fprintf(stderr, "\r\033[K%s: %llu records, %.0f records/s", name_.c_str(),
                     static_cast<unsigned long long>(done), rate);
    }
    if (final_line) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
}

}  // namespace kbridge
