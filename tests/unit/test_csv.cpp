#include <gtest/gtest.h>

#include "formats/csv.h"
#include "formats/json.h"

namespace kbridge {
namespace {

std::string to_json(std::string_view line, const CsvFormat& f, bool& ok, std::string& error) {
    std::vector<char> out;
    ok = csv_to_json(line, f, out, error);
    return std::string(out.begin(), out.end());
}

TEST(Csv, LinesBecomeObjectsOfTheirColumns) {
    CsvFormat f;
    f.columns = {"name", "age", "city", "salary"};
    bool ok;
    std::string error;
    EXPECT_EQ(to_json("John,30,New York,50000", f, ok, error),
              R"({"name":"John","age":"30","city":"New York","salary":"50000"})");
    EXPECT_TRUE(ok);
    EXPECT_EQ(to_json(R"("Doe, ""JJ""",,"a""b",1)", f, ok, error),
              R"({"name":"Doe, \"JJ\"","age":"","city":"a\"b","salary":"1"})");
    EXPECT_TRUE(ok);
}

TEST(Csv, ABadLineSaysWhyAndLeavesNothingBehind) {
    CsvFormat f;
    f.delimiter = '|';
    f.columns = {"sender", "receiver", "content"};
    bool ok;
    std::string error;
    EXPECT_EQ(to_json("alice|bob", f, ok, error), "");
    EXPECT_FALSE(ok);
    EXPECT_EQ(error, "2 fields where the columns name 3");
    EXPECT_EQ(to_json("alice|bob|\"hi", f, ok, error), "");
    EXPECT_EQ(error, "field 3 opens a quote that never closes");
    EXPECT_EQ(to_json("alice|\"bob\"x|hi", f, ok, error), "");
    EXPECT_EQ(error, "field 2 has text after its closing quote");
    EXPECT_EQ(to_json("alice|bob|hello, bob", f, ok, error),
              R"({"sender":"alice","receiver":"bob","content":"hello, bob"})");
    EXPECT_TRUE(ok);
}

// Found by tests/fuzz/csv.cpp: the bytes went into the JSON as they were, so a Latin-1 line
// gave a value no JSON reader takes.
TEST(Csv, AFieldThatIsNotUtf8IsRefused) {
    CsvFormat f;
    f.columns = {"name", "city"};
    bool ok;
    std::string error;
    EXPECT_EQ(to_json("Ann,S\xe3o Paulo", f, ok, error), "");
    EXPECT_FALSE(ok);
    EXPECT_EQ(error, "field 2 is not valid UTF-8");
    EXPECT_EQ(to_json("\"\xed\xa0\x80\",x", f, ok, error), "");  // a surrogate
    EXPECT_EQ(error, "field 1 is not valid UTF-8");
    EXPECT_EQ(to_json("Ann,S\xc3\xa3o Paulo \xf0\x9f\x98\x80", f, ok, error),
              "{\"name\":\"Ann\",\"city\":\"S\xc3\xa3o Paulo \xf0\x9f\x98\x80\"}");
    EXPECT_TRUE(ok);
}

TEST(Csv, FieldsBecomeALineQuotedWhereNeeded) {
    CsvFormat f;
    f.delimiter = '|';
    f.columns = {"sender", "receiver", "content", "missing"};
    f.columns.push_back("n");
    JsonDecoder decoder;
    json::Value fields;
    std::string error, out;
    ASSERT_TRUE(decoder.decode(
        R"({"sender":"alice","receiver":null,"content":"a|b \"q\"","n":12345678901234567890.10})",
        fields, error));
    csv_from_fields(fields, f, out);
    EXPECT_EQ(out, "alice||\"a|b \"\"q\"\"\"||12345678901234567890.10");
}

}  // namespace
}  // namespace kbridge
