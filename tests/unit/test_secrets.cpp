#include <gtest/gtest.h>

#include "connectors/postgres/conninfo.h"
#include "connectors/redis/client.h"
#include "core/secrets.h"

namespace kbridge {
namespace {

struct MaskCase {
    std::string text;
    std::string masked;
    std::string password;  // what parsing finds; "" for none
};

// Each form: what logs show, and the password the connection uses.
const std::vector<MaskCase> kMaskCases = {
    {"postgresql://app:s3cret@db:5432/orders", "postgresql://app:***@db:5432/orders", "s3cret"},
    {"postgresql://secretuser:Wrong@Secret6@127.0.0.1:5601/postgres",
     "postgresql://secretuser:***@127.0.0.1:5601/postgres", "Wrong@Secret6"},
    {"postgresql://secretuser:pa:ss/wo#rd@127.0.0.1:5441/postgres",
     "postgresql://secretuser:***@127.0.0.1:5441/postgres", "pa:ss/wo#rd"},
    {"postgres://u:p%40ss%3Aw%2Fo%23rd%25@h/db", "postgres://u:***@h/db", "p@ss:w/o#rd%"},
    {"postgresql://u:pa?ss@h/db?application_name=a", "postgresql://u:***@h/db?application_name=a",
     "pa?ss"},
    {"postgresql://u:p@w@h/db?application_name=x@y", "postgresql://u:***@h/db?application_name=x@y",
     "p@w"},
    {"postgresql://h1:5432,[::1]:5433/db?user=u&password=q%20w&sslmode=require",
     "postgresql://h1:5432,[::1]:5433/db?user=u&password=***&sslmode=require", ""},
    {"postgresql://u@h/db?sslpassword=keypw", "postgresql://u@h/db?sslpassword=***", ""},
    {"postgresql:///db?host=/tmp", "postgresql:///db?host=/tmp", ""},
    {"host=h port=5432 user=u password=plain dbname=d",
     "host=h port=5432 user=u password=*** dbname=d", "plain"},
    {"host=h password='a b\\'c' dbname=d", "host=h password=*** dbname=d", "a b'c"},
    {"password = spaced   host=h", "password=*** host=h", "spaced"},
    {"host=h password=back\\ slash", "host=h password=***", "back slash"},
    {"dbname=postgresql://u:In@Db55@h/d connect_timeout=5",
     "dbname=postgresql://u:***@h/d connect_timeout=5", ""},
    {"redis://:pw0rd@cache:6380/2", "redis://***@cache:6380/2", "pw0rd"},
    {"redis://onlypass@cache", "redis://***@cache", "onlypass"},
    {"redis://app:p@ss:w#rd@cache:6379/0", "redis://app:***@cache:6379/0", "p@ss:w#rd"},
    {"rediss://app:tlspw@cache:6380", "rediss://app:***@cache:6380", "tlspw"},
    {"redis://cache:6379/0", "redis://cache:6379/0", ""},
    {"unix:///run/redis.sock", "unix:///run/redis.sock", ""},
};

TEST(Secrets, MaskTableShowsNoPassword) {
    for (const auto& c : kMaskCases) {
        EXPECT_EQ(mask_connection_string(c.text), c.masked) << c.text;
        const ConnectionString parsed = parse_connection_string(c.text);
        EXPECT_EQ(parsed.password, c.password) << c.text;
        if (!c.password.empty()) {
            EXPECT_EQ(mask_connection_string(c.text).find(c.password), std::string::npos);
        }
    }
    EXPECT_GE(kMaskCases.size(), 15u);
}

TEST(Secrets, UnparsableTextIsHiddenWhole) {
    EXPECT_EQ(mask_connection_string("host=h password='never closed"), "(unparsable, hidden)");
    EXPECT_EQ(mask_connection_string("postgresql://u:pw@h/db?novalue"),
              "postgresql://(unparsable, hidden)");
    EXPECT_EQ(mask_connection_string("just-a-password-like-word"), "(unparsable, hidden)");
    try {
        parse_connection_string("host=h password='pw-in-error");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("pw-in-error"), std::string::npos) << e.what();
    }
}

TEST(Secrets, SecretKeys) {
    for (const char* key : {"password", "sslpassword", "sasl.password", "ssl.key.password",
                            "ssl.keystore.password", "sasl.oauthbearer.client.secret"})
        EXPECT_TRUE(is_secret_key(key)) << key;
    for (const char* key : {"user", "host", "sasl.username", "ssl.key.location", "dbname"})
        EXPECT_FALSE(is_secret_key(key)) << key;
}

TEST(Secrets, ScrubRemovesTheSecretAndWhatAMisParseCutsItInto) {
    remember_secret("Wrong@Secret6");
    remember_secret("pa:ss/wo#rd");
    EXPECT_EQ(scrub_secrets("could not translate host name \"Secret6@127.0.0.1\""),
              "could not translate host name \"***@127.0.0.1\"");
    EXPECT_EQ(scrub_secrets("invalid integer value \"pa:ss\" for connection option \"port\""),
              "invalid integer value \"***\" for connection option \"port\"");
    EXPECT_EQ(scrub_secrets("user Wrong@Secret6 / Wrong%40Secret6"), "user *** / ***");
    EXPECT_EQ(scrub_secrets("connection refused"), "connection refused");
    remember_secret("hunter2-redis");  // one piece: '-' ends no part of a URL
    EXPECT_EQ(scrub_secrets("redis redis://u:***@h: hunter2-redis"), "redis redis://u:***@h: ***");
}

TEST(PostgresParams, UrlBecomesKeywordsLibpqNeverReparses) {
    using P = PostgresParams;
    EXPECT_EQ(postgres_params("postgresql://secretuser:Wrong@Secret6@127.0.0.1:5601/postgres"),
              (P{{"user", "secretuser"},
                 {"password", "Wrong@Secret6"},
                 {"host", "127.0.0.1"},
                 {"port", "5601"},
                 {"dbname", "postgres"}}));
    EXPECT_EQ(
        postgres_params("postgresql://h1:5432,[::1],%2Ftmp:5433/d?ssl=true&connect_timeout=3"),
        (P{{"host", "h1,::1,/tmp"},
           {"port", "5432,,5433"},
           {"dbname", "d"},
           {"sslmode", "require"},
           {"connect_timeout", "3"}}));
    EXPECT_EQ(postgres_params("host=h password='a b'"), (P{{"host", "h"}, {"password", "a b"}}));
    EXPECT_EQ(
        postgres_params("dbname='postgresql://u:p@w@h/d' host=other"),
        (P{{"user", "u"}, {"password", "p@w"}, {"host", "h"}, {"dbname", "d"}, {"host", "other"}}));
    EXPECT_THROW(postgres_params("postgresql://h:port/d"), std::invalid_argument);
    EXPECT_THROW(postgres_params("mysql://h/d"), std::invalid_argument);
}

TEST(RedisUrlSecrets, PasswordsWithDelimitersAndIpv6) {
    const RedisUrl u = parse_redis_url("redis://app:p@ss:w%2Frd@[::1]:6390/3");
    EXPECT_EQ(u.user, "app");
    EXPECT_EQ(u.password, "p@ss:w/rd");
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.port, 6390);
    EXPECT_EQ(u.db, 3);
    EXPECT_EQ(u.redacted, "redis://app:***@[::1]:6390/3");
    EXPECT_THROW(parse_redis_url("rediss://app:pw@h"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("redis://h:notaport/0"), std::invalid_argument);
    EXPECT_THROW(parse_redis_url("redis://h/0?password=x"), std::invalid_argument);
}

}  // namespace
}  // namespace kbridge
