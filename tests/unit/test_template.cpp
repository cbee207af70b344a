#include <gtest/gtest.h>

#include "core/record.h"
#include "formats/json.h"
#include "formats/template.h"

namespace kbridge {
namespace {

std::string render(const std::string& text, const std::string& json, bool* ok = nullptr) {
    JsonDecoder decoder;
    simdjson::dom::element fields;
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
    const std::string json = R"({"user_id":17,"region":"eu","order":{"id":"o-9"},"price":1.5,"ok":true})";
    EXPECT_EQ(render("{user_id}", json), "17");
    EXPECT_EQ(render("orders.{region}", json), "orders.eu");
    EXPECT_EQ(render("{order.id}/{price}/{ok}", json), "o-9/1.5/true");
    EXPECT_EQ(render("{order}", json), R"({"id":"o-9"})");
    EXPECT_EQ(render("{{literal}} {region}", json), "{literal} eu");
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

TEST(JsonDecoder, RejectsInvalidJsonAndNonObjects) {
    JsonDecoder decoder;
    simdjson::dom::element fields;
    std::string error;
    EXPECT_FALSE(decoder.decode("{not json", fields, error));
    EXPECT_NE(error.find("invalid JSON"), std::string::npos);
    EXPECT_FALSE(decoder.decode("[1,2]", fields, error));
    EXPECT_TRUE(decoder.decode(R"({"a":"ü\n"})", fields, error));
}

}  // namespace
}  // namespace kbridge

namespace kbridge {
namespace {

// Decodes `values` laid back to back in one padded buffer, as a batch, and record by record:
// the outcomes must be the same.
std::vector<std::string> decode_batch(const std::vector<std::string>& values, bool contiguous) {
    std::vector<char> storage;
    std::vector<std::pair<size_t, size_t>> places;
    for (const auto& v : values) {
        places.push_back({storage.size(), v.size()});
        storage.insert(storage.end(), v.begin(), v.end());
    }
    const size_t size = storage.size();
    storage.resize(size + kValuePadding);
    JsonDecoder decoder;
    decoder.start(contiguous ? std::string_view(storage.data(), size) : std::string_view());
    std::vector<std::string> outcomes;
    for (const auto& [offset, length] : places) {
        simdjson::dom::element element;
        std::string error;
        if (decoder.decode(std::string_view(storage.data() + offset, length), element, error))
            outcomes.push_back(simdjson::minify(element));
        else
            outcomes.push_back(error);
    }
    return outcomes;
}

TEST(JsonDecoder, ABatchDecodesAsItsRecordsWouldAlone) {
    const std::vector<std::vector<std::string>> cases = {
        {R"({"a":1})", R"({"b":[1,2]})", R"({"c":"x"})"},
        {R"({"a":1})", "{not json", R"({"c":"x"})"},
        {R"({"a":)", R"(1})", R"({"c":"x"})"},  // two records that only together are a document
        {R"({"a":1})", "42", R"({"c":"x"})"},
        {R"({"a":1} )", R"( {"b":2})", "\n{\"c\":3}\n"},
        {R"({"a":1})", "[1]", "[2]"},
        {"", R"({"a":1})"},
    };
    for (const auto& values : cases) {
        const auto together = decode_batch(values, true);
        const auto alone = decode_batch(values, false);
        EXPECT_EQ(together, alone) << values[0] << " " << values[1];
    }
    EXPECT_EQ(decode_batch({R"({"a":)", R"(1})"}, true)[0].rfind("invalid JSON", 0), 0u);
}

}  // namespace
}  // namespace kbridge
