#include "core/shutdown.h"

#include <signal.h>
#include <unistd.h>

namespace kbridge {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
    if (g_stop.exchange(true)) _exit(130);
}

}  // namespace

const std::atomic<bool>& stop_requested() { return g_stop; }

void request_stop() { g_stop = true; }

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

}  // namespace kbridge
