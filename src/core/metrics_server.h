#pragma once
// --metrics-port: a small HTTP server on its own thread answering GET /metrics (Prometheus text,
// live) and GET /health (200 while every pipeline is connected and its loop turns, else 503).
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runner.h"

namespace kbridge {

class MetricsServer {
  public:
    // Binds at once (throws naming the port); serves until destroyed.
    MetricsServer(int port, const std::vector<std::unique_ptr<PipelineRunner>>& runners);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

  private:
    void serve();
    void answer(int client);

    const std::vector<std::unique_ptr<PipelineRunner>>& runners_;
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace kbridge
