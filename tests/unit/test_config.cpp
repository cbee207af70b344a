#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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
        std::string message = e.what();
        const std::string prefix = dir.path().string() + "/";
        for (auto at = message.find(prefix, 1); at != std::string::npos;
             at = message.find(prefix, 1))
            message.erase(at, prefix.size());  // other places named in the message
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

TEST(Config, AGoodFileHasNoError) {
    EXPECT_EQ(error_of(kGood), "");
}

TEST(Config, UnknownOptionNamesLineColumnAndANearMiss) {
    EXPECT_EQ(error_of(with_source_line("      kye: x")),
              "p.yaml:7:7: pipelines[0].source: unknown option 'kye' (did you mean 'key'?)");
}

TEST(Config, UnknownOptionFarFromAnyListsTheKnownOnes) {
    const std::string e = error_of(with_source_line("      zzzzzzzz: x"));
    EXPECT_EQ(
        e.rfind("p.yaml:7:7: pipelines[0].source: unknown option 'zzzzzzzz' (known: type, key,", 0),
        0u)
        << e;
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
    EXPECT_EQ(error_of(text),
              "p.yaml:5:13: pipelines[0].source.type: unknown source type 'redis_lst' (did you "
              "mean 'redis_list'?)");
}

TEST(Config, MissingRequiredOption) {
    std::string text = kGood;
    text.erase(text.find("      topic: t\n"));
    EXPECT_EQ(error_of(text), "p.yaml:8:7: pipelines[0].sink: missing required option 'topic'");
}

TEST(Config, UnsetEnvironmentVariableWithoutDefault) {
    unsetenv("KBRIDGE_TEST_UNSET");
    EXPECT_EQ(
        error_of(with_source_line("      consumer: ${KBRIDGE_TEST_UNSET}")),
        "p.yaml:7:17: environment variable 'KBRIDGE_TEST_UNSET' is not set and has no default "
        "(write ${KBRIDGE_TEST_UNSET:-default})");
}

TEST(Config, EnvironmentVariablesAndDefaultsExpand) {
    setenv("KBRIDGE_TEST_SET", "from-env", 1);
    unsetenv("KBRIDGE_TEST_UNSET");
    EXPECT_EQ(expand_env("a-${KBRIDGE_TEST_SET}-${KBRIDGE_TEST_UNSET:-dflt}-$${x}", Mark{}),
              "a-from-env-dflt-${x}");
}

TEST(Config, YamlSyntaxErrorHasItsPlace) {
    const std::string e = error_of("version: 1\npipelines:\n  - name: [a\n");
    EXPECT_EQ(e.rfind("p.yaml:4:1:", 0), 0u) << e;
}

TEST(Config, TemplateErrorNamesTheOption) {
    std::string text = kGood + "      key: \"{user_id\"\n";
    EXPECT_EQ(error_of(text),
              "p.yaml:10:12: pipelines[0].sink.key: unclosed '{' in template '{user_id'");
}

TEST(Config, DuplicatePipelineNames) {
    std::string text = kGood + kGood.substr(kGood.find("  - name: a"));
    EXPECT_EQ(error_of(text), "p.yaml:10:11: pipelines[1].name: duplicate pipeline name 'a'");
}

TEST(Config, UnsupportedVersion) {
    std::string text = kGood;
    text.replace(0, 10, "version: 2");
    EXPECT_EQ(error_of(text),
              "p.yaml:1:10: version: unsupported version (this kbridge reads version 1)");
}

TEST(Config, UnknownTopLevelKey) {
    EXPECT_EQ(error_of("pipelnes: []\n" + kGood),
              "p.yaml:1:1: unknown option 'pipelnes' (did you mean 'pipelines'?)");
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
    EXPECT_EQ(expand_env("$x $ $", Mark{}), "$x $ $");
    for (const char* bad : {"${1A}", "${A B}", "${KBRIDGE_TEST_SET", "${}"})
        EXPECT_THROW(expand_env(bad, Mark{}), ConfigError) << bad;
    // Long texts are scanned, not matched by a recursive regex.
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-" + std::string(300000, 'd') + "}", Mark{}).size(),
              300000u);
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-x${B}}-$$${KBRIDGE_TEST_SET}$", Mark{}),
              "x${B}-$v$");
    EXPECT_EQ(expand_env("${KBRIDGE_TEST_UNSET:-}${KBRIDGE_TEST_SET:-d}", Mark{}), "v");
}

TEST(Config, SetReachesDottedKafkaProperties) {
    TempDir dir;
    write_file(dir.file("p.yaml"), kGood);
    const Config config =
        load_config(dir.file("p.yaml"), {"kafka.properties.compression.type=zstd"});
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

// load_config's message for a file that cannot be read, or "" when it loads.
std::string load_error(const std::string& path) {
    try {
        load_config(path, {});
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

TEST(ConfigFile, ADirectoryIsRefusedWithTheOsReason) {
    TempDir dir;
    EXPECT_EQ(load_error(dir.path().string()),
              dir.path().string() + ": cannot read the pipeline file: Is a directory");
}

TEST(ConfigFile, AMissingFileAndAFileUnderAFileSayWhy) {
    TempDir dir;
    EXPECT_EQ(load_error(dir.file("nope.yaml")),
              dir.file("nope.yaml") + ": cannot read the pipeline file: No such file or directory");
    write_file(dir.file("plain"), kGood);
    EXPECT_EQ(load_error(dir.file("plain") + "/p.yaml"),
              dir.file("plain") + "/p.yaml: cannot read the pipeline file: Not a directory");
}

TEST(ConfigFile, AnUnreadableFileSaysPermissionDenied) {
    TempDir dir;
    const std::string path = dir.file("p.yaml");
    write_file(path, kGood);
    chmod(path.c_str(), 0);
    if (access(path.c_str(), R_OK) == 0) GTEST_SKIP() << "running as root: every file is readable";
    EXPECT_EQ(load_error(path), path + ": cannot read the pipeline file: Permission denied");
}

TEST(ConfigFile, NonUtf8BytesArePlaced) {
    EXPECT_EQ(error_of("version: 1\npipelines:\n  - name: \xe9t\xe9\n"),
              "p.yaml:3:11: not UTF-8 text (save the pipeline file as UTF-8)");
    EXPECT_EQ(error_of("version: 1\n# \xc0\xaf overlong\n"),
              "p.yaml:2:3: not UTF-8 text (save the pipeline file as UTF-8)");
    EXPECT_EQ(error_of(with_source_line("      consumer: \"caf\xc3\xa9\"")), "");
}

// Nine anchors, each a list of nine aliases of the one before: 9^9 nodes through aliases.
std::string billion_laughs() {
    std::string text = "a0: &a0 [\"lol\"]\n";
    for (int level = 1; level <= 9; ++level) {
        const std::string prev = "*a" + std::to_string(level - 1);
        text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
        for (int k = 0; k < 9; ++k) text += (k ? ", " : "") + prev;
        text += "]\n";
    }
    return text + kGood;
}

TEST(ConfigFile, NestedAliasesAreRefusedNotExpanded) {
    const std::string bomb = billion_laughs();
    EXPECT_LT(bomb.size(), 1000u);
    const std::string e = error_of(bomb);
    EXPECT_NE(
        e.find("aliases expand to more than 10000 nodes (nested anchors?); refusing the file"),
        std::string::npos)
        << e;
    EXPECT_EQ(e.rfind("p.yaml:", 0), 0u) << e;
}

TEST(ConfigFile, AnAliasInsideItsOwnAnchorAndDeepNestingAreRefused) {
    EXPECT_EQ(error_of("a: &a [1, *a]\n" + kGood),
              "p.yaml:1:4: an alias refers to a node that contains it");
    EXPECT_EQ(error_of(std::string(300, '[') + std::string(300, ']') + "\n"),
              "p.yaml:1:201: nested more than 200 levels deep");
}

TEST(ConfigFile, AliasesWithinTheLimitStillWork) {
    std::string text = kGood;
    text.replace(text.find("key: k"), 6, "key: &k jobs");
    text +=
        "  - name: b\n    source: {type: redis_list, key: *k}\n    sink: {type: kafka, topic: t}\n";
    EXPECT_EQ(error_of(text), "");
}

TEST(ConfigFile, AnAliasedValueIsExpandedOnce) {
    TempDir dir;
    std::string text = kGood;
    text.replace(text.find("key: k"), 6, "key: &k \"$${literal}\"");
    text +=
        "  - name: b\n    source: {type: redis_list, key: *k}\n    sink: {type: kafka, topic: t}\n";
    write_file(dir.file("p.yaml"), text);
    const Config config = load_config(dir.file("p.yaml"), {});
    EXPECT_EQ(config.pipelines[1].source.node["key"].Scalar(), "${literal}");
}

TEST(ConfigFile, DuplicateKeysNameBothPlaces) {
    EXPECT_EQ(error_of(kGood + "      topic: u\n"),
              "p.yaml:10:7: duplicate key 'topic' (first at p.yaml:9:7)");
    EXPECT_EQ(error_of("version: 1\n" + kGood),
              "p.yaml:2:1: duplicate key 'version' (first at p.yaml:1:1)");
    EXPECT_EQ(error_of(with_source_line("      properties: {a: 1, b: 2, a: 3}")),
              "p.yaml:7:32: duplicate key 'a' (first at p.yaml:7:20)");
}

TEST(ConfigFile, UnclosedOrInvalidVariableIsAnError) {
    EXPECT_EQ(error_of(with_source_line("      consumer: ${UNCLOSED")),
              "p.yaml:7:17: '${' without a closing '}' in '${UNCLOSED' (write $${ for a literal "
              "'${')");
    EXPECT_EQ(error_of(with_source_line("      consumer: a-${1x}")),
              "p.yaml:7:17: '${1x}': '1x' is not an environment variable name (write $${ for a "
              "literal '${')");
    EXPECT_EQ(expand_env("cost: $5 and $${x} and ${KBRIDGE_TEST_UNSET2:-a}", Mark{}),
              "cost: $5 and ${x} and a");
}

std::string with_topic(const std::string& topic) {
    std::string text = kGood;
    text.replace(text.find("topic: t"), 8, "topic: \"" + topic + "\"");
    return text;
}

TEST(ConfigFile, StaticTopicNamesFollowKafkasRules) {
    EXPECT_EQ(error_of(with_topic("bad topic!")),
              "p.yaml:9:14: pipelines[0].sink.topic: 'bad topic!': a topic name may only contain "
              "ASCII letters, digits, '.', '_' and '-' (not ' ')");
    EXPECT_EQ(error_of(with_topic("..")),
              "p.yaml:9:14: pipelines[0].sink.topic: '..': a topic name may not be '.' or '..'");
    const std::string long_name(300, 'x');
    EXPECT_EQ(error_of(with_topic(long_name)),
              "p.yaml:9:14: pipelines[0].sink.topic: '" + long_name +
                  "': a topic name has at most 249 characters (this one has 300)");
    EXPECT_EQ(error_of(with_topic(std::string(249, 'x'))), "");
    EXPECT_EQ(error_of(with_topic("orders.{region}")), "");
    EXPECT_EQ(error_of(with_topic("{region}")), "");
    EXPECT_NE(error_of(with_topic("bad topic.{region}")).find("(not ' ')"), std::string::npos);
}

TEST(ConfigFile, DeadLetterAndSourceTopicsAreChecked) {
    EXPECT_EQ(error_of(kGood + "    dead_letter: {type: kafka, topic: 'dlq#1'}\n"),
              "p.yaml:10:39: pipelines[0].dead_letter.topic: 'dlq#1': a topic name may only "
              "contain ASCII letters, digits, '.', '_' and '-' (not '#')");
    const std::string source =
        "version: 1\npipelines:\n  - name: a\n    source: {type: kafka, topics: [ok, '.']}\n"
        "    sink: {type: stdout}\n";
    EXPECT_EQ(error_of(source),
              "p.yaml:4:35: pipelines[0].source.topics: '.': a topic name may not be '.' or '..'");
}

}  // namespace
}  // namespace kbridge::test
