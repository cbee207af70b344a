#pragma once
#include <string>

namespace kbridge {

// Logs go to stderr as text or as one JSON object per line (journald, ELK). Throws
// std::invalid_argument on an unknown level or format.
void setup_logging(const std::string& level, const std::string& format);
bool json_logs();

}  // namespace kbridge
