#pragma once
// `lock: {redis: URL, ttl: 30s}`: one run per pipeline across hosts (cron on several machines).
// SET key value NX PX ttl with a random token in the value, renewed every ttl/3 while the run
// lasts, released by compare-and-delete; a holder that dies lets go when the ttl runs out.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "connectors/redis/client.h"

namespace kbridge {

class RedisLock {
  public:
    // Throws LockHeld naming the holder, or RedisError when Redis cannot be asked.
    // `timeout`: bounds connecting and every wait for Redis (connect_timeout).
    RedisLock(const RedisUrl& url, const std::string& pipeline, std::chrono::milliseconds ttl,
              std::chrono::milliseconds timeout);
    ~RedisLock();
    // Renewal failed (the key expired or another run took it): the run was asked to stop.
    bool lost() const { return lost_; }
    RedisLock(const RedisLock&) = delete;
    RedisLock& operator=(const RedisLock&) = delete;

  private:
    void renew();

    RedisClient client_;
    std::string key_, token_;
    std::chrono::milliseconds ttl_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::atomic<bool> lost_{false};
    std::thread renewer_;
};

}  // namespace kbridge
