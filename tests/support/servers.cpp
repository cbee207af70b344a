#include "support/servers.h"

#include <thread>

namespace kbridge::test {

RedisServer::RedisServer(const TempDir& dir)
    : dir_(dir.path().string()),
      port_(free_port()),
      client_(parse_redis_url("redis://127.0.0.1:" + std::to_string(port_) + "/0")) {
    start();
}

void RedisServer::start() {
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"redis-server", "--port", std::to_string(port_), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir_},
        dir_);
    for (int attempt = 0;; ++attempt) {
        try {
            client_.connect();
            client_.command({"PING"});
            return;
        } catch (const RedisError&) {
            if (attempt > 200 || !process_->running())
                throw std::runtime_error("redis-server did not start: " + process_->err() +
                                         process_->out());
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
    }
}

void RedisServer::stop() {
    try {
        client_.command({"SHUTDOWN", "SAVE"});
    } catch (const RedisError&) {
        // the server closes the connection instead of answering
    }
    process_->wait();
}

void RedisServer::push(const std::string& key, const std::vector<std::string>& values) {
    for (size_t i = 0; i < values.size(); i += 1000) {
        std::vector<std::string> args{"RPUSH", key};
        for (size_t j = i; j < values.size() && j < i + 1000; ++j) args.push_back(values[j]);
        client_.command(args);
    }
}

long long RedisServer::llen(const std::string& key) {
    return client_.command({"LLEN", key})->integer;
}

std::vector<std::string> RedisServer::lrange(const std::string& key) {
    auto reply = client_.command({"LRANGE", key, "0", "-1"});
    std::vector<std::string> out;
    for (size_t i = 0; i < reply->elements; ++i)
        out.emplace_back(reply->element[i]->str, reply->element[i]->len);
    return out;
}

}  // namespace kbridge::test
