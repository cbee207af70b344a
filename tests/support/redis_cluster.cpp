#include "support/redis_cluster.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace kbridge::test {
namespace {

bool port_free(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
}

// A node needs its port and the cluster bus port 10000 above it.
int free_node_port() {
    for (;;) {
        const int port = free_port();
        if (port < 55000 && port_free(port + 10000)) return port;
    }
}

}  // namespace

RedisClusterServers::RedisClusterServers(const TempDir& dir, int nodes)
    : dir_(dir.path().string()) {
    std::string addresses;
    for (int i = 0; i < nodes; ++i) {
        const int port = free_node_port();
        ports_.push_back(port);
        const std::string node_dir = dir_ + "/cluster-" + std::to_string(port);
        std::filesystem::create_directories(node_dir);
        processes_.push_back(std::make_unique<Process>(
            std::vector<std::string>{"redis-server", "--port", std::to_string(port), "--bind",
                                     "127.0.0.1", "--cluster-enabled", "yes",
                                     "--cluster-config-file", "nodes.conf", "--save", "",
                                     "--appendonly", "no", "--dir", node_dir},
            node_dir));
        nodes_.push_back(std::make_unique<RedisClient>(
            parse_redis_url("redis://127.0.0.1:" + std::to_string(port) + "/0")));
        addresses += " 127.0.0.1:" + std::to_string(port);
    }
    for (size_t i = 0; i < ports_.size(); ++i) {
        for (int attempt = 0;; ++attempt) {
            try {
                nodes_[i]->connect();
                break;
            } catch (const RedisError&) {
                if (attempt > 200 || !processes_[i]->running())
                    throw std::runtime_error("redis-server (cluster) did not start: " +
                                             processes_[i]->err() + processes_[i]->out());
                std::this_thread::sleep_for(std::chrono::milliseconds(25));
            }
        }
    }
    shell("redis-cli --cluster create" + addresses +
          " --cluster-replicas 0 --cluster-yes > /dev/null 2>&1");
    // Every node must agree the cluster is up before clients are pointed at it.
    for (int attempt = 0;; ++attempt) {
        bool ok = true;
        for (auto& n : nodes_) {
            const RedisReply info = n->command({"CLUSTER", "INFO"});
            ok &= std::string(info->str, info->len).find("cluster_state:ok") != std::string::npos;
        }
        if (ok) break;
        if (attempt > 400) throw std::runtime_error("the Redis Cluster did not come up");
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
}

std::string RedisClusterServers::url() const {
    return "redis://127.0.0.1:" + std::to_string(ports_[0]) +
           ",127.0.0.1:" + std::to_string(ports_[1]) + "/0";
}

RedisClient& RedisClusterServers::node(int port) {
    for (size_t i = 0; i < ports_.size(); ++i)
        if (ports_[i] == port) return *nodes_[i];
    throw std::runtime_error("no cluster node on port " + std::to_string(port));
}

std::string RedisClusterServers::node_id(int port) {
    const RedisReply id = node(port).command({"CLUSTER", "MYID"});
    return std::string(id->str, id->len);
}

RedisClient& RedisClusterServers::client_for(const std::string& key) {
    for (auto& [name, client] : routed_)
        if (name == key) return *client;
    auto client = std::make_unique<RedisClient>(parse_redis_url(url()));
    client->route(key);
    client->connect();
    routed_.emplace_back(key, std::move(client));
    return *routed_.back().second;
}

int RedisClusterServers::owner_port(const std::string& key) {
    const RedisReply slots = nodes_[0]->command({"CLUSTER", "SLOTS"});
    const auto owner = slot_owner(slots.get(), cluster_slot(key));
    if (!owner) throw std::runtime_error("no node serves the slot of " + key);
    return owner->port;
}

std::string RedisClusterServers::name_on(const std::string& prefix, int port) {
    for (int n = 0;; ++n) {
        const std::string name = prefix + std::to_string(n);
        if (owner_port(name) == port) return name;
    }
}

void RedisClusterServers::migrate_slot_of(const std::string& key, int to, int pause_ms,
                                          int hold_ms) {
    const int from = owner_port(key);
    if (from == to) return;
    const std::string slot = std::to_string(cluster_slot(key));
    const std::string from_id = node_id(from), to_id = node_id(to);
    node(to).command({"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id});
    node(from).command({"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id});
    // Commands naming keys that exist and keys that do not now get TRYAGAIN.
    if (hold_ms) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    for (;;) {
        const RedisReply keys = node(from).command({"CLUSTER", "GETKEYSINSLOT", slot, "1"});
        if (keys->elements == 0) break;
        node(from).command({"MIGRATE", "127.0.0.1", std::to_string(to),
                            std::string(keys->element[0]->str, keys->element[0]->len), "0",
                            "10000"});
        if (pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    // The new owner first, as redis-cli does, then the old one and the rest.
    node(to).command({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
    node(from).command({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
    for (const int port : ports_)
        if (port != from && port != to)
            node(port).command({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
}

}  // namespace kbridge::test
