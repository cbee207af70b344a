#include <spdlog/spdlog.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "cli/commands.h"
#include "cli/pipelines.h"
#include "connectors/kafka/embedded.h"
#include "core/secrets.h"

namespace kbridge {
namespace {

// One line per connector: it connects and finds what it needs (tables, columns, keys, topics).
bool check_one(const std::string& pipeline, const char* role, const std::string& what,
               const std::function<void()>& check) {
    try {
        check();
        std::printf("ok    %s: %s %s\n", pipeline.c_str(), role, what.c_str());
        return true;
    } catch (const std::exception& e) {
        std::printf("FAIL  %s: %s %s: %s\n", pipeline.c_str(), role, what.c_str(),
                    scrub_secrets(e.what()).c_str());
        return false;
    }
}

}  // namespace

int check_command(const std::string& path, const std::vector<std::string>& overrides) {
    std::unique_ptr<EmbeddedKafka> embedded;
    std::vector<BuiltPipeline> built;
    try {
        const Config config = load_config(path, overrides);
        std::string bootstraps;
        if (uses_embedded_kafka(config)) {
            embedded = std::make_unique<EmbeddedKafka>(3);
            bootstraps = embedded->bootstraps();
        }
        built = build_pipelines(config, {}, true, "", bootstraps, true);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitUsage;
    }
    spdlog::set_level(spdlog::level::off);  // the lines below say it all
    bool ok = true;
    for (auto& b : built) {
        ok &= check_one(b.name, "source", b.source->describe(), [&] { b.source->check(); });
        ok &= check_one(b.name, "sink", b.sink->describe(), [&] { b.sink->check(); });
        if (b.dead_letter)
            ok &= check_one(b.name, "dead letter", b.dead_letter->describe(),
                            [&] { b.dead_letter->check(); });
    }
    std::fflush(stdout);
    return ok ? kExitOk : kExitFailure;
}

}  // namespace kbridge
