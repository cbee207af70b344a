// The pgoutput decoder on hand-built messages: each message type, tuple data with null,
// unchanged-TOAST and text columns, and malformed input as an error.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "connectors/postgres_cdc/pgoutput.h"
#include "connectors/postgres_cdc/text_json.h"

namespace kbridge::pgoutput {
namespace {

// Builds messages in network byte order.
struct Bytes {
    std::string s;
    Bytes& c(char v) {
        s += v;
        return *this;
    }
    Bytes& u16(uint16_t v) { return n(v, 2); }
    Bytes& u32(uint32_t v) { return n(v, 4); }
    Bytes& u64(uint64_t v) { return n(v, 8); }
    Bytes& str(const std::string& v) {
        s += v;
        s += '\0';
        return *this;
    }
    Bytes& text(const std::string& v) {
        c('t').u32(static_cast<uint32_t>(v.size()));
        s += v;
        return *this;
    }
    Bytes& n(uint64_t v, int size) {
        for (int i = size - 1; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
        return *this;
    }
};

// The decoded views point into the bytes: keep every built message alive for the test.
std::string_view keep(std::string bytes) {
    static std::vector<std::unique_ptr<std::string>> kept;
    kept.push_back(std::make_unique<std::string>(std::move(bytes)));
    return *kept.back();
}
Message dec(std::string bytes) {
    return decode(keep(std::move(bytes)));
}
StreamMessage dec_stream(std::string bytes) {
    return decode_stream(keep(std::move(bytes)));
}

TEST(Pgoutput, BeginAndCommit) {
    const auto begin =
        std::get<Begin>(dec(Bytes().c('B').u64(0x16B374D848ULL).u64(12345).u32(778).s));
    EXPECT_EQ(begin.final_lsn, 0x16B374D848ULL);
    EXPECT_EQ(begin.commit_time, 12345);
    EXPECT_EQ(begin.xid, 778u);
    const auto commit = std::get<Commit>(dec(Bytes().c('C').c(0).u64(100).u64(200).u64(300).s));
    EXPECT_EQ(commit.commit_lsn, 100u);
    EXPECT_EQ(commit.end_lsn, 200u);
    EXPECT_EQ(commit.commit_time, 300);
}

TEST(Pgoutput, RelationWithKeyColumns) {
    const auto rel = std::get<Relation>(dec(Bytes()
                                                .c('R')
                                                .u32(16384)
                                                .str("public")
                                                .str("orders")
                                                .c('d')
                                                .u16(2)
                                                .c(1)
                                                .str("id")
                                                .u32(23)
                                                .u32(0xFFFFFFFF)
                                                .c(0)
                                                .str("note")
                                                .u32(25)
                                                .u32(0xFFFFFFFF)
                                                .s));
    EXPECT_EQ(rel.id, 16384u);
    EXPECT_EQ(rel.schema, "public");
    EXPECT_EQ(rel.name, "orders");
    ASSERT_EQ(rel.columns.size(), 2u);
    EXPECT_TRUE(rel.columns[0].key);
    EXPECT_EQ(rel.columns[0].type, 23u);
    EXPECT_EQ(rel.columns[0].type_modifier, -1);
    EXPECT_FALSE(rel.columns[1].key);
    EXPECT_EQ(rel.columns[1].name, "note");
}

TEST(Pgoutput, InsertWithNullUnchangedAndText) {
    const auto ins =
        std::get<Insert>(dec(Bytes().c('I').u32(7).c('N').u16(3).text("42").c('n').c('u').s));
    EXPECT_EQ(ins.relation, 7u);
    ASSERT_EQ(ins.row.size(), 3u);
    EXPECT_EQ(ins.row[0].kind, ValueKind::Text);
    EXPECT_EQ(ins.row[0].bytes, "42");
    EXPECT_EQ(ins.row[1].kind, ValueKind::Null);
    EXPECT_EQ(ins.row[2].kind, ValueKind::Unchanged);
}

TEST(Pgoutput, UpdateWithAndWithoutOldRow) {
    const auto plain = std::get<Update>(dec(Bytes().c('U').u32(7).c('N').u16(1).text("x").s));
    EXPECT_EQ(plain.old_kind, 0);
    EXPECT_TRUE(plain.old_row.empty());
    EXPECT_EQ(plain.row[0].bytes, "x");
    const auto full = std::get<Update>(
        dec(Bytes().c('U').u32(7).c('O').u16(1).text("old").c('N').u16(1).c('u').s));
    EXPECT_EQ(full.old_kind, 'O');
    EXPECT_EQ(full.old_row[0].bytes, "old");
    EXPECT_EQ(full.row[0].kind, ValueKind::Unchanged);
}

TEST(Pgoutput, DeleteTruncateTypeOriginMessage) {
    const auto del = std::get<Delete>(dec(Bytes().c('D').u32(9).c('K').u16(1).text("5").s));
    EXPECT_EQ(del.old_kind, 'K');
    EXPECT_EQ(del.old_row[0].bytes, "5");
    const auto trunc = std::get<Truncate>(dec(Bytes().c('T').u32(2).c(3).u32(9).u32(10).s));
    EXPECT_TRUE(trunc.cascade);
    EXPECT_TRUE(trunc.restart_identity);
    EXPECT_EQ(trunc.relations, (std::vector<uint32_t>{9, 10}));
    const auto type = std::get<Type>(dec(Bytes().c('Y').u32(70000).str("s").str("mood").s));
    EXPECT_EQ(type.name, "mood");
    const auto origin = std::get<Origin>(dec(Bytes().c('O').u64(5).str("node1").s));
    EXPECT_EQ(origin.name, "node1");
    const auto msg =
        std::get<LogicalMessage>(dec(Bytes().c('M').c(1).u64(77).str("kbridge").u32(3).s + "abc"));
    EXPECT_TRUE(msg.transactional);
    EXPECT_EQ(msg.prefix, "kbridge");
    EXPECT_EQ(msg.content, "abc");
}

TEST(Pgoutput, MalformedInputIsAnError) {
    const std::string insert = Bytes().c('I').u32(7).c('N').u16(2).text("42").text("abc").s;
    for (size_t cut = 0; cut < insert.size(); ++cut)
        EXPECT_THROW(decode(insert.substr(0, cut)), DecodeError) << "cut at " << cut;
    EXPECT_THROW(decode(insert + "x"), DecodeError);
    EXPECT_THROW(dec(Bytes().c('I').u32(7).c('X').u16(0).s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('I').u32(7).c('N').u16(1).c('z').s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('I').u32(7).c('N').u16(60000).s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('I').u32(7).c('N').u16(1).c('t').u32(0xFFFFFFFF).s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('R').u32(1).str("s").s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('T').u32(0xFFFFFFFF).c(0).s), DecodeError);
    EXPECT_THROW(dec(Bytes().c('S').s), DecodeError);  // streaming: protocol version 2
    EXPECT_THROW(decode(""), DecodeError);
}

TEST(Pgoutput, StreamWrapperAndStatusUpdate) {
    const auto data =
        std::get<XLogData>(dec_stream(Bytes().c('w').u64(1).u64(2).u64(3).s + "B..."));
    EXPECT_EQ(data.start, 1u);
    EXPECT_EQ(data.wal_end, 2u);
    EXPECT_EQ(data.payload, "B...");
    const auto keepalive = std::get<Keepalive>(dec_stream(Bytes().c('k').u64(9).u64(1).c(1).s));
    EXPECT_EQ(keepalive.wal_end, 9u);
    EXPECT_TRUE(keepalive.reply_requested);
    EXPECT_THROW(dec_stream(Bytes().c('k').u64(9).s), DecodeError);
    const std::string update = standby_status_update(1, 2, 3, 4, true);
    EXPECT_EQ(update, Bytes().c('r').u64(1).u64(2).u64(3).u64(4).c(1).s);
}

TEST(Pgoutput, LsnText) {
    EXPECT_EQ(lsn_text(0x16B374D848ULL), "16/B374D848");
    EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ULL);
    EXPECT_EQ(parse_lsn("0/0"), 0u);
    EXPECT_THROW(parse_lsn("16B374D848"), std::invalid_argument);
    EXPECT_THROW(parse_lsn("x/1"), std::invalid_argument);
    EXPECT_THROW(parse_lsn("1/"), std::invalid_argument);
}

std::string json(const JsonType& type, const std::string& text) {
    std::vector<char> out;
    append_text_as_json(type, text, out);
    return std::string(out.begin(), out.end());
}

TEST(TextJson, AsRowToJsonWritesIt) {
    EXPECT_EQ(json({JsonKind::Number}, "-1.5e3"), "-1.5e3");
    EXPECT_EQ(json({JsonKind::Number}, "NaN"), "\"NaN\"");
    EXPECT_EQ(json({JsonKind::Bool}, "t"), "true");
    EXPECT_EQ(json({JsonKind::Bool}, "f"), "false");
    EXPECT_EQ(json({JsonKind::Timestamp}, "2024-02-29 23:59:59.123456"),
              "\"2024-02-29T23:59:59.123456\"");
    EXPECT_EQ(json({JsonKind::TimestampTz}, "2024-02-29 18:29:59+00"),
              "\"2024-02-29T18:29:59+00:00\"");
    EXPECT_EQ(json({JsonKind::TimestampTz}, "2024-02-29 18:29:59-05:30"),
              "\"2024-02-29T18:29:59-05:30\"");
    EXPECT_EQ(json({JsonKind::TimestampTz}, "infinity"), "\"infinity\"");
    EXPECT_EQ(json({JsonKind::String}, "a\"b\n"), "\"a\\\"b\\n\"");
    const JsonType ints{JsonKind::Array, JsonKind::Number, ','};
    EXPECT_EQ(json(ints, "{1,2,NULL}"), "[1,2,null]");
    EXPECT_EQ(json(ints, "{{1,2},{3,4}}"), "[[1,2],[3,4]]");
    EXPECT_EQ(json(ints, "{}"), "[]");
    EXPECT_EQ(json(ints, "[0:1]={1,2}"), "\"[0:1]={1,2}\"");
    const JsonType texts{JsonKind::Array, JsonKind::String, ','};
    EXPECT_EQ(json(texts, R"({"a b","c\"d",NULL,"NULL"})"), R"(["a b","c\"d",null,"NULL"])");
    EXPECT_EQ(json(texts, R"({"unclosed)"), R"("{\"unclosed")");
}

}  // namespace
}  // namespace kbridge::pgoutput
