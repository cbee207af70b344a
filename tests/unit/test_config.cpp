#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "cli/pipelines.h"
#include "config/config.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

// Loads `text` as a pipeline file and builds its connectors; returns the error message or "".
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    TempDir dir;
    const std::string path = dir.file("p.yaml");
    write_file(path, text);
    try {
        const Config config = load_config(path, overrides);
        build_pipelines(config, {}, false, "", "");
        return "";
    } catch (const ConfigError& e) {
        const std::string message = e.what();
        const auto at = message.find("p.yaml");
        return at == std::string::npos ? message : message.substr(at);
    }
}

const std::string kGood =
    "version: 1\n"
    "pipelines:\n"
    "  - name: a\n"
    "    source:\n"
    "      type: redis_list\n"
    "      key: k\n"
    "    sink:\n"
    "      type: kafka\n"
    "      topic: t\n";

std::string with_source_line(const std::string& line) {
    std::string text = kGood;
    text.insert(text.find("      key: k\n") + 13, line + "\n");
    return text;
}

TEST(Config, EveryExampleConfigValidates) {
    setenv("PG_URL", "postgresql://localhost/x", 0);
    int seen = 0;
    for (const auto& entry : std::filesystem::directory_iterator(KBRIDGE_SOURCE_DIR "/configs")) {
        if (entry.path().extension() != ".yaml") continue;
        ++seen;
        try {
            const Config config = load_config(entry.path().string(), {});
            EXPECT_FALSE(build_pipelines(config, {}, false, "", "").empty()) << entry.path();
        } catch (const std::exception& e) {
            ADD_FAILURE() << entry.path() << ": " << e.what();
        }
    }
    EXPECT_GE(seen, 3);
}

TEST(Config, AGoodFileHasNoError) { EXPECT_EQ(error_of(kGood), ""); }

TEST(Config, UnknownOptionNamesLineColumnAndANearMiss) {
    EXPECT_EQ(error_of(with_source_line("      kye: x")),
              "p.yaml:7:7: pipelines[0].source: unknown option 'kye' (did you mean 'key'?)");
}

TEST(Config, UnknownOptionFarFromAnyListsTheKnownOnes) {
    const std::string e = error_of(with_source_line("      zzzzzzzz: x"));
    EXPECT_EQ(e.rfind("p.yaml:7:7: pipelines[0].source: unknown option 'zzzzzzzz' (known: type, key,", 0), 0u) << e;
}

TEST(Config, WrongTypeNamesTheValue) {
    EXPECT_EQ(error_of(with_source_line("      batch_size: lots")),
              "p.yaml:7:19: pipelines[0].source.batch_size: expected an integer");
}

TEST(Config, ChoiceOutsideItsValues) {
    EXPECT_EQ(error_of(with_source_line("      pop: middle")),
              "p.yaml:7:12: pipelines[0].source.pop: 'middle' is not one of: left, right");
}

TEST(Config, UnknownConnectorTypeSuggestsTheNearest) {
    std::string text = kGood;
    text.replace(text.find("redis_list"), 10, "redis_lst");
    EXPECT_EQ(error_of(text), "p.yaml:5:13: pipelines[0].source.type: unknown source type 'redis_lst' (did you mean 'redis_list'?)");
}

TEST(Config, MissingRequiredOption) {
    std::string text = kGood;
    text.erase(text.find("      topic: t\n"));
    EXPECT_EQ(error_of(text), "p.yaml:8:7: pipelines[0].sink: missing required option 'topic'");
}

TEST(Config, UnsetEnvironmentVariableWithoutDefault) {
    unsetenv("KBRIDGE_TEST_UNSET");
    EXPECT_EQ(error_of(with_source_line("      consumer: ${KBRIDGE_TEST_UNSET}")),
              "p.yaml:7:17: environment variable 'KBRIDGE_TEST_UNSET' is not set and has no default "
              "(write ${KBRIDGE_TEST_UNSET:-default})");
}

TEST(Config, EnvironmentVariablesAndDefaultsExpand) {
    setenv("KBRIDGE_TEST_SET", "from-env", 1);
    unsetenv("KBRIDGE_TEST_UNSET");
    EXPECT_EQ(expand_env("a-${KBRIDGE_TEST_SET}-${KBRIDGE_TEST_UNSET:-dflt}-$${x}", Mark{}), "a-from-env-dflt-${x}");
}

TEST(Config, YamlSyntaxErrorHasItsPlace) {
    const std::string e = error_of("version: 1\npipelines:\n  - name: [a\n");
    EXPECT_EQ(e.rfind("p.yaml:4:1:", 0), 0u) << e;
}

TEST(Config, TemplateErrorNamesTheOption) {
    std::string text = kGood + "      key: \"{user_id\"\n";
    EXPECT_EQ(error_of(text), "p.yaml:10:12: pipelines[0].sink.key: unclosed '{' in template '{user_id'");
}

TEST(Config, DuplicatePipelineNames) {
    std::string text = kGood + kGood.substr(kGood.find("  - name: a"));
    EXPECT_EQ(error_of(text), "p.yaml:10:11: pipelines[1].name: duplicate pipeline name 'a'");
}

TEST(Config, UnsupportedVersion) {
    std::string text = kGood;
    text.replace(0, 10, "version: 2");
    EXPECT_EQ(error_of(text), "p.yaml:1:10: version: unsupported version (this kbridge reads version 1)");
}

TEST(Config, UnknownTopLevelKey) {
    EXPECT_EQ(error_of("pipelnes: []\n" + kGood), "p.yaml:1:1: unknown option 'pipelnes' (did you mean 'pipelines'?)");
}

TEST(Config, SetOverridesByPipelineNameAndChecksTheValue) {
    EXPECT_EQ(error_of(kGood, {"pipelines.a.source.batch_size=5000"}), "");
    EXPECT_EQ(error_of(kGood, {"pipelines.a.source.batch_size=many"}),
              "--set: pipelines[0].source.batch_size: expected an integer");
}

// Found by tests/fuzz/config.cpp: a value that is not YAML escaped as YAML::ParserException.
TEST(Config, SetValueThatIsNoYamlIsAConfigError) {
    EXPECT_EQ(error_of(kGood, {"pipelines.a.sink.topic=\"\\q\""}),
              "--set pipelines.a.sink.topic=\"\\q\": unknown escape character: q");
    EXPECT_EQ(error_of(kGood, {"pipelines.a.sink.topic=[a"})
                  .rfind("--set pipelines.a.sink.topic=[a: ", 0),
              0u);
}

// Found by tests/fuzz/config.cpp: a key that is a list or a map escaped as
// YAML::TypedBadConversion (an abort in validate and run).
TEST(Config, AKeyThatIsAListOrAMapIsAConfigError) {
    EXPECT_EQ(error_of("[a]: 1\n" + kGood),
              "p.yaml:1:1: a key must be a plain string, not a list or a map");
    EXPECT_EQ(error_of(with_source_line("      {x: 1}: 2")),
              "p.yaml:7:7: pipelines[0].source: a key must be a plain string, not a list or a map");
    EXPECT_EQ(error_of("kafka:\n  properties:\n    [a, b]: c\n" + kGood),
              "p.yaml:3:5: kafka.properties: a key must be a plain string, not a list or a map");
}

// std::regex recursed once per character: a default of 50 KB, or a pipeline name of 300 KB,
// overflowed the stack (validate died with SIGSEGV).
TEST(Config, LongDefaultsAndNamesDoNotOverflowTheStack) {
    const std::string long_text(1 << 20, 'x');
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-" + long_text + "}", Mark{}), long_text);
    std::string text = kGood;
    text.replace(text.find("name: a"), 7, "name: " + long_text);
    EXPECT_EQ(error_of(text), "");
}

TEST(Config, ReferencesAreReadAsBefore) {
    unsetenv("KBRIDGE_TEST_UNSET");
    setenv("KBRIDGE_TEST_SET", "v", 1);
    EXPECT_EQ(expand_env("$x $ ${1A} ${A B} ${KBRIDGE_TEST_SET", Mark{}),
              "$x $ ${1A} ${A B} ${KBRIDGE_TEST_SET");
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-x${B}}-$$${KBRIDGE_TEST_SET}$", Mark{}),
              "x${B}-$v$");
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-}${KBRIDGE_TEST_SET:-d}", Mark{}), "v");
}

TEST(Config, SetReachesDottedKafkaProperties) {
    TempDir dir;
    write_file(dir.file("p.yaml"), kGood);
    const Config config = load_config(dir.file("p.yaml"), {"kafka.properties.compression.type=zstd"});
    EXPECT_EQ(config.kafka.string_map("properties").at("compression.type"), "zstd");
}

TEST(Config, DurationsParse) {
    std::chrono::milliseconds ms{0};
    EXPECT_TRUE(parse_duration("30s", ms));
    EXPECT_EQ(ms.count(), 30000);
    EXPECT_TRUE(parse_duration("250ms", ms));
    EXPECT_EQ(ms.count(), 250);
    EXPECT_FALSE(parse_duration("fast", ms));
}

}  // namespace
}  // namespace kbridge::test
