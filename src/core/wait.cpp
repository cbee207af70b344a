#include "core/wait.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <thread>

#include "core/shutdown.h"

namespace kbridge {

using std::chrono::milliseconds;

SocketWait wait_socket(int fd, short events, SteadyClock::time_point deadline) {
    // Short slices: the stop flag is set by a signal handler, which need not interrupt this
    // thread's poll().
    constexpr milliseconds kSlice(100);
    std::optional<SteadyClock::time_point> stop_seen;
    for (;;) {
        const auto now = SteadyClock::now();
        if (stop_requested().load()) {
            if (!stop_seen) stop_seen = now;
            if (now - *stop_seen >= kStopGrace) return SocketWait::Stopped;
        }
        if (now >= deadline) return SocketWait::TimedOut;
        const auto left =
            std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1);
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min(left, kSlice).count()));
        if (n > 0) return SocketWait::Ready;  // errors and hang-ups too: the next read says which
        if (n < 0 && errno != EINTR) return SocketWait::Ready;
    }
}

bool sleep_unless_stopped(milliseconds pause) {
    const auto until = SteadyClock::now() + pause;
    while (SteadyClock::now() < until) {
        if (stop_requested().load()) return false;
        std::this_thread::sleep_for(std::min(
            milliseconds(50), std::chrono::duration_cast<milliseconds>(until - SteadyClock::now()) +
                                  milliseconds(1)));
    }
    return true;
}

namespace {

milliseconds timeout_option(const Options& connector, const Options& defaults,
                            const std::string& name, milliseconds fallback) {
    const Options& from = connector.has(name) ? connector : defaults;
    const milliseconds timeout = from.has(name) ? from.duration(name) : fallback;
    if (timeout.count() <= 0) throw from.error(name, "must be more than 0");
    return timeout;
}

}  // namespace

milliseconds connect_timeout_option(const Options& connector, const Options& defaults) {
    return timeout_option(connector, defaults, "connect_timeout", std::chrono::seconds(10));
}

milliseconds query_timeout_option(const Options& connector, const Options& defaults) {
    return timeout_option(connector, defaults, "query_timeout", std::chrono::minutes(5));
}

std::string duration_text(milliseconds duration) {
    const auto ms = duration.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace kbridge
