#include <gtest/gtest.h>

#include "connectors/postgres/copy_text.h"

namespace kbridge {
namespace {

std::string escaped(std::string_view text) {
    std::string out = "prefix|";
    append_escaped(out, text);
    return out;
}

TEST(CopyText, EscapesWhatDelimitsCellsAndRowsOnly) {
    EXPECT_EQ(escaped("plain caf\xc3\xa9"), "prefix|plain caf\xc3\xa9");
    EXPECT_EQ(escaped("a\tb\nc\rd\\e"), "prefix|a\\tb\\nc\\rd\\\\e");
    EXPECT_EQ(escaped("\\N"), "prefix|\\\\N");  // never the NULL marker
    EXPECT_EQ(escaped("\\."), "prefix|\\\\.");  // never the end-of-data marker
    EXPECT_EQ(escaped(""), "prefix|");
}

}  // namespace
}  // namespace kbridge
