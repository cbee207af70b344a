#pragma once
#include <atomic>

namespace kbridge {

// Set by SIGINT/SIGTERM: stop reading, deliver what is in flight, acknowledge, exit. A second
// signal exits at once (nothing is lost: unacknowledged records stay in their source).
// stop_requested() is also set for a while by a reload: every wait watches it, so the running
// pipelines stop as on SIGTERM, and resume_after_reload() clears it again.
const std::atomic<bool>& stop_requested();
void install_stop_handlers();
void request_stop();
// SIGINT, SIGTERM or request_stop(): the process is to exit (a reload clears no such request).
bool terminate_requested();

// SIGHUP asks for the pipeline file to be read again; it never ends the process.
void install_reload_handler();
// Whether a SIGHUP came since the last call.
bool take_reload_request();
// Stops the running pipelines for a reload (as SIGTERM would, without exiting).
void stop_for_reload();
// After a reload's pipelines stopped: waits watch a real stop request again.
void resume_after_reload();

}  // namespace kbridge
