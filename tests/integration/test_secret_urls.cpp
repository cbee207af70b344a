// Passwords in odd URLs never reach any output: validate, check, run --once, --dry-run, trace
// logs as text and JSON, --stats-json, --metrics-file and the summary. The endpoints are unused
// local ports, so every connection fails at once and its error text (libpq's, hiredis's,
// librdkafka's) is printed too.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/process.h"

namespace kbridge::test {
namespace {

struct SecretForm {
    std::string name;
    std::string yaml;                  // the pipeline's source and sink blocks
    std::vector<std::string> secrets;  // the password and the pieces a mis-parse would show
};

std::vector<SecretForm> forms(int pg, int redis, int kafka) {
    const std::string pg_at = "@127.0.0.1:" + std::to_string(pg) + "/postgres";
    const std::string redis_at = "@127.0.0.1:" + std::to_string(redis) + "/0";
    auto pg_source = [](const std::string& url) {
        return "    source: {type: postgres_table, table: t, incrementing_column: id, url: \"" +
               url + "\"}\n    sink: {type: stdout}\n";
    };
    auto redis_source = [](const std::string& url) {
        return "    source: {type: redis_list, key: k, url: \"" + url +
               "\"}\n    sink: {type: stdout}\n";
    };
    return {
        {"pg_at_in_password",
         pg_source("postgresql://secretuser:Wrong@Secret6" + pg_at),
         {"Wrong@Secret6", "Secret6"}},
        {"pg_delimiters",
         pg_source("postgresql://secretuser:Hunter:42/Vault#99" + pg_at),
         {"Hunter:42/Vault#99", "Hunter", "Vault#99", "42/Vault"}},
        {"pg_percent_encoded",
         pg_source("postgresql://secretuser:Perc%40Ent%3AKey77" + pg_at),
         {"Perc@Ent:Key77", "Perc%40Ent%3AKey77", "Ent:Key77"}},
        {"pg_query_password",
         pg_source("postgresql://secretuser" + pg_at + "?password=Query%23Pass55&sslmode=disable"),
         {"Query#Pass55", "Query%23Pass55", "Pass55"}},
        {"pg_question_mark",
         pg_source("postgresql://secretuser:Ask?Me@Later44" + pg_at),
         {"Ask?Me@Later44", "Later44"}},
        {"pg_conninfo_quoted",
         pg_source("host=127.0.0.1 port=" + std::to_string(pg) +
                   " user=secretuser password='Quoted Pass\\\\'Word88' dbname=postgres"),
         {"Quoted Pass'Word88", "Word88", "Quoted Pass"}},
        {"redis_password_only",
         redis_source("redis://:Redis@Only77" + redis_at),
         {"Redis@Only77", "Only77"}},
        {"redis_user_password",
         redis_source("redis://appuser:Redis:User/99" + redis_at),
         {"Redis:User/99", "User/99"}},
        {"redis_bare_password", redis_source("redis://SoloRedis88" + redis_at), {"SoloRedis88"}},
        {"kafka_sasl",
         "    source: {type: stdin}\n    sink:\n      type: kafka\n      topic: t\n"
         "      brokers: 127.0.0.1:" +
             std::to_string(kafka) +
             "\n      connect_timeout: 1s\n"
             "      properties: {security.protocol: sasl_plaintext, sasl.mechanism: PLAIN, "
             "sasl.username: kuser, sasl.password: 'Kafka#Sasl33', ssl.key.password: KeyPass66, "
             "debug: 'broker,security,conf'}\n",
         {"Kafka#Sasl33", "Sasl33", "KeyPass66"}},
    };
}

class SecretUrls : public ::testing::Test {
  protected:
    TempDir dir;
    std::string outputs;  // everything printed or written, to be searched

    RunResult kbridge(const std::vector<std::string>& args) {
        Process p(
            [&] {
                std::vector<std::string> argv{KBRIDGE_BINARY};
                argv.insert(argv.end(), args.begin(), args.end());
                return argv;
            }(),
            dir.path().string(), {}, stdin_file());
        const int code = p.wait(std::chrono::seconds(60));
        outputs += p.out() + p.err();
        return {code, p.out(), p.err()};
    }
    std::string stdin_file() {
        const std::string path = dir.file("stdin.txt");
        if (!std::filesystem::exists(path)) write_file(path, "{\"id\":1}\n");
        return path;
    }
    void collect(const std::string& path) {
        ASSERT_TRUE(std::filesystem::exists(path)) << path;
        outputs += read_file(path);
    }
};

TEST_F(SecretUrls, NoPasswordInAnyOutput) {
    const auto all = forms(free_port(), free_port(), free_port());
    std::string config = "version: 1\npipelines:\n";
    for (const auto& form : all) config += "  - name: " + form.name + "\n" + form.yaml;
    const std::string path = dir.file("p.yaml");
    write_file(path, config);

    const RunResult validated = kbridge({"validate", path});
    EXPECT_EQ(validated.code, 0) << validated.err;
    const RunResult checked = kbridge({"check", path});
    EXPECT_EQ(checked.code, 1);
    for (const auto& form : all)
        EXPECT_NE(checked.out.find("FAIL  " + form.name + ": "), std::string::npos) << checked.out;
    // libpq's and hiredis's own words are shown, scrubbed, not dropped.
    EXPECT_NE(checked.out.find("Connection refused"), std::string::npos) << checked.out;
    EXPECT_NE(checked.out.find("secretuser:***@127.0.0.1"), std::string::npos) << checked.out;

    for (const std::string format : {"text", "json"}) {
        const std::string stats = dir.file("stats-" + format + ".json");
        const std::string metrics = dir.file("metrics-" + format + ".prom");
        const RunResult run = kbridge({"run", path, "--once", "--log-level", "trace",
                                       "--log-format", format, "--state-dir", dir.file("state"),
                                       "--stats-json", stats, "--metrics-file", metrics});
        EXPECT_EQ(run.code, 1) << run.err;
        EXPECT_NE(run.err.find("pg_at_in_password"), std::string::npos) << run.err;
        collect(stats);
        collect(metrics);
    }
    const RunResult dry = kbridge(
        {"run", path, "--dry-run", "--log-level", "trace", "--state-dir", dir.file("state")});
    EXPECT_NE(dry.code, 0);

    // The lock's URL is read by run alone, before any pipeline starts.
    const std::string locked = dir.file("locked.yaml");
    write_file(locked, "lock: {redis: \"redis://locker:Lock@Pass22@127.0.0.1:" +
                           std::to_string(free_port()) + "/0\"}\n" + config);
    const RunResult lock_run = kbridge(
        {"run", locked, "--once", "--log-level", "trace", "--state-dir", dir.file("state")});
    EXPECT_EQ(lock_run.code, 1) << lock_run.err;
    EXPECT_NE(lock_run.err.find("redis://locker:***@127.0.0.1"), std::string::npos) << lock_run.err;

    std::vector<std::string> secrets{"Lock@Pass22", "Pass22"};
    for (const auto& form : all)
        secrets.insert(secrets.end(), form.secrets.begin(), form.secrets.end());
    for (const auto& secret : secrets)
        EXPECT_EQ(outputs.find(secret), std::string::npos)
            << "'" << secret << "' in:\n"
            << outputs.substr(outputs.find(secret) < 300 ? 0 : outputs.find(secret) - 300, 600);
}

}  // namespace
}  // namespace kbridge::test
