// What the binary tells about itself: --version, --help's state dir, and `describe`, whose JSON
// must be the registry's option tables exactly (tools and the README check rely on it).
#include <gtest/gtest.h>
#include <simdjson.h>

#include "core/registry.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

class Describe : public ::testing::Test {
  protected:
    TempDir dir;
    RunResult kbridge(const std::vector<std::string>& args) {
        return run_kbridge(args, dir.path().string());
    }
};

TEST_F(Describe, VersionFlagsExitZero) {
    for (const char* flag : {"--version", "-V"}) {
        const RunResult r = kbridge({flag});
        EXPECT_EQ(r.code, 0) << flag << ": " << r.err;
        EXPECT_EQ(r.out.rfind("kbridge " KBRIDGE_VERSION " (librdkafka ", 0), 0u) << r.out;
    }
}

TEST_F(Describe, HelpNamesTheDefaultStateDir) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--help"}, {"run", "--help"}, {"state", "--help"}}) {
        const RunResult r = kbridge(args);
        EXPECT_EQ(r.code, 0);
        EXPECT_NE(r.out.find("$STATE_DIRECTORY"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("~/.local/state/kbridge"), std::string::npos) << r.out;
    }
}

void expect_matches(simdjson::dom::array kinds, const std::string& what, const std::string& type,
                    const OptionTable& table) {
    SCOPED_TRACE(what + " " + type);
    for (simdjson::dom::object kind : kinds) {
        if (std::string(kind["type"].get_string().value()) != type) continue;
        std::vector<const OptionSpec*> expected;
        for (const auto& o : table)
            if (o.name != "type") expected.push_back(&o);
        simdjson::dom::array options = kind["options"].get_array();
        ASSERT_EQ(options.size(), expected.size());
        size_t i = 0;
        for (simdjson::dom::object o : options) {
            const OptionSpec& spec = *expected[i++];
            EXPECT_EQ(std::string(o["name"].get_string().value()), spec.name);
            EXPECT_EQ(std::string(o["help"].get_string().value()), spec.help);
            EXPECT_EQ(o["required"].get_bool().value(), spec.required) << spec.name;
            if (spec.default_value.empty()) {
                EXPECT_TRUE(o["default"].is_null()) << spec.name;
            } else {
                EXPECT_EQ(std::string(o["default"].get_string().value()), spec.default_value);
            }
            std::vector<std::string> choices;
            for (auto c : o["choices"].get_array()) choices.emplace_back(c.get_string().value());
            EXPECT_EQ(choices, spec.choices) << spec.name;
        }
        return;
    }
    ADD_FAILURE() << "describe --format json lacks it";
}

TEST_F(Describe, JsonIsEveryRegisteredOptionTable) {
    const RunResult r = kbridge({"describe", "--format", "json"});
    ASSERT_EQ(r.code, 0) << r.err;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
    for (const auto& k : source_kinds())
        expect_matches(doc["sources"].get_array(), "source", k.type, *k.options);
    for (const auto& k : sink_kinds())
        expect_matches(doc["sinks"].get_array(), "sink", k.type, *k.options);
    EXPECT_EQ(doc["sources"].get_array().size(), source_kinds().size());
    EXPECT_EQ(doc["sinks"].get_array().size(), sink_kinds().size());
}

TEST_F(Describe, OneTypeAsTextAndUnknownTypesExitTwo) {
    const RunResult kafka = kbridge({"describe", "kafka"});
    EXPECT_EQ(kafka.code, 0) << kafka.err;
    EXPECT_NE(kafka.out.find("source kafka\n"), std::string::npos) << kafka.out;
    EXPECT_NE(kafka.out.find("sink kafka\n"), std::string::npos) << kafka.out;
    EXPECT_NE(kafka.out.find("  connect_timeout  (duration; default: 10s)"), std::string::npos)
        << kafka.out;
    EXPECT_EQ(kafka.out.find("redis_list"), std::string::npos) << kafka.out;

    const RunResult typo = kbridge({"describe", "kafak"});
    EXPECT_EQ(typo.code, 2);
    EXPECT_NE(typo.err.find("did you mean 'kafka'?"), std::string::npos) << typo.err;
    EXPECT_EQ(kbridge({"describe", "--format", "yaml"}).code, 2);
}

}  // namespace
}  // namespace kbridge::test
