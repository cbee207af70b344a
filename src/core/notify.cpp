#include "core/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>

namespace kbridge {

SystemdNotifier::SystemdNotifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket && *socket;
    uint64_t usec = 0;
    // Half the watchdog timeout, as sd_watchdog_enabled(3) advises.
    if (enabled_ && sd_watchdog_enabled(0, &usec) > 0)
        watchdog_interval_ = std::chrono::milliseconds(usec / 2000);
}

void SystemdNotifier::send(const std::string& state) {
    if (enabled_) sd_notify(0, state.c_str());
}

void SystemdNotifier::ready() {
    send("READY=1");
}
void SystemdNotifier::stopping() {
    send("STOPPING=1");
}
void SystemdNotifier::reloading() {
    // Type=notify-reload (systemd 253) wants the monotonic time with it.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    send("RELOADING=1\nMONOTONIC_USEC=" +
         std::to_string(static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000));
}
void SystemdNotifier::status(const std::string& text) {
    send("STATUS=" + text);
}

void SystemdNotifier::watchdog() {
    if (watchdog_interval_.count() > 0) send("WATCHDOG=1");
}

}  // namespace kbridge
