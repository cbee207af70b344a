#pragma once
// systemd's notify protocol (Type=notify units): READY=1 once the config is read and the locks
// are taken (endpoints may still be unreachable: STATUS= says so), STATUS= with live counts,
// WATCHDOG=1 while WatchdogSec= is set, RELOADING=1 then READY=1 around a SIGHUP reload,
// STOPPING=1 on SIGTERM. Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
#include <chrono>
#include <string>

namespace kbridge {

class SystemdNotifier {
  public:
    SystemdNotifier();
    void ready();
    void stopping();
    void reloading();
    void status(const std::string& text);
    // Pets the watchdog if systemd asked for one; call at least every watchdog_interval().
    void watchdog();
    std::chrono::milliseconds watchdog_interval() const { return watchdog_interval_; }

  private:
    void send(const std::string& state);
    bool enabled_ = false;
    std::chrono::milliseconds watchdog_interval_{0};  // 0: no watchdog
};

}  // namespace kbridge
