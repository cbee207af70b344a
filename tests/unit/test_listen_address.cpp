#include <gtest/gtest.h>

#include <stdexcept>

#include "core/metrics_server.h"

namespace kbridge {
namespace {

TEST(ListenAddress, TakesHostPortIpv6AndEveryInterface) {
    ListenAddress a = parse_listen_address("127.0.0.1:9464");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9464);
    a = parse_listen_address("[::1]:80");
    EXPECT_EQ(a.host, "::1");
    EXPECT_EQ(a.port, 80);
    a = parse_listen_address(":9100");
    EXPECT_EQ(a.host, "");
    EXPECT_EQ(a.port, 9100);
    a = parse_listen_address("metrics.local:65535");
    EXPECT_EQ(a.host, "metrics.local");
}

TEST(ListenAddress, RefusesWhatIsNoHostPort) {
    for (const char* bad : {"9464", "host:", "host:0", "host:65536", "host:12a", "host:123456"})
        EXPECT_THROW(parse_listen_address(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace kbridge
