#pragma once
#include <atomic>

namespace kbridge {

// Set by SIGINT/SIGTERM: stop reading, deliver what is in flight, acknowledge, exit. A second
// signal exits at once (nothing is lost: unacknowledged records stay in their source).
const std::atomic<bool>& stop_requested();
void install_stop_handlers();
void request_stop();

}  // namespace kbridge
