#include "connectors/redis/cluster.h"

namespace kbridge {

int cluster_slot(std::string_view key) {
    const size_t open = key.find('{');
    if (open != std::string_view::npos) {
        const size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    uint16_t crc = 0;
    for (const char c : key) {
        crc ^= static_cast<uint16_t>(static_cast<unsigned char>(c) << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<uint16_t>(crc << 1);
    }
    return crc % kClusterSlots;
}

bool has_hash_tag(std::string_view key) {
    const size_t open = key.find('{');
    if (open == std::string_view::npos) return false;
    const size_t close = key.find('}', open + 1);
    return close != std::string_view::npos && close > open + 1;
}

std::optional<NodeAddress> slot_owner(const redisReply* slots, int slot) {
    if (!slots || slots->type != REDIS_REPLY_ARRAY) return std::nullopt;
    for (size_t i = 0; i < slots->elements; ++i) {
        const redisReply* range = slots->element[i];
        // [first, last, [host, port, id...], replicas...]
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
        if (slot < range->element[0]->integer || slot > range->element[1]->integer) continue;
        const redisReply* master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            master->element[0]->type != REDIS_REPLY_STRING)
            return std::nullopt;
        return NodeAddress{std::string(master->element[0]->str, master->element[0]->len),
                           static_cast<int>(master->element[1]->integer)};
    }
    return std::nullopt;
}

std::optional<Redirection> parse_redirection(std::string_view error) {
    if (error.rfind("TRYAGAIN", 0) == 0 || error.rfind("CLUSTERDOWN", 0) == 0)
        return Redirection{Redirection::TryAgain, {}};
    Redirection::Kind kind;
    if (error.rfind("MOVED ", 0) == 0)
        kind = Redirection::Moved;
    else if (error.rfind("ASK ", 0) == 0)
        kind = Redirection::Ask;
    else
        return std::nullopt;
    // MOVED <slot> <host>:<port>
    const size_t space = error.rfind(' ');
    int slot = 0;
    for (const char c : error.substr(error.find(' ') + 1, space - error.find(' ') - 1)) {
        if (c < '0' || c > '9' || slot >= kClusterSlots) return std::nullopt;
        slot = slot * 10 + (c - '0');
    }
    const std::string_view address = error.substr(space + 1);
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= address.size()) return std::nullopt;
    int port = 0;
    for (const char c : address.substr(colon + 1)) {
        if (c < '0' || c > '9' || port > 65535) return std::nullopt;
        port = port * 10 + (c - '0');
    }
    std::string host(address.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return Redirection{kind, {host, port}, slot};
}

}  // namespace kbridge
