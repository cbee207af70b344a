#include <gtest/gtest.h>
#include <simdjson.h>

#include "formats/json.h"

namespace kbridge {
namespace {

bool accepts(const std::string& text) {
    JsonDecoder decoder;
    json::Value value;
    std::string error;
    return decoder.decode_any(text, value, error);
}

std::string compact(const std::string& text) {
    JsonDecoder decoder;
    json::Value value;
    std::string error, out;
    EXPECT_TRUE(decoder.decode_any(text, value, error)) << text << ": " << error;
    value.append_json(out);
    return out;
}

TEST(Json, RejectsInvalidJsonAndNonObjects) {
    JsonDecoder decoder;
    json::Value fields;
    std::string error;
    EXPECT_FALSE(decoder.decode("{not json", fields, error));
    EXPECT_EQ(error.rfind("invalid JSON at byte 1", 0), 0u) << error;
    EXPECT_FALSE(decoder.decode("[1,2]", fields, error));
    EXPECT_EQ(error, "invalid JSON: expected an object");
    EXPECT_TRUE(decoder.decode(R"({"a":"ü\n"})", fields, error));
}

// Every document here is checked against simdjson, an independent validator, as well.
TEST(Json, AcceptsWhatJsonAllowsAndNothingElse) {
    const std::vector<std::string> valid = {
        "{}",
        "[]",
        " { \"a\" : [ 1 , 2.5e-3 , -0 , true , false , null ] } ",
        "\"\"",
        "0",
        "-0.0E+0",
        "1e9",
        R"("\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t")",
        "[[[[]]]]",
        "{\"a\":{\"b\":{}}}",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "\t[1]\r\n"};
    const std::vector<std::string> invalid = {"",
                                              " ",
                                              "{",
                                              "}",
                                              "[1,]",
                                              "{\"a\":1,}",
                                              "{\"a\"}",
                                              "{\"a\" 1}",
                                              "{a:1}",
                                              "[01]",
                                              "[1.]",
                                              "[.5]",
                                              "[1e]",
                                              "[+1]",
                                              "[-]",
                                              "[1 2]",
                                              "[tru]",
                                              "[nul]",
                                              "[True]",
                                              "\"abc",
                                              "\"tab\there\"",
                                              "\"\\x\"",
                                              "\"\\u12\"",
                                              "\"\\ud800\"",
                                              "\"\\udc00\"",
                                              "\"\\ud800\\u0041\"",
                                              "\"\xff\"",
                                              "\"\xc0\xaf\"",
                                              "\"\xed\xa0\x80\"",
                                              "\"\xf4\x90\x80\x80\"",
                                              "\"\xe2\x82\"",
                                              "{} {}",
                                              "[1] x",
                                              "[NaN]",
                                              "[Infinity]",
                                              "'a'",
                                              "[1,,2]"};
    simdjson::dom::parser reference;
    for (const auto& text : valid) {
        EXPECT_TRUE(accepts(text)) << text;
        EXPECT_EQ(reference.parse(text).error(), simdjson::SUCCESS) << text;
    }
    for (const auto& text : invalid) {
        EXPECT_FALSE(accepts(text)) << text;
        EXPECT_NE(reference.parse(text).error(), simdjson::SUCCESS) << text;
    }
}

TEST(Json, NestingIsBounded) {
    EXPECT_TRUE(accepts(std::string(512, '[') + std::string(512, ']')));
    EXPECT_FALSE(accepts(std::string(513, '[') + std::string(513, ']')));
    EXPECT_FALSE(accepts(std::string(100000, '[')));
}

// Numbers that a double cannot hold keep every digit; simdjson refuses or rounds most of them.
TEST(Json, NumbersKeepTheirText) {
    const std::vector<std::string> numbers = {"12345678901234567890.12",
                                              "99999999999999999.99",
                                              "3.14159265358979323846",
                                              "1.0000000000000000000001",
                                              "123456789012345678901234567890",
                                              "-9223372036854775809",
                                              "18446744073709551616",
                                              "1e400",
                                              "-1E-400",
                                              "1e2",
                                              "-0",
                                              "100000000000000000000.0",
                                              "1.7976931348623157e308",
                                              "5e-324"};
    JsonDecoder decoder;
    for (const auto& number : numbers) {
        json::Value object, value;
        std::string error;
        const std::string document = "{\"n\": " + number + " }";  // values view it: keep it
        ASSERT_TRUE(decoder.decode(document, object, error)) << number << error;
        ASSERT_TRUE(object.find("n", value));
        EXPECT_EQ(value.kind(), json::Kind::Number);
        EXPECT_EQ(value.raw(), number);
        std::string text;
        value.append_text(text);
        EXPECT_EQ(text, number);
    }
}

TEST(Json, StringsUnescapeAndContainersCompact) {
    JsonDecoder decoder;
    json::Value object, value;
    std::string error, scratch;
    ASSERT_TRUE(
        decoder.decode(R"({ "plain":"abc", "esc":"a\"b\\c\/d\n\u00e9\ud83d\ude00", "k\u0065y" : 1,)"
                       R"( "o" : { "s" : "x y" , "a" : [ 1 , "]" , "\" }" ] } })",
                       object, error))
        << error;
    ASSERT_TRUE(object.find("plain", value));
    EXPECT_EQ(value.string(scratch), "abc");
    ASSERT_TRUE(object.find("esc", value));
    EXPECT_EQ(value.string(scratch), "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
    ASSERT_TRUE(object.find("key", value));  // names are compared unescaped
    EXPECT_EQ(value.raw(), "1");
    ASSERT_TRUE(object.find("o", value));
    std::string json;
    value.append_json(json);
    EXPECT_EQ(json, R"({"s":"x y","a":[1,"]","\" }"]})");
    EXPECT_EQ(object.size(), 4u);
    EXPECT_FALSE(object.find("missing", value));
    EXPECT_EQ(compact(" [ ] "), "[]");
    EXPECT_EQ(compact("[1,{\"a\":[]}]"), "[1,{\"a\":[]}]");
    EXPECT_EQ(compact(" \"a b\" "), "\"a b\"");
}

TEST(Json, IteratesMembersAndElementsInOrder) {
    JsonDecoder decoder;
    json::Value object;
    std::string error, scratch;
    ASSERT_TRUE(decoder.decode(R"({"a":[1,[2,3],{"x":4}],"b":null,"c":true})", object, error));
    std::string names;
    for (const json::Member member : object.children()) names += member.key.string(scratch);
    EXPECT_EQ(names, "abc");
    json::Value array;
    ASSERT_TRUE(object.find("a", array));
    std::vector<std::string> elements;
    for (const json::Member element : array.children()) {
        std::string text;
        element.value.append_json(text);
        elements.push_back(text);
    }
    EXPECT_EQ(elements, (std::vector<std::string>{"1", "[2,3]", R"({"x":4})"}));
}

}  // namespace
}  // namespace kbridge
