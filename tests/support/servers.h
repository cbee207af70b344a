#pragma once
// Real servers for integration tests, on free loopback ports in temp dirs.
#include <memory>
#include <string>
#include <vector>

#include "connectors/redis/client.h"
#include "support/process.h"

namespace kbridge::test {

class RedisServer {
  public:
    explicit RedisServer(const TempDir& dir);
    int port() const { return port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
    RedisClient& client() { return client_; }
    pid_t pid() const { return process_->pid(); }  // to stop (SIGSTOP) and resume it
    void push(const std::string& key, const std::vector<std::string>& values);
    long long llen(const std::string& key);
    std::vector<std::string> lrange(const std::string& key);
    // An outage: SHUTDOWN SAVE, then a server on the same port loading what was saved.
    void stop();
    void start();

  private:
    std::string dir_;
    int port_;
    std::unique_ptr<Process> process_;
    RedisClient client_;
};

}  // namespace kbridge::test
