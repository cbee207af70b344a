#pragma once
// What a run did, for machines: Prometheus text (node_exporter's textfile collector reads it
// from --metrics-file) and a JSON summary (--stats-json). Files are replaced atomically.
#include <memory>
#include <string>
#include <vector>

#include "core/runner.h"

namespace kbridge {

std::string prometheus_text(const std::vector<std::unique_ptr<PipelineRunner>>& runners);
std::string stats_json(const std::vector<std::unique_ptr<PipelineRunner>>& runners,
                       const std::vector<int>& exit_codes);
// Writes `text` to `path` by way of a temporary file and a rename; throws naming the path.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace kbridge
