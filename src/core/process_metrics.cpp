#include "core/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#ifndef KBRIDGE_COMMIT
#define KBRIDGE_COMMIT "unknown"
#endif

namespace kbridge {
namespace {

// The fields of /proc/self/stat after the command name (which may hold spaces), so that
// fields[0] is field 3 of proc(5), "state".
std::vector<std::string> own_stat_fields() {
    std::ifstream in("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> fields;
    const auto end_of_name = text.rfind(')');
    if (end_of_name == std::string::npos) return fields;
    std::istringstream rest(text.substr(end_of_name + 1));
    for (std::string field; rest >> field;) fields.push_back(field);
    return fields;
}

// Seconds since the epoch the system booted (/proc/stat's btime); 0 when unknown.
long long boot_time() {
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("btime ", 0) == 0) return std::stoll(line.substr(6));
    return 0;
}

long open_fds() {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    long n = 0;
    while (const dirent* entry = readdir(dir))
        if (entry->d_name[0] != '.') ++n;
    closedir(dir);
    return n - 1;  // the directory stream's own descriptor
}

void add(std::string& out, const char* name, const char* type, const char* help,
         const std::string& value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + value + "\n";
}

std::string number(double value) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
}

}  // namespace

const char* build_commit() {
    return KBRIDGE_COMMIT;
}

std::string build_info_text() {
    return "# HELP kbridge_build_info The version and git commit of the running binary.\n"
           "# TYPE kbridge_build_info gauge\n"
           "kbridge_build_info{version=\"" KBRIDGE_VERSION "\",commit=\"" +
           std::string(build_commit()) + "\"} 1\n";
}

std::string process_metrics_text() {
    std::string out;
    const auto stat = own_stat_fields();
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const long page = sysconf(_SC_PAGESIZE);
    // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24; fields[0] is field 3.
    if (stat.size() > 21 && ticks > 0) {
        add(out, "process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.",
            number((std::stod(stat[11]) + std::stod(stat[12])) / ticks));
        if (const long long boot = boot_time())
            add(out, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.",
                number(static_cast<double>(boot) + std::stod(stat[19]) / ticks));
        add(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
            stat[20]);
        add(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
            std::to_string(std::stoll(stat[21]) * page));
    }
    if (const long fds = open_fds(); fds >= 0)
        add(out, "process_open_fds", "gauge", "Number of open file descriptors.",
            std::to_string(fds));
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        add(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
            std::to_string(limit.rlim_cur));
    return out;
}

}  // namespace kbridge
