#pragma once
// Prometheus's standard process metrics (the names its client libraries export, read from
// /proc like they do) and kbridge_build_info, for /metrics and --metrics-file.
#include <string>

namespace kbridge {

// The git commit the binary was built from (CMake's KBRIDGE_COMMIT), "unknown" without one.
const char* build_commit();

// kbridge_build_info{version,commit} 1.
std::string build_info_text();

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. Served on /metrics only: in a
// textfile collector's file they would clash with node_exporter's own process metrics.
std::string process_metrics_text();

}  // namespace kbridge
