#include <gtest/gtest.h>

#include "connectors/redis/client.h"

namespace kbridge {
namespace {

TEST(RedisUrl, ParsesHostPortDbAndMasksThePassword) {
    const RedisUrl u = parse_redis_url("redis://app:s3cret@cache.local:6380/2");
    EXPECT_EQ(u.user, "app");
    EXPECT_EQ(u.password, "s3cret");
    EXPECT_EQ(u.host, "cache.local");
    EXPECT_EQ(u.port, 6380);
    EXPECT_EQ(u.db, 2);
    EXPECT_EQ(u.redacted, "redis://app:***@cache.local:6380/2");
}

TEST(RedisUrl, PasswordOnlyAndDefaults) {
    const RedisUrl u = parse_redis_url("redis://:pw@localhost");
    EXPECT_EQ(u.password, "pw");
    EXPECT_EQ(u.port, 6379);
    EXPECT_EQ(u.db, 0);
    EXPECT_EQ(u.redacted.find("pw"), std::string::npos);
}

TEST(RedisUrl, UnixSocketAndErrors) {
    EXPECT_EQ(parse_redis_url("unix:///run/redis.sock").unix_path, "/run/redis.sock");
    EXPECT_THROW(parse_redis_url("http://x"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("unix://"), std::invalid_argument);
}

}  // namespace
}  // namespace kbridge
