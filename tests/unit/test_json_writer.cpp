// The object writer's text, and its index checked against a parse of that text.
#include <gtest/gtest.h>

#include "formats/json.h"
#include "formats/json_writer.h"
#include "support/json_same.h"

namespace kbridge {
namespace {

TEST(JsonWriter, WritesCompactJsonAndIndexesItAsAParseWould) {
    JsonDecoder decoder;
    json::Value in;
    std::string error;
    const std::string doc =
        R"({ "n" : 12345678901234567890.10, "s" : "a\"b\u00e9", "o" : { "x" : [ 1 , "] }" ] },)"
        R"( "flat":{"a":[true,null,-0]}, "e":[], "k\u0065y":1e400 })";
    ASSERT_TRUE(decoder.decode(doc, in, error)) << error;
    json::ObjectWriter writer;
    writer.clear();
    std::string scratch, quoted;
    for (const json::Member member : in.children())
        writer.add(json::ObjectWriter::quote(member.key.string(scratch), quoted), member.value);
    writer.add_scalar(json::ObjectWriter::quote("day", quoted), "\"2023-11-14\"",
                      json::Kind::String, false);
    writer.add_scalar(json::ObjectWriter::quote("esc\n\"", quoted), "\"tab\\there\"",
                      json::Kind::String, true);
    writer.add_scalar(json::ObjectWriter::quote("n2", quoted), "-1.50", json::Kind::Number, false);
    writer.add_scalar({"\"t\"", false}, "true", json::Kind::Bool, false);
    writer.add_scalar({"\"z\"", false}, "null", json::Kind::Null, false);
    std::string_view text;
    json::Value out;
    ASSERT_TRUE(writer.finish(text, out, error)) << error;
    EXPECT_EQ(text, R"({"n":12345678901234567890.10,"s":"a\"b\u00e9","o":{"x":[1,"] }"]},)"
                    R"("flat":{"a":[true,null,-0]},"e":[],"key":1e400,"day":"2023-11-14",)"
                    R"("esc\n\"":"tab\there","n2":-1.50,"t":true,"z":null})");
    JsonDecoder again;
    json::Value parsed;
    ASSERT_TRUE(again.decode(text, parsed, error)) << error;
    expect_same_json(out, parsed);
    json::Value value;
    ASSERT_TRUE(out.find("esc\n\"", value));
    EXPECT_EQ(value.string(scratch), "tab\there");
    ASSERT_TRUE(out.find("s", value));
    EXPECT_EQ(value.string(scratch), "a\"b\xc3\xa9");
}

TEST(JsonWriter, KeepsItsIndexWhileTheTextGrows) {
    JsonDecoder decoder;
    json::Value in;
    std::string error, quoted;
    ASSERT_TRUE(
        decoder.decode(R"({"s":"text","o":{"a":[1,2,{"b":"c"}]},"w":[ 1, 2 ]})", in, error));
    json::ObjectWriter writer;
    for (int round = 0; round < 2; ++round) {  // the second reuses the first's room
        writer.clear();
        for (int i = 0; i < 300; ++i) {
            const std::string name = "field" + std::to_string(i);
            int k = 0;
            for (const json::Member member : in.children())
                if (k++ == i % 3) writer.add(json::ObjectWriter::quote(name, quoted), member.value);
            writer.add_scalar(json::ObjectWriter::quote(name + "n", quoted),
                              std::string(static_cast<size_t>(i % 40 + 1), '7'), json::Kind::Number,
                              false);
        }
        std::string_view text;
        json::Value out, parsed;
        ASSERT_TRUE(writer.finish(text, out, error)) << error;
        JsonDecoder again;
        ASSERT_TRUE(again.decode(text, parsed, error)) << error;
        EXPECT_EQ(out.size(), 600u);
        expect_same_json(out, parsed);
    }
}

TEST(JsonWriter, StartsAfreshAfterClear) {
    json::ObjectWriter writer;
    std::string_view text;
    json::Value out;
    std::string error;
    ASSERT_TRUE(writer.finish(text, out, error));
    EXPECT_EQ(text, "{}");
    EXPECT_EQ(out.size(), 0u);
    writer.clear();
    writer.add_scalar({"\"a\"", false}, "1", json::Kind::Number, false);
    ASSERT_TRUE(writer.finish(text, out, error));
    EXPECT_EQ(text, R"({"a":1})");
    ASSERT_EQ(out.size(), 1u);
    json::Value a;
    ASSERT_TRUE(out.find("a", a));
    EXPECT_EQ(a.raw(), "1");
}

}  // namespace
}  // namespace kbridge
