#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/pipelines.h"
#include "connectors/kafka/embedded.h"
#include "core/log.h"
#include "core/metrics_server.h"
#include "core/notify.h"
#include "core/report.h"
#include "core/secrets.h"
#include "core/shutdown.h"
#include "core/wait.h"
#include "state/lock.h"
#include "state/redis_lock.h"
#include "state/state_dir.h"

namespace kbridge {
namespace {

void print_summary(const PipelineRunner& runner, int code) {
    const PipelineStats& s = runner.stats();
    const double rate = s.seconds > 0 ? (s.delivered + s.dead_lettered) / s.seconds : 0;
    if (json_logs()) {
        std::fprintf(stderr,
                     "{\"summary\":true,\"pipeline\":\"%s\",\"read\":%llu,\"delivered\":%llu,"
                     "\"dead_lettered\":%llu,\"filtered\":%llu,\"seconds\":%.3f,\"records_per_"
                     "second\":%.0f,\"exit_code\":%d}\n",
                     runner.name().c_str(), static_cast<unsigned long long>(s.read.load()),
                     static_cast<unsigned long long>(s.delivered.load()),
                     static_cast<unsigned long long>(s.dead_lettered.load()),
                     static_cast<unsigned long long>(s.filtered.load()), s.seconds, rate, code);
    } else {
        std::fprintf(
            stderr,
            "%s: read %llu, delivered %llu, dead-lettered %llu%s in %.2f s (%.0f records/s)%s\n",
            runner.name().c_str(), static_cast<unsigned long long>(s.read.load()),
            static_cast<unsigned long long>(s.delivered.load()),
            static_cast<unsigned long long>(s.dead_lettered.load()),
            s.filtered ? (", filtered " + std::to_string(s.filtered.load())).c_str() : "",
            s.seconds, rate, code ? ", FAILED" : "");
    }
}

// While the pipelines run: tell systemd when all are connected, how far they are, that they are
// alive (only while every run loop keeps turning) and when they stop.
void supervise(const std::vector<std::unique_ptr<PipelineRunner>>& runners,
               const std::atomic<size_t>& finished) {
    SystemdNotifier systemd;
    bool ready = false, stopping = false;
    int64_t last_status = 0, last_pet = 0;
    while (finished.load() < runners.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const int64_t now = PipelineRunner::steady_ms();
        if (!ready && std::all_of(runners.begin(), runners.end(),
                                  [](const auto& r) { return r->stats().connected.load(); })) {
            systemd.ready();
            ready = true;
        }
        if (!stopping && stop_requested().load()) {
            systemd.stopping();
            stopping = true;
        }
        if (now - last_status >= 2000) {
            std::string status;
            for (const auto& r : runners)
                status += (status.empty() ? "" : "; ") + r->name() + ": " +
                          std::to_string(r->stats().delivered.load()) + " written, " +
                          std::to_string(r->stats().dead_lettered.load()) + " dead-lettered";
            systemd.status(status);
            last_status = now;
        }
        const int64_t interval = systemd.watchdog_interval().count();
        const bool alive = std::all_of(runners.begin(), runners.end(), [&](const auto& r) {
            return now - r->stats().heartbeat_ms.load() < std::max<int64_t>(2 * interval, 1000);
        });
        if (interval > 0 && alive && now - last_pet >= interval) {
            systemd.watchdog();
            last_pet = now;
        }
    }
}

}  // namespace

int run_command(const RunArgs& args) {
    std::unique_ptr<EmbeddedKafka> embedded;
    std::vector<std::unique_ptr<PipelineLock>> locks;
    std::vector<std::unique_ptr<RedisLock>> redis_locks;
    std::vector<std::unique_ptr<PipelineRunner>> runners;
    // Before anything connects (the lock's Redis too): a signal cuts any wait short.
    install_stop_handlers();
    try {
        const Config config = load_config(args.config, args.overrides);
        std::string bootstraps;
        if (uses_embedded_kafka(config)) {
            embedded = std::make_unique<EmbeddedKafka>(3);
            bootstraps = embedded->bootstraps();
            spdlog::info("embedded Kafka cluster listening on {}", bootstraps);
        }
        const std::string state_dir = resolve_state_dir(args.state_dir);
        auto built =
            build_pipelines(config, args.pipelines, args.once, state_dir, bootstraps, args.dry_run);
        try {
            for (const auto& b : built) {
                const std::string worker = b.source->worker();
                const std::string name =
                    worker.empty() || worker == b.name ? b.name : b.name + "@" + worker;
                locks.push_back(std::make_unique<PipelineLock>(state_dir, name));
                if (config.lock) {
                    RedisUrl url;
                    try {
                        url = parse_redis_url(config.lock->str("redis"));
                    } catch (const std::invalid_argument& e) {
                        throw config.lock->error("redis", e.what());
                    }
                    redis_locks.push_back(std::make_unique<RedisLock>(
                        url, name, config.lock->duration("ttl"),
                        connect_timeout_option(*config.lock, *config.lock)));
                }
            }
        } catch (const LockHeld& e) {
            std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
            return kExitLocked;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
            return kExitFailure;
        }
        RunSettings settings;
        settings.once = args.once || args.dry_run;
        if (args.dry_run) settings.dry_run_records = 10;
        settings.state_dir = state_dir;
        settings.progress =
            args.once && !args.dry_run && built.size() == 1 && isatty(STDERR_FILENO);
        for (auto& b : built)
            runners.push_back(std::make_unique<PipelineRunner>(b.name, std::move(b.source),
                                                               std::move(b.sink),
                                                               std::move(b.dead_letter), settings));
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitUsage;
    }
    std::unique_ptr<MetricsServer> metrics;
    try {
        if (args.metrics_port > 0)
            metrics = std::make_unique<MetricsServer>(args.metrics_port, runners);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
    std::vector<int> codes(runners.size(), kExitOk);
    std::vector<std::thread> threads;
    std::atomic<size_t> finished{0};
    for (size_t i = 0; i < runners.size(); ++i)
        threads.emplace_back([&, i] {
            codes[i] = runners[i]->run(stop_requested());
            ++finished;
        });
    supervise(runners, finished);
    for (auto& t : threads) t.join();
    int code = kExitOk;
    for (size_t i = 0; i < runners.size(); ++i) {
        print_summary(*runners[i], codes[i]);
        if (codes[i] != kExitOk) code = kExitFailure;
    }
    try {
        if (!args.metrics_file.empty())
            write_file_atomically(args.metrics_file, prometheus_text(runners));
        if (!args.stats_json.empty())
            write_file_atomically(args.stats_json, stats_json(runners, codes));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        code = kExitFailure;
    }
    metrics.reset();  // it reads the runners
    for (const auto& lock : redis_locks)
        if (lock->lost()) code = kExitFailure;
    runners.clear();  // flush producers before the embedded cluster goes away
    return code;
}

int validate_command(const std::string& path, const std::vector<std::string>& overrides) {
    try {
        const Config config = load_config(path, overrides);
        const auto built = build_pipelines(config, {}, false, "", "");
        if (config.lock) {
            try {
                parse_redis_url(config.lock->str("redis"));
            } catch (const std::invalid_argument& e) {
                throw config.lock->error("redis", e.what());
            }
        }
        std::printf("%s: ok (%zu pipeline%s)\n", config.file.c_str(), built.size(),
                    built.size() == 1 ? "" : "s");
        return kExitOk;
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitUsage;
    } catch (const std::exception& e) {  // a connector that failed otherwise while being built
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
}

}  // namespace kbridge
