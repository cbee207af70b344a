// The pipeline file, as `kbridge validate` reads it: YAML, ${VAR} interpolation, --set overrides,
// the top-level option tables and every connector's option table (building connectors does no
// I/O). Leading lines "#set PATH=VALUE" become --set overrides. The loader reads a path, so each
// input is written to one temporary file. A ConfigError is the documented refusal; any other
// exception escaping, a crash, a leak or undefined behaviour is a finding.
#include "config/config.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cli/pipelines.h"

namespace {

std::string g_path;

void write_file(std::string_view text) {
    FILE* f = std::fopen(g_path.c_str(), "wb");
    if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) {
        std::perror(g_path.c_str());
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/kbridge-fuzz-config-XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) {
        std::perror("mkstemp");
        std::abort();
    }
    close(fd);
    g_path = pattern;
    std::atexit([] { unlink(g_path.c_str()); });
    // Variables the seeds refer to; others are unset, which is an error without a default.
    setenv("KBF_HOST", "localhost", 1);
    setenv("KBF_PORT", "6379", 1);
    setenv("KBF_EMPTY", "", 1);
    setenv("KBF_DOLLAR", "$x ${y} $$", 1);
    setenv("KBF_YAML", "{a: [1, 2]}", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> overrides;
    while (text.substr(0, 5) == "#set ") {
        const size_t end = text.find('\n');
        overrides.emplace_back(text.substr(5, end == std::string_view::npos ? end : end - 5));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    write_file(text);
    try {
        const kbridge::Config config = kbridge::load_config(g_path, overrides);
        kbridge::build_pipelines(config, {}, false, "", "");
        kbridge::build_pipelines(config, {}, true, "", "", true);  // --once --dry-run
        kbridge::uses_embedded_kafka(config);
    } catch (const kbridge::ConfigError&) {
        // the documented refusal, with its place in the file
    }
    return 0;
}
