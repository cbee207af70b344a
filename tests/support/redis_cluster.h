#pragma once
// A real three-node Redis Cluster for integration tests (redis-server --cluster-enabled yes,
// joined with redis-cli --cluster create), on free loopback ports in a temp dir.
#include <memory>
#include <string>
#include <vector>

#include "connectors/redis/client.h"
#include "support/process.h"

namespace kbridge::test {

class RedisClusterServers {
  public:
    explicit RedisClusterServers(const TempDir& dir, int nodes = 3);
    // redis://127.0.0.1:<first>,127.0.0.1:<second>/0
    std::string url() const;
    const std::vector<int>& ports() const { return ports_; }
    // A client for the slot of `key` (it follows redirections like kbridge does).
    RedisClient& client_for(const std::string& key);
    // The port of the node that serves `key`'s slot now.
    int owner_port(const std::string& key);
    // A name `prefix<n>` whose slot is served by the node at `port`.
    std::string name_on(const std::string& prefix, int port);
    // Moves `key`'s slot to the node at `to` the way redis-cli --cluster reshard does: IMPORTING
    // and MIGRATING, then MIGRATE key by key (`pause_ms` between keys, so that clients meet the
    // ASK and TRYAGAIN window; `hold_ms` before the first), then SETSLOT NODE on every node.
    void migrate_slot_of(const std::string& key, int to, int pause_ms = 0, int hold_ms = 0);

  private:
    RedisClient& node(int port);
    std::string node_id(int port);

    std::string dir_;
    std::vector<int> ports_;
    std::vector<std::unique_ptr<Process>> processes_;
    std::vector<std::unique_ptr<RedisClient>> nodes_;  // plain clients, one per node
    std::vector<std::pair<std::string, std::unique_ptr<RedisClient>>> routed_;
};

}  // namespace kbridge::test
