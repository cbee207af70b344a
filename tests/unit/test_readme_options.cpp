// README.md's option tables checked against the option tables `kbridge describe` prints (the
// tables that parse the options), so the two cannot drift. Every source and sink the registry
// holds is checked, including ones added later. The README format, for each of them:
//
//   ### Source `TYPE`                      (a sink: ### Sink `TYPE`), exactly so
//   | option | default | meaning |         the first table after the heading is the connector's
//   |---|---|---|
//   | `batch_size` | `1000` | records per batch |
//   | `brokers`, `properties` | `kafka.*` | several options may share a row |
//   | `topic` | (required) | ... |
//
// - every option of the connector's table but `type` is named, in backticks, in the first cell
//   of exactly one row, and every name in backticks there is one of its options;
// - a required option's row says "required" in its default cell;
// - an option with a default in its table shows it in backticks in its row's default cell;
// - every allowed value of a choice option appears in backticks in its row, e.g. `json`, `raw`.
// Prose around the table is free. `kbridge describe TYPE --format markdown` prints a table that
// passes; a failure here prints it too, to copy from.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "cli/describe.h"
#include "core/registry.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

struct Row {
    std::vector<std::string> names;  // backticked words of the first cell
    std::string defaults;            // the second cell
    std::string whole;               // the whole line
};

std::vector<std::string> backticked(const std::string& text) {
    std::vector<std::string> out;
    static const std::regex quoted("`([^`]*)`");
    for (std::sregex_iterator it(text.begin(), text.end(), quoted), end; it != end; ++it)
        out.push_back((*it)[1]);
    return out;
}

std::vector<std::string> cells(std::string line) {
    std::vector<std::string> out;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {  // past the leading '|'
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (line[i] == '|') {
            out.push_back(cell);
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return out;
}

// The rows of the first table after `heading`, before the next heading; nullopt without one.
std::optional<std::vector<Row>> table_after(const std::string& readme, const std::string& heading) {
    std::istringstream in(readme);
    std::string line;
    bool in_section = false, in_table = false;
    std::vector<Row> rows;
    while (std::getline(in, line)) {
        if (!in_section) {
            in_section = line == heading;
            continue;
        }
        if (line.rfind("#", 0) == 0) break;
        const bool table_line = line.rfind("|", 0) == 0;
        if (!in_table) {
            in_table = line == "| option | default | meaning |";
            continue;
        }
        if (!table_line) break;
        if (line.rfind("|---", 0) == 0) continue;
        const auto c = cells(line);
        if (c.size() < 3) {
            ADD_FAILURE() << heading << ": a row without three cells: " << line;
            continue;
        }
        rows.push_back({backticked(c[0]), c[1], line});
    }
    if (!in_table) return std::nullopt;
    return rows;
}

void check(const std::string& readme, const std::string& heading, const OptionTable& table,
           const std::string& type) {
    SCOPED_TRACE(heading + "\n`kbridge describe " + type + " --format markdown` prints:\n" +
                 markdown_table(table));
    const auto rows = table_after(readme, heading);
    ASSERT_TRUE(rows) << "README.md has no line '" << heading
                      << "' followed by a table '| option | default | meaning |'";
    std::map<std::string, const Row*> row_of;
    for (const auto& row : *rows) {
        for (const auto& name : row.names) {
            const bool known = std::any_of(table.begin(), table.end(),
                                           [&](const OptionSpec& o) { return o.name == name; });
            EXPECT_TRUE(known && name != "type")
                << "README names `" << name << "`, which is not an option: " << row.whole;
            EXPECT_TRUE(row_of.emplace(name, &row).second) << "`" << name << "` named twice";
        }
    }
    for (const auto& o : table) {
        if (o.name == "type") continue;
        const auto found = row_of.find(o.name);
        if (found == row_of.end()) {
            ADD_FAILURE() << "README's table lacks the option `" << o.name << "` (" << o.help
                          << ")";
            continue;
        }
        const Row& row = *found->second;
        if (o.required) {
            EXPECT_NE(row.defaults.find("required"), std::string::npos)
                << "`" << o.name << "` is required: " << row.whole;
        }
        if (!o.default_value.empty()) {
            const auto shown = backticked(row.defaults);
            EXPECT_NE(std::find(shown.begin(), shown.end(), o.default_value), shown.end())
                << "`" << o.name << "` defaults to `" << o.default_value << "`: " << row.whole;
        }
        const auto words = backticked(row.whole);
        for (const auto& choice : o.choices)
            EXPECT_NE(std::find(words.begin(), words.end(), choice), words.end())
                << "`" << o.name << "` also allows `" << choice << "`: " << row.whole;
    }
}

TEST(ReadmeOptions, EveryConnectorsTableMatchesItsOptionTable) {
    const std::string readme = read_file(KBRIDGE_SOURCE_DIR "/README.md");
    for (const auto& k : source_kinds())
        check(readme, "### Source `" + k.type + "`", *k.options, k.type);
    for (const auto& k : sink_kinds())
        check(readme, "### Sink `" + k.type + "`", *k.options, k.type);
}

// The check itself: drift of each kind the issue found is caught.
TEST(ReadmeOptions, CatchesAMissingOptionAWrongDefaultAndAMissingChoice) {
    const OptionTable table = {
        {"type", OptionType::String, "", "demo"},
        {"topic", OptionType::String, "", "topic", {}, true},
        {"connect_timeout", OptionType::Duration, "10s", "bound"},
        {"format", OptionType::Choice, "json", "decoding", {"json", "raw", "csv"}},
    };
    const std::string good = "### Sink `demo`\n" + markdown_table(table) + "\nprose\n";
    {
        ::testing::TestPartResultArray failures;
        {
            ::testing::ScopedFakeTestPartResultReporter reporter(
                ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &failures);
            check(good, "### Sink `demo`", table, "demo");
        }
        EXPECT_EQ(failures.size(), 0) << good;
    }
    const std::vector<std::pair<std::string, std::string>> drifts = {
        {"| `connect_timeout` | `10s` | bound |\n", ""},
        {"| `connect_timeout` | `10s` |", "| `connect_timeout` | `5s` |"},
        {"`json`, `raw`, `csv`", "`json`, `raw`"},
        {"| `topic` | (required) |", "| `topic` | |"},
        {"| `topic` |", "| `topics` |"},
    };
    for (const auto& [from, to] : drifts) {
        std::string drifted = good;
        const size_t at = drifted.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        drifted.replace(at, from.size(), to);
        ::testing::TestPartResultArray failures;
        {
            ::testing::ScopedFakeTestPartResultReporter reporter(
                ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &failures);
            check(drifted, "### Sink `demo`", table, "demo");
        }
        EXPECT_GT(failures.size(), 0) << "not caught:\n" << drifted;
    }
}

}  // namespace
}  // namespace kbridge::test
