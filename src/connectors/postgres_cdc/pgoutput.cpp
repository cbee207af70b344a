#include "connectors/postgres_cdc/pgoutput.h"

#include <chrono>
#include <cstdio>

namespace kbridge::pgoutput {
namespace {

// A bounds-checked cursor over one message; every read says what it was reading when the bytes
// run out.
class Reader {
  public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}

    uint8_t u8(const char* what) { return static_cast<uint8_t>(take(1, what)[0]); }
    uint16_t u16(const char* what) { return static_cast<uint16_t>(big_endian(take(2, what))); }
    uint32_t u32(const char* what) { return static_cast<uint32_t>(big_endian(take(4, what))); }
    uint64_t u64(const char* what) { return big_endian(take(8, what)); }
    int64_t i64(const char* what) { return static_cast<int64_t>(u64(what)); }
    // A NUL-terminated string.
    std::string_view cstring(const char* what) {
        const size_t end = bytes_.find('\0', at_);
        if (end == std::string_view::npos)
            throw DecodeError(std::string("unterminated string (") + what + ")");
        const std::string_view s = bytes_.substr(at_, end - at_);
        at_ = end + 1;
        return s;
    }
    std::string_view take(size_t n, const char* what) {
        if (bytes_.size() - at_ < n) throw DecodeError(std::string("message ends inside ") + what);
        const std::string_view s = bytes_.substr(at_, n);
        at_ += n;
        return s;
    }
    size_t left() const { return bytes_.size() - at_; }
    void finish(const char* message) const {
        if (left() != 0)
            throw DecodeError(std::to_string(left()) + " unexpected bytes after a " + message +
                              " message");
    }

  private:
    static uint64_t big_endian(std::string_view b) {
        uint64_t v = 0;
        for (const char c : b) v = (v << 8) | static_cast<uint8_t>(c);
        return v;
    }
    std::string_view bytes_;
    size_t at_ = 0;
};

Tuple tuple(Reader& r) {
    const uint16_t count = r.u16("a tuple's column count");
    // Each column takes at least one byte: a count beyond what is left is malformed, and
    // reserving for it would let a short message allocate without bound.
    if (count > r.left()) throw DecodeError("a tuple claims more columns than its bytes hold");
    Tuple row;
    row.reserve(count);
    for (uint16_t i = 0; i < count; ++i) {
        Value v;
        const char kind = static_cast<char>(r.u8("a column's kind"));
        switch (kind) {
            case 'n':
            case 'u':
                v.kind = static_cast<ValueKind>(kind);
                break;
            case 't':
            case 'b': {
                v.kind = static_cast<ValueKind>(kind);
                const uint32_t length = r.u32("a column's length");
                v.bytes = r.take(length, "a column's value");
                break;
            }
            default:
                throw DecodeError(std::string("unknown column kind '") + kind + "'");
        }
        row.push_back(v);
    }
    return row;
}

char old_row_kind(Reader& r, Tuple& old_row) {
    const char kind = static_cast<char>(r.u8("an old row's kind"));
    if (kind != 'K' && kind != 'O')
        throw DecodeError(std::string("expected 'K' or 'O' before the old row, got '") + kind +
                          "'");
    old_row = tuple(r);
    return kind;
}

void expect_new_row(Reader& r) {
    const char kind = static_cast<char>(r.u8("the new row's marker"));
    if (kind != 'N')
        throw DecodeError(std::string("expected 'N' before the new row, got '") + kind + "'");
}

}  // namespace

std::string lsn_text(Lsn lsn) {
    char text[24];
    std::snprintf(text, sizeof text, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return text;
}

Lsn parse_lsn(std::string_view text) {
    const size_t slash = text.find('/');
    auto hex = [&](std::string_view part) {
        if (part.empty() || part.size() > 8) throw std::invalid_argument("not an LSN");
        uint64_t v = 0;
        for (const char c : part) {
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else
                throw std::invalid_argument("not an LSN");
            v = v * 16 + static_cast<uint64_t>(d);
        }
        return v;
    };
    if (slash == std::string_view::npos)
        throw std::invalid_argument("not an LSN: '" + std::string(text) + "'");
    try {
        return hex(text.substr(0, slash)) << 32 | hex(text.substr(slash + 1));
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument("not an LSN: '" + std::string(text) + "'");
    }
}

StreamMessage decode_stream(std::string_view bytes) {
    Reader r(bytes);
    const char type = static_cast<char>(r.u8("the stream message type"));
    if (type == 'w') {
        XLogData d;
        d.start = r.u64("XLogData start");
        d.wal_end = r.u64("XLogData end");
        d.sent = r.i64("XLogData time");
        d.payload = r.take(r.left(), "XLogData");
        return d;
    }
    if (type == 'k') {
        Keepalive k;
        k.wal_end = r.u64("keepalive end");
        k.sent = r.i64("keepalive time");
        k.reply_requested = r.u8("keepalive reply flag") != 0;
        r.finish("keepalive");
        return k;
    }
    throw DecodeError(std::string("unknown replication message type '") + type + "'");
}

std::string standby_status_update(Lsn written, Lsn flushed, Lsn applied, int64_t now,
                                  bool reply_requested) {
    std::string out(1, 'r');
    auto put = [&](uint64_t v) {
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
    };
    put(written);
    put(flushed);
    put(applied);
    put(static_cast<uint64_t>(now));
    out += static_cast<char>(reply_requested ? 1 : 0);
    return out;
}

int64_t postgres_now() {
    // 2000-01-01 00:00:00 UTC in Unix seconds.
    constexpr int64_t kPostgresEpoch = 946684800;
    const auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    return since_unix - kPostgresEpoch * 1000000;
}

Message decode(std::string_view bytes) {
    Reader r(bytes);
    const char type = static_cast<char>(r.u8("the message type"));
    switch (type) {
        case 'B': {
            Begin b;
            b.final_lsn = r.u64("Begin LSN");
            b.commit_time = r.i64("Begin time");
            b.xid = r.u32("Begin xid");
            r.finish("Begin");
            return b;
        }
        case 'C': {
            Commit c;
            c.flags = r.u8("Commit flags");
            c.commit_lsn = r.u64("Commit LSN");
            c.end_lsn = r.u64("Commit end LSN");
            c.commit_time = r.i64("Commit time");
            r.finish("Commit");
            return c;
        }
        case 'O': {
            Origin o;
            o.commit_lsn = r.u64("Origin LSN");
            o.name = r.cstring("Origin name");
            r.finish("Origin");
            return o;
        }
        case 'R': {
            Relation rel;
            rel.id = r.u32("Relation id");
            rel.schema = r.cstring("Relation schema");
            rel.name = r.cstring("Relation name");
            rel.replica_identity = static_cast<char>(r.u8("Relation replica identity"));
            const uint16_t count = r.u16("Relation column count");
            // name (>= 1 byte) + flags + type + modifier: at least 10 bytes a column.
            if (count > r.left() / 10)
                throw DecodeError("a Relation claims more columns than its bytes hold");
            rel.columns.reserve(count);
            for (uint16_t i = 0; i < count; ++i) {
                RelationColumn c;
                c.key = (r.u8("a column's flags") & 1) != 0;
                c.name = r.cstring("a column's name");
                c.type = r.u32("a column's type");
                c.type_modifier = static_cast<int32_t>(r.u32("a column's type modifier"));
                rel.columns.push_back(c);
            }
            r.finish("Relation");
            return rel;
        }
        case 'Y': {
            Type t;
            t.id = r.u32("Type id");
            t.schema = r.cstring("Type schema");
            t.name = r.cstring("Type name");
            r.finish("Type");
            return t;
        }
        case 'I': {
            Insert i;
            i.relation = r.u32("Insert relation");
            expect_new_row(r);
            i.row = tuple(r);
            r.finish("Insert");
            return i;
        }
        case 'U': {
            Update u;
            u.relation = r.u32("Update relation");
            const char next = static_cast<char>(r.u8("Update row marker"));
            if (next == 'K' || next == 'O') {
                u.old_kind = next;
                u.old_row = tuple(r);
                expect_new_row(r);
            } else if (next != 'N') {
                throw DecodeError(std::string("expected 'K', 'O' or 'N' in an Update, got '") +
                                  next + "'");
            }
            u.row = tuple(r);
            r.finish("Update");
            return u;
        }
        case 'D': {
            Delete d;
            d.relation = r.u32("Delete relation");
            d.old_kind = old_row_kind(r, d.old_row);
            r.finish("Delete");
            return d;
        }
        case 'T': {
            Truncate t;
            const uint32_t count = r.u32("Truncate relation count");
            const uint8_t options = r.u8("Truncate options");
            t.cascade = (options & 1) != 0;
            t.restart_identity = (options & 2) != 0;
            if (count > r.left() / 4)
                throw DecodeError("a Truncate claims more relations than its bytes hold");
            t.relations.reserve(count);
            for (uint32_t i = 0; i < count; ++i)
                t.relations.push_back(r.u32("a truncated relation"));
            r.finish("Truncate");
            return t;
        }
        case 'M': {
            LogicalMessage m;
            m.transactional = (r.u8("Message flags") & 1) != 0;
            m.lsn = r.u64("Message LSN");
            m.prefix = r.cstring("Message prefix");
            const uint32_t length = r.u32("Message length");
            m.content = r.take(length, "Message content");
            r.finish("Message");
            return m;
        }
        default:
            throw DecodeError(std::string("unknown pgoutput message type '") + type +
                              "' (protocol version 1 expected)");
    }
}

}  // namespace kbridge::pgoutput
