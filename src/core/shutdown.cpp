#include "core/shutdown.h"

#include <signal.h>
#include <unistd.h>

namespace kbridge {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_terminate{false};
std::atomic<bool> g_reload{false};

void on_signal(int) {
    if (g_terminate.exchange(true)) _exit(130);
    g_stop = true;
}

void on_hangup(int) {
    g_reload = true;
}

}  // namespace

const std::atomic<bool>& stop_requested() {
    return g_stop;
}

void request_stop() {
    g_terminate = true;
    g_stop = true;
}

bool terminate_requested() {
    return g_terminate.load();
}

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

void install_reload_handler() {
    struct sigaction action {};
    action.sa_handler = on_hangup;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &action, nullptr);
}

bool take_reload_request() {
    return g_reload.exchange(false);
}

void stop_for_reload() {
    g_stop = true;
}

void resume_after_reload() {
    // The signal handler sets g_terminate before g_stop: a SIGTERM that lands in between is
    // seen either here or by its own store.
    g_stop = false;
    if (g_terminate.load()) g_stop = true;
}

}  // namespace kbridge
