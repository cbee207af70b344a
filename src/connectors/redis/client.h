#pragma once
// A small RAII client over hiredis: connect from a redis:// or unix:// URL, run commands, get
// replies that free themselves.
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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
    // The URL with any password masked, for logs and errors.
    std::string redacted;
};

// Throws std::invalid_argument on a malformed URL.
RedisUrl parse_redis_url(const std::string& url);

class RedisError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class RedisClient {
  public:
    explicit RedisClient(RedisUrl url) : url_(std::move(url)) {}
    void connect(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Runs one command (arguments binary-safe) and returns its reply, after checking the replies
    // of any commands sent before it. Throws RedisError on I/O errors and on error replies.
    RedisReply command(const std::vector<std::string>& args);
    // Pipelining: send() queues a command and writes it out without waiting; reply() returns the
    // oldest reply not yet taken.
    void send(const std::vector<std::string>& args);
    RedisReply reply();
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
    const RedisUrl& url() const { return url_; }

  private:
    void append(const std::vector<std::string>& args);
    [[noreturn]] void broken();

    RedisUrl url_;
    std::unique_ptr<redisContext, RedisContextDeleter> context_;
    size_t pending_ = 0;
};

}  // namespace kbridge
