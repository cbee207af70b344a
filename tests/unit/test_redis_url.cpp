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

// Found by review after fuzzing: std::stoi's out_of_range escaped (validate aborted), and
// std::regex overflowed the stack on a URL of ~300 KB.
TEST(RedisUrl, HugeNumbersAndHugeUrlsAreRefused) {
    EXPECT_THROW(parse_redis_url("redis://h:99999999999/0"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("redis://h:65536/0"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("redis://h:6379/99999999999"), std::invalid_argument);
    EXPECT_EQ(parse_redis_url("redis://h:65535/7").port, 65535);
    EXPECT_THROW(parse_redis_url("redis://" + std::string(300000, 'a') + ":6379/0"),
                 std::invalid_argument);
}

TEST(RedisUrl, UnixSocketAndErrors) {
    EXPECT_EQ(parse_redis_url("unix:///run/redis.sock").unix_path, "/run/redis.sock");
    EXPECT_THROW(parse_redis_url("http://x"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("unix://"), std::invalid_argument);
}

}  // namespace
}  // namespace kbridge
