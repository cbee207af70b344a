// mysql:// URLs: parsed without quoting the password in errors, and masked in logs.
#include <gtest/gtest.h>

#include "connectors/mysql/connection.h"
#include "core/secrets.h"

namespace kbridge {
namespace {

TEST(MysqlUrl, UserPasswordHostPortDatabaseAndSocket) {
    const MysqlUrl u = parse_mysql_url("mysql://app:p%40ss%3Aw%2Frd@db1:3307/orders");
    EXPECT_EQ(u.user, "app");
    EXPECT_EQ(u.password, "p@ss:w/rd");
    EXPECT_EQ(u.host, "db1");
    EXPECT_EQ(u.port, 3307u);
    EXPECT_EQ(u.database, "orders");
    const MysqlUrl s = parse_mysql_url("mysql://root@localhost/app?socket=/run/mysqld/mysqld.sock");
    EXPECT_EQ(s.socket, "/run/mysqld/mysqld.sock");
    EXPECT_EQ(s.port, 3306u);
    EXPECT_EQ(s.password, "");
}

TEST(MysqlUrl, MistakesAreRefusedWithoutQuotingThePassword) {
    for (const std::string bad :
         {"postgresql://u:hunter2@h/db", "mysql://u:hunter2@h:99999/db", "mysql://u:hunter2@h",
          "mysql://u:hunter2@h:x/db", "mysql://u:hunter2@h/db?ssl=1"}) {
        try {
            parse_mysql_url(bad);
            ADD_FAILURE() << bad;
        } catch (const std::invalid_argument& e) {
            EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
        }
    }
}

TEST(MysqlUrl, ThePasswordIsMaskedInLogs) {
    EXPECT_EQ(mask_connection_string("mysql://app:hunter2@db1:3306/orders").find("hunter2"),
              std::string::npos);
}

}  // namespace
}  // namespace kbridge
