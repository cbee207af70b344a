#pragma once
// A small RAII client over hiredis: connect from a redis:// or unix:// URL, run commands, get
// replies that free themselves.
#include <hiredis/hiredis.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/options.h"
#include "connectors/redis/cluster.h"

namespace kbridge {

struct RedisReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
struct RedisContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path;
    std::string user;
    std::string password;
    int db = 0;
    // A Redis Cluster, reached through any of these nodes (a URL naming several hosts).
    bool cluster = false;
    std::vector<NodeAddress> nodes;
    // The URL with any password masked, for logs and errors.
    std::string redacted;
};

// Throws std::invalid_argument on a malformed URL.
RedisUrl parse_redis_url(const std::string& url);

// A Redis connector's endpoint: its `url` (else redis.url) and `cluster` (else redis.cluster).
// Throws ConfigError naming the option at fault.
RedisUrl redis_url_option(const Options& connector, const Options& defaults);

// How reply_strings() and reply_items() take a reply apart (client.cpp).
struct RedisReplyCapture;

class RedisError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class RedisClient {
  public:
    // `timeout` bounds connecting (the handshake included) and every wait for an answer: a
    // server silent for that long is taken as unreachable.
    explicit RedisClient(RedisUrl url, std::chrono::milliseconds timeout = std::chrono::seconds(10))
        : url_(std::move(url)), timeout_(timeout) {}
    // Cluster mode: this client serves the slot of `key` (every key it is given must share that
    // slot, e.g. through a hash tag). connect() finds the node that owns the slot; MOVED and ASK
    // are followed and TRYAGAIN waited out, a redirected command running again where it belongs.
    void route(const std::string& key) { slot_ = cluster_slot(key); }
    bool cluster() const { return url_.cluster; }
    void connect();
    // Runs one command (arguments binary-safe) and returns its reply, after checking the replies
    // of any commands sent before it. Throws RedisError on I/O errors and on error replies.
    // `blocks`: how long the command may wait on the server by design (BLMOVE's timeout), which
    // its reply is given on top of the timeout.
    RedisReply command(const std::vector<std::string>& args,
                       std::chrono::milliseconds blocks = std::chrono::milliseconds(0));
    // Pipelining: send() queues a command and writes it out without waiting; reply() returns the
    // oldest reply not yet taken.
    void send(const std::vector<std::string>& args);
    // The same for arguments kept elsewhere (many IDs in one buffer, say), copying none of them.
    void send_views(const std::vector<std::string_view>& args);
    RedisReply reply(std::chrono::milliseconds blocks = std::chrono::milliseconds(0));
    // The oldest reply, error replies included (pipelines that map errors to records).
    RedisReply any_reply();
    bool connected() const { return context_ != nullptr; }
    size_t replies_pending() const { return pending_; }
    // Takes the next reply, an array of strings (e.g. LRANGE's), appending each string to
    // `storage` and its place to `places`, with none of hiredis's per-element allocations.
    struct Place {
        size_t offset;
        size_t size;
    };
    void reply_strings(std::vector<char>& storage, std::vector<Place>& places);
    // One element of a reply taken by reply_items(), in depth-first order.
    struct Item {
        int type;       // REDIS_REPLY_STRING, _STATUS, _ARRAY, _INTEGER or _NIL
        int depth;      // 0: the reply itself; an array's elements are one deeper
        size_t offset;  // a string's first byte in the storage
        long long n;    // a string's size, an array's element count, an integer's value
    };
    // Takes the next reply, arrays nested in any way (e.g. XREADGROUP's), as a flat list of its
    // elements, appending every string to `storage`, again with no per-element allocations.
    void reply_items(std::vector<char>& storage, std::vector<Item>& items,
                     std::chrono::milliseconds blocks = std::chrono::milliseconds(0));
    const RedisUrl& url() const { return url_; }
    std::chrono::milliseconds timeout() const { return timeout_; }

  private:
    void connect_node(const std::string& host, int port);
    // Takes the oldest reply; in cluster mode one that redirects is replaced by the answer of
    // the node it names.
    void* next_reply(std::chrono::milliseconds blocks, const void* placeholder = nullptr);
    RedisReply redirect(const std::vector<std::string>& args, Redirection first);
    RedisClient& node_client(const NodeAddress& at);
    void append(size_t count, const char* const* argv, const size_t* lengths);
    template <typename Args>
    void send_arguments(const Args& args);
    // Reads the next reply with `capture`'s functions; a redisReply when hiredis built one (a
    // top-level value the capture leaves to it, or one a Cluster redirection brought), else null.
    // Throws on an error reply.
    RedisReply read_captured(RedisReplyCapture& capture, std::chrono::milliseconds blocks);
    // The connection is non-blocking: these wait for the socket themselves, each wait bounded
    // by the timeout (renewed whenever bytes move) and by a stop request.
    void await(short events, std::chrono::steady_clock::time_point deadline, const char* doing);
    void write_out(std::chrono::steady_clock::time_point deadline);
    void* read_reply(std::chrono::milliseconds blocks);
    [[noreturn]] void broken();
    [[noreturn]] void broken(const std::string& error);

    RedisUrl url_;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<redisContext, RedisContextDeleter> context_;
    size_t pending_ = 0;
    // Cluster mode.
    int slot_ = -1;
    NodeAddress node_;                           // the node connected to
    std::optional<NodeAddress> moved_to_;        // the slot's new owner, once replies are in
    std::deque<std::vector<std::string>> sent_;  // commands awaiting their replies
    std::map<std::string, std::unique_ptr<RedisClient>> others_;  // redirection targets
};

}  // namespace kbridge
