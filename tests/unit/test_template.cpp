#include <gtest/gtest.h>
#include <time.h>

#include <cstdio>
#include <vector>

#include "core/record.h"
#include "formats/json.h"
#include "formats/template.h"

namespace kbridge {
namespace {

std::string render(const std::string& text, const std::string& json, bool* ok = nullptr) {
    JsonDecoder decoder;
    json::Value fields;
    std::string error, out;
    EXPECT_TRUE(decoder.decode(json, fields, error)) << error;
    Record record;
    record.key = "k1";
    record.topic = "src";
    record.partition = 3;
    record.offset = 42;
    const bool rendered = Template(text).render(record, &fields, out, error);
    if (ok) *ok = rendered;
    return rendered ? out : error;
}

TEST(Template, FieldsNestedFieldsAndLiterals) {
    const std::string json =
        R"({"user_id":17,"region":"eu","order":{"id":"o-9"},"price":1.5,"ok":true})";
    EXPECT_EQ(render("{user_id}", json), "17");
    EXPECT_EQ(render("orders.{region}", json), "orders.eu");
    EXPECT_EQ(render("{order.id}/{price}/{ok}", json), "o-9/1.5/true");
    EXPECT_EQ(render("{order}", json), R"({"id":"o-9"})");
    EXPECT_EQ(render("{{literal}} {region}", json), "{literal} eu");
}

TEST(Template, NumbersRenderAsWritten) {
    const std::string json =
        R"({"e":1e2,"z":-0,"big":100000000000000000000.0,"huge":123456789012345678901234567890,)"
        R"("neg":-99999999999999999999,"pi":3.14159265358979323846,"tiny":1.0000000000000000000001,)"
        R"("far":1e400,"o":{ "n" : [ 1.50, -0.0 ] },"s":"a\"b\u00fc"})";
    EXPECT_EQ(render("{e}", json), "1e2");
    EXPECT_EQ(render("{z}", json), "-0");
    EXPECT_EQ(render("{big}", json), "100000000000000000000.0");
    EXPECT_EQ(render("{huge}", json), "123456789012345678901234567890");
    EXPECT_EQ(render("{neg}", json), "-99999999999999999999");
    EXPECT_EQ(render("{pi}", json), "3.14159265358979323846");
    EXPECT_EQ(render("{tiny}", json), "1.0000000000000000000001");
    EXPECT_EQ(render("{far}", json), "1e400");
    EXPECT_EQ(render("{o}", json), R"({"n":[1.50,-0.0]})");
    EXPECT_EQ(render("{o.n}", json), "[1.50,-0.0]");
    EXPECT_EQ(render("{s}", json), "a\"b\u00fc");
}

TEST(Template, RecordMetadata) {
    EXPECT_EQ(render("{_key}@{_topic}/{_partition}/{_offset}", "{}"), "k1@src/3/42");
}

TEST(Template, MissingOrNullFieldFailsInsteadOfRenderingEmpty) {
    bool ok = true;
    EXPECT_EQ(render("{user_id}", R"({"id":1})", &ok), "missing field 'user_id'");
    EXPECT_FALSE(ok);
    EXPECT_EQ(render("{a.b}", R"({"a":{"c":1}})", &ok), "missing field 'a.b'");
    EXPECT_EQ(render("{a}", R"({"a":null})", &ok), "field 'a' is null");
    EXPECT_FALSE(ok);
}

TEST(Template, CompileErrors) {
    EXPECT_THROW(Template("{open"), std::invalid_argument);
    EXPECT_THROW(Template("close}"), std::invalid_argument);
    EXPECT_THROW(Template("{}"), std::invalid_argument);
    EXPECT_THROW(Template("{a..b}"), std::invalid_argument);
    EXPECT_FALSE(Template("constant").needs_fields());
    EXPECT_TRUE(Template("x{y}").needs_fields());
}

}  // namespace
}  // namespace kbridge

namespace kbridge {
namespace {

TEST(Template, DefaultsAndFormatters) {
    const std::string json =
        R"({"ts":1700000000000,"iso":"2024-02-29T10:00:00Z","a":"MiXed","n":null,"o":{"x":[1, 2]},"big":1e400})";
    EXPECT_EQ(render("{region:-eu}/{n:-none}/{a:-x}", json), "eu/none/MiXed");
    EXPECT_EQ(render("{ts:date} {iso:date} {_offset:date}", json),
              "2023-11-14 2024-02-29 1970-01-01");
    EXPECT_EQ(render("{a:upper}{a:lower}", json), "MIXEDmixed");
    EXPECT_EQ(render("{a:json} {o:json} {big:json} {n:json} {_key:json} {_partition:json}", json),
              R"("MiXed" {"x":[1,2]} 1e400 null "k1" 3)");
    EXPECT_EQ(render("{missing:upper:-dflt}", json), "dflt");
    bool ok = true;
    EXPECT_EQ(render("{a:date}", json, &ok),
              "'a' is 'MiXed', not milliseconds since the epoch or an ISO date, for :date");
    EXPECT_FALSE(ok);
    EXPECT_THROW(Template("{a:nope}"), std::invalid_argument);
}

TEST(Template, DatesAgreeWithGmtime) {
    // Every ~17 days across years 1970 to 9999 and around the ends, with odd milliseconds.
    const Template day("{ts:date}");
    std::vector<long long> seconds;
    for (long long s = 0; s < 253402300800; s += 1439999) seconds.push_back(s);
    for (long long s :
         {0LL, 59LL, 86399LL, 86400LL, 951782399LL, 951782400LL, 4107542399LL, 253402300799LL})
        seconds.push_back(s);
    JsonDecoder decoder;
    json::Value fields;
    std::string error, out;
    Record record;
    for (const long long s : seconds) {
        const long long ms = s * 1000 + s % 1000;
        const std::string json = R"({"ts":)" + std::to_string(ms) + "}";
        ASSERT_TRUE(decoder.decode(json, fields, error)) << error;
        out.clear();
        ASSERT_TRUE(day.render(record, &fields, out, error)) << error;
        const time_t t = static_cast<time_t>(s);
        struct tm utc {};
        ASSERT_TRUE(gmtime_r(&t, &utc));
        char expected[32];
        std::snprintf(expected, sizeof expected, "%04d-%02d-%02d", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday);
        ASSERT_EQ(out, expected) << ms;
    }
}

}  // namespace
}  // namespace kbridge
