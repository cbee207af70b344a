#pragma once
// The small part of the Redis Cluster protocol kbridge needs: which slot a key hashes to, which
// node serves a slot (CLUSTER SLOTS), and what a redirection (MOVED, ASK) or a pause (TRYAGAIN,
// CLUSTERDOWN) says.
#include <hiredis/hiredis.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kbridge {

constexpr int kClusterSlots = 16384;

// CRC16 (XMODEM) of the key's hash tag (the text between the first '{' and the next '}', when
// not empty) or of the whole key, modulo 16384.
int cluster_slot(std::string_view key);
// Whether `key` names a non-empty hash tag, so keys sharing its prefix share its slot.
bool has_hash_tag(std::string_view key);

struct NodeAddress {
    std::string host;
    int port = 0;
    std::string text() const { return host + ":" + std::to_string(port); }
    bool operator==(const NodeAddress& o) const { return host == o.host && port == o.port; }
};

// From a CLUSTER SLOTS reply: the master serving `slot`; none when no range covers it.
std::optional<NodeAddress> slot_owner(const redisReply* slots, int slot);

struct Redirection {
    enum Kind { Moved, Ask, TryAgain } kind;
    NodeAddress to;  // Moved, Ask
    int slot = -1;   // Moved, Ask
};
// An error reply's text: a redirection or a pause, or none for any other error.
std::optional<Redirection> parse_redirection(std::string_view error);

}  // namespace kbridge
