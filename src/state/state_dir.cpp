#include "state/state_dir.h"

#include <cstdlib>

namespace kbridge {

std::string resolve_state_dir(const std::string& from_command_line) {
    if (!from_command_line.empty()) return from_command_line;
    auto env = [](const char* name) {
        const char* value = std::getenv(name);
        return std::string(value ? value : "");
    };
    // systemd lists one path per StateDirectory= entry, colon-separated: the first is ours.
    const std::string systemd = env("STATE_DIRECTORY");
    if (!systemd.empty()) return systemd.substr(0, systemd.find(':'));
    if (!env("XDG_STATE_HOME").empty()) return env("XDG_STATE_HOME") + "/kbridge";
    return (env("HOME").empty() ? std::string(".") : env("HOME")) + "/.local/state/kbridge";
}

}  // namespace kbridge
