// The cron recipe as shipped: scripts/kbridge.cron's job line run the way cron runs it, by
// /bin/sh under an empty environment (env -i) plus the file's own VAR=value lines, with only the
// documented environment file for the pipeline's endpoints. Its paths are moved into a temp dir;
// nothing else of the line changes.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "support/postgres.h"
#include "support/process.h"

namespace kbridge::test {
namespace {

struct CronFile {
    std::vector<std::string> variables;  // NAME=value, as cron puts them in the environment
    std::string command;                 // the job line without its schedule and user
};

CronFile parse_cron(const std::string& text) {
    CronFile out;
    std::istringstream in(text);
    std::string line;
    static const std::regex variable(R"(^[A-Z_]+=.*$)");
    // /etc/cron.d format: five schedule fields, the user, then the command.
    static const std::regex job(R"(^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(.*)$)");
    std::smatch m;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (std::regex_match(line, variable))
            out.variables.push_back(line);
        else if (std::regex_match(line, m, job))
            out.command = m[1];
    }
    return out;
}

std::string moved(std::string text, const std::string& root) {
    for (const char* dir : {"/etc/kbridge", "/var/lib/kbridge", "/var/log/kbridge"}) {
        const std::string from = dir;
        for (size_t at = text.find(from); at != std::string::npos;
             at = text.find(from, at + root.size() + from.size()))
            text.insert(at, root);
    }
    return text;
}

TEST(Cron, TheDocumentedLineRunsUnderAnEmptyEnvironment) {
    TempDir dir;
    PostgresServer pg{dir};
    pg.exec("CREATE TABLE conn_fdw (id serial PRIMARY KEY, name text)");
    pg.exec("INSERT INTO conn_fdw (name) SELECT 'n' || g FROM generate_series(1, 25) g");

    const CronFile cron = parse_cron(read_file(KBRIDGE_SOURCE_DIR "/scripts/kbridge.cron"));
    ASSERT_FALSE(cron.command.empty());
    const std::string root = dir.file("root");
    for (const char* sub : {"/etc/kbridge", "/var/lib/kbridge", "/var/log/kbridge", "/usr/bin"})
        std::filesystem::create_directories(root + sub);
    // What the package installs, and what the recipe says to put in /etc/kbridge.
    std::filesystem::create_symlink(KBRIDGE_BINARY, root + "/usr/bin/kbridge");
    std::filesystem::copy_file(KBRIDGE_SOURCE_DIR "/configs/postgres-to-kafka.yaml",
                               root + "/etc/kbridge/postgres-to-kafka.yaml");
    write_file(root + "/etc/kbridge/conn_fdw.env",
               "KAFKA_BROKERS=embedded\nPG_URL=" + pg.url() + "\n");

    std::vector<std::string> argv = {"env", "-i"};
    for (const auto& v : cron.variables) {
        // Cron's PATH, with the package's /usr/bin in the temp root first.
        if (v.rfind("PATH=", 0) == 0)
            argv.push_back("PATH=" + root + "/usr/bin:" + v.substr(5));
        else
            argv.push_back(moved(v, root));
    }
    argv.insert(argv.end(), {"/bin/sh", "-c", moved(cron.command, root)});
    Process p(argv, dir.path().string());
    ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err() << p.out();

    const std::string stats = read_file(root + "/var/lib/kbridge/conn_fdw.stats.json");
    EXPECT_NE(stats.find("\"name\":\"conn_fdw\",\"read\":25,\"written\":25,"), std::string::npos)
        << stats;
    EXPECT_NE(stats.find("\"exit_code\":0"), std::string::npos) << stats;
    // The state dir came from the file's STATE_DIRECTORY: the next run starts after id 25.
    EXPECT_TRUE(std::filesystem::exists(root + "/var/lib/kbridge/conn_fdw.position"));
    EXPECT_TRUE(std::filesystem::exists(root + "/var/log/kbridge/conn_fdw.log"));
}

}  // namespace
}  // namespace kbridge::test
