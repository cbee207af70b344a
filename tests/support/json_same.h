#pragma once
// Checks that two indexed JSON values read the same in every way a sink reads them: kinds, raw
// text, text, compact JSON, members in order and look-ups by name, all the way down.
#include <gtest/gtest.h>

#include <string>

#include "formats/json.h"

namespace kbridge {

inline void expect_same_json(const json::Value& a, const json::Value& b,
                             const std::string& where = "") {
    ASSERT_EQ(a.kind(), b.kind()) << where;
    EXPECT_EQ(a.raw(), b.raw()) << where;
    std::string text_a, text_b, json_a, json_b, scratch_a, scratch_b;
    a.append_text(text_a);
    b.append_text(text_b);
    EXPECT_EQ(text_a, text_b) << where;
    a.append_json(json_a);
    b.append_json(json_b);
    EXPECT_EQ(json_a, json_b) << where;
    if (!a.is_object() && !a.is_array()) return;
    ASSERT_EQ(a.size(), b.size()) << where;
    auto it = b.children().begin();
    for (const json::Member member : a.children()) {
        const json::Member other = *it;
        ++it;
        std::string name = "[]";
        if (a.is_object()) {
            name = std::string(member.key.string(scratch_a));
            EXPECT_EQ(name, other.key.string(scratch_b)) << where;
            json::Value found;
            EXPECT_TRUE(b.find(name, found)) << where << "/" << name;
        }
        expect_same_json(member.value, other.value, where + "/" + name);
    }
}

}  // namespace kbridge
