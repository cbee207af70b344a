#include <gtest/gtest.h>

#include "connectors/redis/cluster.h"
#include "connectors/redis/list_source.h"
#include "connectors/redis/stream_source.h"

namespace kbridge {
namespace {

TEST(ClusterSlot, MatchesRedisForPlainKeys) {
    EXPECT_EQ(cluster_slot("123456789"), 0x31C3 % 16384);  // the CRC16-XMODEM check value
    EXPECT_EQ(cluster_slot("foo"), 12182);
    EXPECT_EQ(cluster_slot("bar"), 5061);
    EXPECT_EQ(cluster_slot("hello"), 866);
}

TEST(ClusterSlot, HashTagsFollowTheSpec) {
    EXPECT_EQ(cluster_slot("{user1000}.following"), cluster_slot("user1000"));
    EXPECT_EQ(cluster_slot("foo{}{bar}"), cluster_slot(std::string("foo{}{bar}")));
    EXPECT_NE(cluster_slot("foo{}{bar}"), cluster_slot("bar"));
    EXPECT_EQ(cluster_slot("foo{{bar}}zap"), cluster_slot("{bar"));
    EXPECT_EQ(cluster_slot("foo{bar}{zap}"), cluster_slot("bar"));
    EXPECT_TRUE(has_hash_tag("{jobs}:inflight"));
    EXPECT_FALSE(has_hash_tag("jobs{}"));
    EXPECT_FALSE(has_hash_tag("jobs{"));
}

TEST(ClusterRedirection, ParsesMovedAskAndPauses) {
    auto moved = parse_redirection("MOVED 3999 127.0.0.1:6381");
    ASSERT_TRUE(moved);
    EXPECT_EQ(moved->kind, Redirection::Moved);
    EXPECT_EQ(moved->to.text(), "127.0.0.1:6381");
    auto ask = parse_redirection("ASK 3999 [::1]:7002");
    ASSERT_TRUE(ask);
    EXPECT_EQ(ask->kind, Redirection::Ask);
    EXPECT_EQ(ask->to.host, "::1");
    EXPECT_EQ(ask->to.port, 7002);
    EXPECT_EQ(parse_redirection("TRYAGAIN Multiple keys request during rehashing of slot")->kind,
              Redirection::TryAgain);
    EXPECT_EQ(parse_redirection("CLUSTERDOWN The cluster is down")->kind, Redirection::TryAgain);
    EXPECT_FALSE(parse_redirection("ERR wrong number of arguments"));
    EXPECT_FALSE(parse_redirection("MOVED 1 nohostport"));
}

TEST(StreamId, ComparesInStreamOrder) {
    StreamId a, b;
    ASSERT_TRUE(parse_stream_id("1700000000000-5", a));
    ASSERT_TRUE(parse_stream_id("1700000000000-12", b));
    EXPECT_TRUE(a < b);
    ASSERT_TRUE(parse_stream_id("1700000000001", b));
    EXPECT_TRUE(a < b);
    EXPECT_FALSE(parse_stream_id("12-x", a));
    EXPECT_FALSE(parse_stream_id("", a));
}

}  // namespace
}  // namespace kbridge

namespace kbridge {
namespace {

TEST(RedisClusterUrl, SeveralNodesMakeAClusterUrl) {
    const RedisUrl url = parse_redis_url("redis://u:secret@n1:7000,[::1]:7001,n3/0");
    EXPECT_TRUE(url.cluster);
    ASSERT_EQ(url.nodes.size(), 3u);
    EXPECT_EQ(url.nodes[0].text(), "n1:7000");
    EXPECT_EQ(url.nodes[1].host, "::1");
    EXPECT_EQ(url.nodes[2].text(), "n3:6379");
    EXPECT_EQ(url.redacted, "redis://u:***@n1:7000,[::1]:7001,n3:6379/0");
    EXPECT_FALSE(parse_redis_url("redis://n1:7000/0").cluster);
}

TEST(RedisClusterUrl, AClusterHasOnlyDatabaseZero) {
    try {
        parse_redis_url("redis://n1:7000,n2:7001/3");
        FAIL() << "a Cluster URL with database 3 was taken";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("only database 0"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_redis_url("redis://n1:7000,:x/0"), std::invalid_argument);
}

}  // namespace
}  // namespace kbridge
