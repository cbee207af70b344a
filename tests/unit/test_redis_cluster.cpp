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
