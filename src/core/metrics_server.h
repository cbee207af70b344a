#pragma once
// --metrics-address / --metrics-port: a small HTTP server on its own thread answering GET (and
// HEAD) /metrics (Prometheus text, live) and /health (200 while every pipeline is connected and
// its loop turns, else 503).
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runner.h"

namespace kbridge {

struct ListenAddress {
    std::string host;  // empty: every interface
    int port = 0;
};

// "HOST:PORT", "[IPv6]:PORT" or ":PORT" (every interface); throws std::invalid_argument saying
// what is wrong.
ListenAddress parse_listen_address(const std::string& text);

// The /health answer: true when healthy; `body` gets a line per pipeline.
bool pipelines_healthy(const std::vector<std::unique_ptr<PipelineRunner>>& runners,
                       std::string& body);

class MetricsServer {
  public:
    // What the server answers, called from its thread.
    struct Pages {
        std::function<std::string()> metrics;
        std::function<bool(std::string& body)> health;
    };
    // Binds at once (throws naming the address); serves until destroyed.
    MetricsServer(const ListenAddress& address, Pages pages);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

  private:
    void serve();
    void answer(int client);

    Pages pages_;
    int listener_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace kbridge
