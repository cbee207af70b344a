#pragma once
// Bounded waits on network sockets. Every wait for an endpoint ends by a deadline, and soon
// after a stop is requested (SIGTERM, SIGINT), so that a silent endpoint can neither hang a run
// nor keep it from stopping.
#include <chrono>
#include <string>

#include "config/options.h"

namespace kbridge {

using SteadyClock = std::chrono::steady_clock;

// How long a wait that began before, or goes on after, a stop request may still last: enough
// for a healthy endpoint to answer what is in flight, short enough that a run stops within 5 s.
constexpr std::chrono::milliseconds kStopGrace{1500};

enum class SocketWait { Ready, TimedOut, Stopped };

// Waits until `fd` has one of `events` (POLLIN, POLLOUT) or `deadline` passes. Stopped: a stop
// was requested and kStopGrace has passed since this wait saw it.
SocketWait wait_socket(int fd, short events, SteadyClock::time_point deadline);

// Sleeps up to `pause`, less once a stop is requested; false when it was cut short.
bool sleep_unless_stopped(std::chrono::milliseconds pause);

// A connector's `connect_timeout`, or else the one of its endpoint's defaults block (redis:,
// postgres:), or else 10 s; a ConfigError unless it is positive.
std::chrono::milliseconds connect_timeout_option(const Options& connector, const Options& defaults);

// The same for `query_timeout` (PostgreSQL), 5 min by default.
std::chrono::milliseconds query_timeout_option(const Options& connector, const Options& defaults);

// "10s", "1500ms": a duration as written in the pipeline file.
std::string duration_text(std::chrono::milliseconds duration);

}  // namespace kbridge
