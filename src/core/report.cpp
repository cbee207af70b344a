#include "core/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <stdexcept>

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

std::string batch_latency_histogram(const std::vector<std::unique_ptr<PipelineRunner>>& runners) {
    std::string out =
        "# HELP kbridge_batch_latency_seconds Seconds from reading a batch to acknowledging it "
        "at the source.\n# TYPE kbridge_batch_latency_seconds histogram\n";
    for (const auto& r : runners) {
        const PipelineStats& s = r->stats();
        const std::string pipeline = "pipeline=\"" + escaped(r->name()) + "\"";
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
    struct Metric {
        const char* name;
        const char* help;
        uint64_t (*value)(const PipelineStats&);
    };
    static const Metric kCounters[] = {
        {"kbridge_records_read_total", "Records read from the pipeline's source.",
         [](const PipelineStats& s) -> uint64_t { return s.read; }},
        {"kbridge_records_written_total", "Records the sink made durable.",
         [](const PipelineStats& s) -> uint64_t { return s.delivered; }},
        {"kbridge_records_dead_lettered_total", "Records sent to the dead-letter sink.",
         [](const PipelineStats& s) -> uint64_t { return s.dead_lettered; }},
        {"kbridge_records_retried_total", "Records written again after a transient error.",
         [](const PipelineStats& s) -> uint64_t { return s.retried; }},
        {"kbridge_reconnects_total",
         "Follow mode: times an endpoint was found unreachable and connected to again.",
         [](const PipelineStats& s) -> uint64_t { return s.reconnects; }},
    };
    std::string out;
    for (const auto& m : kCounters) {
        out += std::string("# HELP ") + m.name + " " + m.help + "\n# TYPE " + m.name + " counter\n";
        for (const auto& r : runners)
            out += std::string(m.name) + "{pipeline=\"" + escaped(r->name()) + "\"} " +
                   std::to_string(m.value(r->stats())) + "\n";
    }
    out +=
        "# HELP kbridge_run_seconds Seconds the pipeline has run.\n# TYPE kbridge_run_seconds "
        "gauge\n";
    for (const auto& r : runners) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", r->elapsed_seconds());
        out += "kbridge_run_seconds{pipeline=\"" + escaped(r->name()) + "\"} " + seconds + "\n";
    }
    out +=
        "# HELP kbridge_connected 1 while every endpoint of the pipeline is connected.\n# TYPE "
        "kbridge_connected gauge\n";
    for (const auto& r : runners)
        out += "kbridge_connected{pipeline=\"" + escaped(r->name()) + "\"} " +
               (r->stats().connected ? "1" : "0") + "\n";
    out +=
        "# HELP kbridge_source_lag_records Records waiting in the source (list length, consumer "
        "lag, rows not yet exported).\n# TYPE kbridge_source_lag_records gauge\n";
    for (const auto& r : runners) {
        const int64_t lag = r->stats().lag;
        if (lag >= 0)
            out += "kbridge_source_lag_records{pipeline=\"" + escaped(r->name()) + "\"} " +
                   std::to_string(lag) + "\n";
    }
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
                      "\"seconds\":%.3f,"
                      "\"records_per_second\":%.0f,\"exit_code\":%d}",
                      i ? "," : "", escaped(runners[i]->name()).c_str(),
                      static_cast<unsigned long long>(s.read.load()),
                      static_cast<unsigned long long>(s.delivered.load()),
                      static_cast<unsigned long long>(s.dead_lettered.load()), seconds,
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
