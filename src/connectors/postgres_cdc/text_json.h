#pragma once
// Turns a column's text output (what pgoutput sends) into the JSON that PostgreSQL's row_to_json
// gives for the same value, so a change carries the row exactly as the postgres_table source
// exports it. Pure: the replication connection's session must use DateStyle ISO (the source sets
// it), and callers resolve domains and arrays to a JsonType with the catalog.
#include <libpq-fe.h>

#include <optional>
#include <string_view>
#include <vector>

namespace kbridge {

enum class JsonKind {
    Number,       // as written when it is a JSON number, else a string (NaN, Infinity)
    Bool,         // t / f
    Json,         // json, jsonb: already JSON
    Timestamp,    // ISO text with a 'T' between date and time
    TimestampTz,  // ... and a +HH:MM offset
    Array,        // {a,b,...} -> [a,b,...], elements of `element`
    String,       // anything else: a JSON string of the text
};

struct JsonType {
    JsonKind kind = JsonKind::String;
    JsonKind element = JsonKind::String;  // Array
    char delimiter = ',';                 // Array: box uses ';'
};

// The kind of a built-in type; none for a type the catalog must explain (a domain, an array of
// a type not listed, an enum, a composite).
std::optional<JsonType> builtin_json_type(Oid type);
// The kind of a scalar type by its category (pg_type.typcategory) when it is not built in.
JsonKind json_kind_of_base(Oid base_type);

// Appends the JSON of `text`, a value of `type`.
void append_text_as_json(const JsonType& type, std::string_view text, std::vector<char>& out);

}  // namespace kbridge
