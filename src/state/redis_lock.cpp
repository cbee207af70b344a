#include "state/redis_lock.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <ctime>
#include <random>

#include "core/shutdown.h"
#include "state/lock.h"

namespace kbridge {
namespace {

// Only the holder's token may extend or delete the key.
const char* kRenew =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "end return 0";
const char* kRelease =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

std::string random_token() {
    std::random_device device;
    char text[33];
    for (int i = 0; i < 32; i += 8) std::snprintf(text + i, 9, "%08x", device());
    return text;
}

}  // namespace

RedisLock::RedisLock(const RedisUrl& url, const std::string& pipeline,
                     std::chrono::milliseconds ttl, std::chrono::milliseconds timeout)
    : client_(url, timeout), key_("kbridge:lock:" + pipeline), ttl_(ttl) {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    char since[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    token_ =
        random_token() + " pid " + std::to_string(getpid()) + " on " + host + " since " + since;
    client_.route(key_);
    client_.connect();
    const RedisReply set =
        client_.command({"SET", key_, token_, "NX", "PX", std::to_string(ttl_.count())});
    if (set->type == REDIS_REPLY_NIL) {
        const RedisReply holder = client_.command({"GET", key_});
        std::string who = holder->type == REDIS_REPLY_STRING ? std::string(holder->str, holder->len)
                                                             : "another run";
        if (who.size() > 33) who = who.substr(33);  // past the token
        throw LockHeld("pipeline " + pipeline + " is already running (" + who + "; lock " + key_ +
                       " in " + url.redacted + ")");
    }
    renewer_ = std::thread([this] { renew(); });
}

RedisLock::~RedisLock() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    try {
        client_.command({"EVAL", kRelease, "1", key_, token_});
    } catch (const std::exception& e) {
        spdlog::warn("lock {}: not released ({}); it expires in {} ms", key_, e.what(),
                     ttl_.count());
    }
}

void RedisLock::renew() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, ttl_ / 3, [this] { return stop_; })) {
        try {
            if (client_.command({"EVAL", kRenew, "1", key_, token_, std::to_string(ttl_.count())})
                    ->integer == 1)
                continue;
            spdlog::error(
                "lock {}: lost (expired or taken over); stopping so that one run holds the "
                "pipeline",
                key_);
        } catch (const std::exception& e) {
            if (!client_.connected()) {
                try {
                    client_.connect();
                    continue;  // renewed at the next turn, still within the ttl
                } catch (const std::exception&) {
                }
            }
            spdlog::error("lock {}: cannot renew ({}); stopping", key_, e.what());
        }
        lost_ = true;
        request_stop();
        return;
    }
}

}  // namespace kbridge
