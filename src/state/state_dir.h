#pragma once
#include <string>

namespace kbridge {

// --state-dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/kbridge, else
// ~/.local/state/kbridge.
std::string resolve_state_dir(const std::string& from_command_line);

}  // namespace kbridge
