#include "core/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "core/process_metrics.h"

namespace kbridge {
namespace {

// Prometheus label values and JSON strings: backslash and quote escaped (pipeline names are
// [A-Za-z0-9_.-]+, but the output must stay well-formed whatever they become).
std::string escaped(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

// The labels of every per-pipeline sample: which pipeline, and the `type:` of its ends.
std::string labels(const PipelineRunner& r) {
    return "pipeline=\"" + escaped(r.name()) + "\",source=\"" + escaped(r.source_type()) +
           "\",sink=\"" + escaped(r.sink_type()) + "\"";
}

std::string batch_latency_histogram(const std::vector<std::unique_ptr<PipelineRunner>>& runners) {
    std::string out =
        "# HELP kbridge_batch_latency_seconds Seconds from reading a batch to acknowledging it "
        "at the source.\n# TYPE kbridge_batch_latency_seconds histogram\n";
    for (const auto& r : runners) {
        const PipelineStats& s = r->stats();
        const std::string pipeline = labels(*r);
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= std::size(PipelineStats::kLatencyBounds); ++i) {
            cumulative += s.latency_buckets[i];
            char bound[32];
            if (i < std::size(PipelineStats::kLatencyBounds))
                std::snprintf(bound, sizeof bound, "%g", PipelineStats::kLatencyBounds[i]);
            else
                std::snprintf(bound, sizeof bound, "+Inf");
            out += "kbridge_batch_latency_seconds_bucket{" + pipeline + ",le=\"" + bound + "\"} " +
                   std::to_string(cumulative) + "\n";
        }
        char sum[32];
        std::snprintf(sum, sizeof sum, "%.6f", s.latency_sum_us / 1e6);
        out += "kbridge_batch_latency_seconds_sum{" + pipeline + "} " + sum + "\n";
        out += "kbridge_batch_latency_seconds_count{" + pipeline + "} " +
               std::to_string(cumulative) + "\n";
    }
    return out;
}

}  // namespace

std::string prometheus_text(const std::vector<std::unique_ptr<PipelineRunner>>& runners) {
    // One family per row: its value per pipeline as text, none to leave the pipeline out.
    struct Family {
        const char* name;
        const char* type;
        const char* help;
        std::optional<std::string> (*value)(const PipelineRunner&);
    };
    static const Family kFamilies[] = {
        {"kbridge_records_read_total", "counter", "Records read from the pipeline's source.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().read);
         }},
        {"kbridge_records_written_total", "counter", "Records the sink made durable.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().delivered);
         }},
        {"kbridge_records_dead_lettered_total", "counter", "Records sent to the dead-letter sink.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().dead_lettered);
         }},
        {"kbridge_records_filtered_total", "counter",
         "Records a transforms filter dropped (acknowledged, not written).",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().filtered);
         }},
        {"kbridge_records_retried_total", "counter",
         "Records written again after a transient error.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().retried);
         }},
        {"kbridge_reconnects_total", "counter",
         "Follow mode: times an endpoint was found unreachable and connected to again.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return std::to_string(r.stats().reconnects);
         }},
        {"kbridge_run_seconds", "gauge", "Seconds the pipeline has run.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             char seconds[32];
             std::snprintf(seconds, sizeof seconds, "%.3f", r.elapsed_seconds());
             return seconds;
         }},
        {"kbridge_connected", "gauge", "1 while every endpoint of the pipeline is connected.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             return r.stats().connected ? "1" : "0";
         }},
        {"kbridge_source_lag_records", "gauge",
         "Records waiting in the source (list length, consumer lag, rows not yet exported).",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             const int64_t lag = r.stats().lag;
             if (lag < 0) return std::nullopt;  // unknown
             return std::to_string(lag);
         }},
        {"kbridge_source_pending_records", "gauge",
         "Records handed out and not yet acknowledged (a Redis stream group's pending entries).",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             const int64_t pending = r.stats().pending;
             if (pending < 0) return std::nullopt;
             return std::to_string(pending);
         }},
        {"kbridge_source_claimed_total", "counter",
         "Records taken over from workers that stopped acknowledging them (XAUTOCLAIM).",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             const int64_t claimed = r.stats().claimed;
             if (claimed < 0) return std::nullopt;
             return std::to_string(claimed);
         }},
        {"kbridge_source_blocked_seconds", "gauge",
         "Seconds the source has been kept from records that wait (a PostgreSQL transaction "
         "holding an incremental export's horizon); 0 when not held up.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             const int64_t ms = r.stats().blocked_ms;
             if (ms < 0) return std::nullopt;  // unknown, or a source that cannot tell
             char seconds[32];
             std::snprintf(seconds, sizeof seconds, "%.3f", ms / 1000.0);
             return seconds;
         }},
        {"kbridge_last_success_timestamp_seconds", "gauge",
         "Unix time the pipeline last acknowledged a batch or found its source caught up with "
         "nothing in flight.",
         [](const PipelineRunner& r) -> std::optional<std::string> {
             const int64_t ms = r.stats().last_success_unix_ms;
             if (ms <= 0) return std::nullopt;  // not yet
             char seconds[32];
             std::snprintf(seconds, sizeof seconds, "%.3f", ms / 1000.0);
             return seconds;
         }},
    };
    std::string out = build_info_text();
    for (const auto& f : kFamilies) {
        out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " " +
               f.type + "\n";
        for (const auto& r : runners)
            if (const auto value = f.value(*r))
                out += std::string(f.name) + "{" + labels(*r) + "} " + *value + "\n";
    }
    // Gauges a source keeps of its own (postgres_cdc: kbridge_cdc_*), one family per name.
    std::map<std::string, std::string> source_families;
    for (const auto& r : runners) {
        std::lock_guard<std::mutex> lock(r->stats().source_gauges_mutex);
        for (const auto& [name, value] : r->stats().source_gauges) {
            char number[32];
            std::snprintf(number, sizeof number, "%.3f", value);
            source_families[name] +=
                name + "{pipeline=\"" + escaped(r->name()) + "\"} " + number + "\n";
        }
    }
    for (const auto& [name, lines] : source_families) out += "# TYPE " + name + " gauge\n" + lines;
    out += batch_latency_histogram(runners);
    return out;
}

std::string stats_json(const std::vector<std::unique_ptr<PipelineRunner>>& runners,
                       const std::vector<int>& exit_codes) {
    std::string out = "{\"pipelines\":[";
    for (size_t i = 0; i < runners.size(); ++i) {
        const PipelineStats& s = runners[i]->stats();
        const double seconds = runners[i]->elapsed_seconds();
        char line[512];
        std::snprintf(line, sizeof line,
                      "%s{\"name\":\"%s\",\"read\":%llu,\"written\":%llu,\"dead_lettered\":%llu,"
                      "\"filtered\":%llu,\"seconds\":%.3f,"
                      "\"records_per_second\":%.0f,\"exit_code\":%d}",
                      i ? "," : "", escaped(runners[i]->name()).c_str(),
                      static_cast<unsigned long long>(s.read.load()),
                      static_cast<unsigned long long>(s.delivered.load()),
                      static_cast<unsigned long long>(s.dead_lettered.load()),
                      static_cast<unsigned long long>(s.filtered.load()), seconds,
                      seconds > 0 ? (s.delivered + s.dead_lettered) / seconds : 0.0,
                      i < exit_codes.size() ? exit_codes[i] : -1);
        out += line;
    }
    return out + "]}\n";
}

void write_file_atomically(const std::string& path, const std::string& text) {
    const std::string temporary = path + ".tmp." + std::to_string(getpid());
    std::FILE* f = std::fopen(temporary.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
        const std::string error = std::strerror(errno);
        std::remove(temporary.c_str());
        throw std::runtime_error("cannot write " + path + ": " + error);
    }
}

}  // namespace kbridge
