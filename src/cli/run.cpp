#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/pipelines.h"
#include "connectors/kafka/embedded.h"
#include "core/log.h"
#include "core/metrics_server.h"
#include "core/notify.h"
#include "core/process_metrics.h"
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
                     "{\"summary\":true,\"pipeline\":\"%s\",\"source\":\"%s\",\"sink\":\"%s\","
                     "\"read\":%llu,\"delivered\":%llu,\"dead_lettered\":%llu,\"filtered\":%llu,"
                     "\"seconds\":%.3f,\"records_per_second\":%.0f,\"exit_code\":%d}\n",
                     runner.name().c_str(), runner.source_type().c_str(),
                     runner.sink_type().c_str(), static_cast<unsigned long long>(s.read.load()),
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

using Runners = std::vector<std::unique_ptr<PipelineRunner>>;

// What one reading of the pipeline file made: runners ready to start, and the locks they need
// that the process does not hold yet.
struct Generation {
    Runners runners;
    std::vector<std::string> lock_names;
    std::map<std::string, std::unique_ptr<PipelineLock>> new_locks;
    std::map<std::string, std::unique_ptr<RedisLock>> new_redis_locks;
};

// `kbridge run`: the pipelines of the file, read again on SIGHUP. Only the main thread changes
// the runners; the metrics thread reads them under `mutex_`.
class RunCommand {
  public:
    explicit RunCommand(const RunArgs& args) : args_(args) {}
    int run();

  private:
    Generation prepare();
    void adopt(Generation& next);
    std::optional<Generation> supervise(const std::atomic<size_t>& finished);
    std::optional<Generation> reload();
    void write_metrics_file(bool at_exit);
    std::string status_line() const;

    const RunArgs& args_;
    std::string state_dir_;
    std::unique_ptr<EmbeddedKafka> embedded_;
    std::map<std::string, std::unique_ptr<PipelineLock>> locks_;
    std::map<std::string, std::unique_ptr<RedisLock>> redis_locks_;
    std::mutex mutex_;
    Runners runners_;
    std::map<std::string, int> codes_;  // per pipeline; a failure sticks across reloads
    SystemdNotifier systemd_;
    bool metrics_file_failing_ = false;
};

// Reads the pipeline file, builds its pipelines and takes the locks the process lacks. Throws
// ConfigError, LockHeld, or another std::exception; the running pipelines are left alone.
Generation RunCommand::prepare() {
    const Config config = load_config(args_.config, args_.overrides);
    if (uses_embedded_kafka(config) && !embedded_) {
        embedded_ = std::make_unique<EmbeddedKafka>(3);
        spdlog::info("embedded Kafka cluster listening on {}", embedded_->bootstraps());
    }
    auto built = build_pipelines(config, args_.pipelines, args_.once, state_dir_,
                                 embedded_ ? embedded_->bootstraps() : "", args_.dry_run);
    Generation next;
    for (const auto& b : built) {
        const std::string worker = b.source->worker();
        const std::string name =
            worker.empty() || worker == b.name ? b.name : b.name + "@" + worker;
        next.lock_names.push_back(name);
        if (!locks_.count(name))
            next.new_locks[name] = std::make_unique<PipelineLock>(state_dir_, name);
        if (config.lock && !redis_locks_.count(name)) {
            RedisUrl url;
            try {
                url = parse_redis_url(config.lock->str("redis"));
            } catch (const std::invalid_argument& e) {
                throw config.lock->error("redis", e.what());
            }
            next.new_redis_locks[name] =
                std::make_unique<RedisLock>(url, name, config.lock->duration("ttl"),
                                            connect_timeout_option(*config.lock, *config.lock));
        }
    }
    RunSettings settings;
    settings.once = args_.once || args_.dry_run;
    if (args_.dry_run) settings.dry_run_records = 10;
    settings.state_dir = state_dir_;
    settings.progress = args_.once && !args_.dry_run && built.size() == 1 && isatty(STDERR_FILENO);
    for (auto& b : built) {
        next.runners.push_back(std::make_unique<PipelineRunner>(
            b.name, std::move(b.source), std::move(b.sink), std::move(b.dead_letter), settings));
        next.runners.back()->set_types(b.source_type, b.sink_type);
    }
    return next;
}

// Makes `next` the running generation (the current one has stopped): counts carry on per
// pipeline, and the locks of pipelines gone from the file are released.
void RunCommand::adopt(Generation& next) {
    for (auto& runner : next.runners)
        for (const auto& old : runners_)
            if (old->name() == runner->name()) runner->continue_from(*old);
    for (const auto& old : runners_) {
        const bool kept = std::any_of(next.runners.begin(), next.runners.end(),
                                      [&](const auto& r) { return r->name() == old->name(); });
        if (!kept) print_summary(*old, codes_[old->name()]);
    }
    Runners stopped;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped = std::move(runners_);
        runners_ = std::move(next.runners);
    }
    stopped.clear();  // sinks flush before the new pipelines take over their sources
    auto keep_needed = [&](auto& held, auto& fresh) {
        for (auto it = held.begin(); it != held.end();)
            it = std::count(next.lock_names.begin(), next.lock_names.end(), it->first)
                     ? std::next(it)
                     : held.erase(it);
        for (auto& [name, lock] : fresh) held[name] = std::move(lock);
    };
    keep_needed(locks_, next.new_locks);
    keep_needed(redis_locks_, next.new_redis_locks);
}

// SIGHUP: the next generation if the file is valid and its locks could be taken; otherwise
// the error is logged and the running pipelines go on.
std::optional<Generation> RunCommand::reload() {
    if (args_.once || args_.dry_run) {
        spdlog::warn("SIGHUP ignored: a --once or --dry-run run finishes what it started");
        return std::nullopt;
    }
    if (args_.config == "-") {
        log_event(spdlog::level::err,
                  {log_field("event", "reload_refused"), log_field("error_class", "config")},
                  "reload: the pipeline file was read from stdin and cannot be read again; the "
                  "running pipelines go on unchanged");
        return std::nullopt;
    }
    try {
        Generation next = prepare();
        log_event(
            spdlog::level::info,
            {log_field("event", "reload_valid"), log_field("pipelines", next.runners.size())},
            fmt::format("reload: {} is valid; stopping the running pipelines to start {} "
                        "pipeline{}",
                        args_.config, next.runners.size(), next.runners.size() == 1 ? "" : "s"));
        return next;
    } catch (const std::exception& e) {
        const bool config_error = dynamic_cast<const ConfigError*>(&e) != nullptr;
        log_event(spdlog::level::err,
                  {log_field("event", "reload_refused"),
                   log_field("error_class", config_error                        ? "config"
                                            : dynamic_cast<const LockHeld*>(&e) ? "locked"
                                                                                : "fatal")},
                  "reload: " + std::string(e.what()) + "; the running pipelines go on unchanged");
        return std::nullopt;
    }
}

std::string RunCommand::status_line() const {
    std::string status;
    for (const auto& r : runners_) {
        const std::string unreachable = r->unreachable();
        status += (status.empty() ? "" : "; ") + r->name() + ": " +
                  std::to_string(r->stats().delivered.load()) + " written, " +
                  std::to_string(r->stats().dead_lettered.load()) + " dead-lettered" +
                  (unreachable.empty() ? "" : ", " + unreachable + " unreachable, retrying");
    }
    return status;
}

// --metrics-file: rewritten while running (node_exporter reads it at any time) and at exit.
void RunCommand::write_metrics_file(bool at_exit) {
    if (args_.metrics_file.empty()) return;
    try {
        write_file_atomically(args_.metrics_file, prometheus_text(runners_));
        metrics_file_failing_ = false;
    } catch (const std::exception& e) {
        if (at_exit) throw;
        if (!metrics_file_failing_) spdlog::warn("{}", e.what());
        metrics_file_failing_ = true;
    }
}

// While the pipelines run: tells systemd how far they are and that they are alive (only while
// every run loop keeps turning), and rewrites the metrics file. Returns when every pipeline
// has finished, or with the next generation when a reload was asked for and is valid.
std::optional<Generation> RunCommand::supervise(const std::atomic<size_t>& finished) {
    bool stopping = false;
    int64_t last_status = 0, last_pet = 0, last_metrics = PipelineRunner::steady_ms();
    while (finished.load() < runners_.size()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const int64_t now = PipelineRunner::steady_ms();
        if (!stopping && terminate_requested()) {
            systemd_.stopping();
            stopping = true;
        }
        if (!stopping && take_reload_request())
            if (auto next = reload()) return next;
        if (now - last_status >= 2000) {
            systemd_.status(status_line());
            last_status = now;
        }
        if (now - last_metrics >= 5000) {
            write_metrics_file(false);
            last_metrics = now;
        }
        const int64_t interval = systemd_.watchdog_interval().count();
        const bool alive = std::all_of(runners_.begin(), runners_.end(), [&](const auto& r) {
            return now - r->stats().heartbeat_ms.load() < std::max<int64_t>(2 * interval, 1000);
        });
        if (interval > 0 && alive && now - last_pet >= interval) {
            systemd_.watchdog();
            last_pet = now;
        }
    }
    return std::nullopt;
}

int RunCommand::run() {
    try {
        state_dir_ = resolve_state_dir(args_.state_dir);
        Generation first = prepare();
        adopt(first);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitUsage;
    } catch (const LockHeld& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitLocked;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
    std::unique_ptr<MetricsServer> metrics;
    try {
        if (!args_.metrics_address.empty() || args_.metrics_port > 0) {
            const ListenAddress address = args_.metrics_address.empty()
                                              ? ListenAddress{"127.0.0.1", args_.metrics_port}
                                              : parse_listen_address(args_.metrics_address);
            MetricsServer::Pages pages;
            pages.metrics = [this] {
                std::lock_guard<std::mutex> lock(mutex_);
                return prometheus_text(runners_) + process_metrics_text();
            };
            pages.health = [this](std::string& body) {
                std::lock_guard<std::mutex> lock(mutex_);
                return pipelines_healthy(runners_, body);
            };
            metrics = std::make_unique<MetricsServer>(address, std::move(pages));
        }
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "kbridge: --metrics-address: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
    // Config read and locks taken: the service is up, whether or not its endpoints answer yet.
    systemd_.ready();
    for (;;) {
        std::vector<std::thread> threads;
        std::vector<int> codes(runners_.size(), kExitOk);
        std::atomic<size_t> finished{0};
        for (size_t i = 0; i < runners_.size(); ++i)
            threads.emplace_back([&, i] {
                codes[i] = runners_[i]->run(stop_requested());
                ++finished;
            });
        std::optional<Generation> next = supervise(finished);
        if (next) {
            systemd_.reloading();
            stop_for_reload();
        }
        for (auto& t : threads) t.join();
        for (size_t i = 0; i < runners_.size(); ++i)
            codes_[runners_[i]->name()] = std::max(codes_[runners_[i]->name()], codes[i]);
        if (!next) break;
        adopt(*next);
        resume_after_reload();
        if (terminate_requested()) continue;  // the new runners stop at once; no READY
        log_event(spdlog::level::info,
                  {log_field("event", "reloaded"), log_field("pipelines", runners_.size())},
                  fmt::format("reload: {} pipeline{} started from {}", runners_.size(),
                              runners_.size() == 1 ? "" : "s", args_.config));
        systemd_.ready();
    }
    int code = kExitOk;
    std::vector<int> codes;
    for (const auto& r : runners_) {
        codes.push_back(codes_[r->name()]);
        print_summary(*r, codes.back());
    }
    for (const auto& [name, c] : codes_)
        if (c != kExitOk) code = kExitFailure;
    try {
        write_metrics_file(true);
        if (!args_.stats_json.empty())
            write_file_atomically(args_.stats_json, stats_json(runners_, codes));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        code = kExitFailure;
    }
    metrics.reset();  // it reads the runners
    for (const auto& [name, lock] : redis_locks_)
        if (lock->lost()) code = kExitFailure;
    runners_.clear();  // flush producers before the embedded cluster goes away
    return code;
}

}  // namespace

int run_command(const RunArgs& args) {
    if (!args.metrics_address.empty() && args.metrics_port > 0) {
        std::fprintf(stderr, "kbridge: give --metrics-address or --metrics-port, not both\n");
        return kExitUsage;
    }
    // Before anything connects (the lock's Redis too): a signal cuts any wait short, and a
    // SIGHUP never ends the process.
    install_stop_handlers();
    install_reload_handler();
    RunCommand command(args);
    return command.run();
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
