// `kbridge state show|set|reset`: what a pipeline's source remembers, per source type. Each type
// has a SourceState entry below: how to show where the pipeline stands and how to check a
// `state set` before it is written.
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/pipelines.h"
#include "connectors/kafka/source.h"
#include "connectors/postgres/table_source.h"
#include "connectors/postgres_cdc/cdc_source.h"
#include "connectors/redis/list_source.h"
#include "core/secrets.h"
#include "state/lock.h"
#include "state/position_store.h"
#include "state/state_dir.h"

namespace kbridge {
namespace {

// A `state set` that must not be written; what() says why (exit 2).
class StateRefused : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

struct StateTarget {
    const StateArgs& args;
    BuiltPipeline& pipeline;
    const PositionStore& store;
};

struct SourceState {
    // Prints where the pipeline stands; throws on an endpoint that cannot be asked.
    std::function<void(StateTarget&)> show;
    // Throws StateRefused unless the names and values set are what the source can start from.
    std::function<void(StateTarget&, const Position&)> check_set;
};

void show_stored_position(StateTarget& t) {
    const auto position = t.store.load();
    if (!position || position->empty()) {
        std::printf("%s: no position stored (%s)\n", t.args.pipeline.c_str(),
                    t.store.path().c_str());
        return;
    }
    std::printf("%s (%s):\n", t.args.pipeline.c_str(), t.store.path().c_str());
    for (const auto& [name, value] : *position)
        std::printf("  %s = %s\n", name.c_str(), value.c_str());
}

void refuse_set(const std::string& why) {
    throw StateRefused(why);
}

std::string lag_text(int64_t from, int64_t high) {
    return from < 0 ? "-" : std::to_string(std::max<int64_t>(high - from, 0));
}

// The group's committed offsets, or with an exactly-once sink the offsets it stores with its
// data (what the next run starts from), against each partition's high watermark.
void show_kafka(StateTarget& t) {
    auto& source = dynamic_cast<KafkaSource&>(*t.pipeline.source);
    const auto partitions = source.partition_states();
    std::vector<int64_t> next(partitions.size(), -1);
    OffsetStore* store = t.pipeline.sink->offset_store();
    if (store) {
        t.pipeline.sink->connect();
        std::vector<PartitionOffset> wanted;
        for (const auto& p : partitions) wanted.push_back({p.topic, p.partition, -1});
        const auto stored = store->stored_offsets(wanted);
        for (size_t i = 0; i < stored.size() && i < next.size(); ++i)
            next[i] = stored[i].next_offset;
        std::printf("%s: offsets stored by %s (exactly_once) for group %s:\n",
                    t.args.pipeline.c_str(), t.pipeline.sink->describe().c_str(),
                    source.group().c_str());
    } else {
        for (size_t i = 0; i < partitions.size(); ++i) next[i] = partitions[i].committed;
        std::printf("%s: committed offsets of group %s:\n", t.args.pipeline.c_str(),
                    source.group().c_str());
    }
    std::printf("  %-24s %9s %12s %12s %12s\n", "topic", "partition", "offset", "high", "lag");
    int64_t total = 0;
    for (size_t i = 0; i < partitions.size(); ++i) {
        const auto& p = partitions[i];
        std::printf("  %-24s %9d %12s %12lld %12s\n", p.topic.c_str(), p.partition,
                    next[i] < 0 ? "none" : std::to_string(next[i]).c_str(),
                    static_cast<long long>(p.high), lag_text(next[i], p.high).c_str());
        if (next[i] >= 0) total += std::max<int64_t>(p.high - next[i], 0);
    }
    std::printf("  lag %lld (partitions without an offset start at the source's `start`)\n",
                static_cast<long long>(total));
}

void show_redis_list(StateTarget& t) {
    auto& source = dynamic_cast<RedisListSource&>(*t.pipeline.source);
    const auto state = source.in_flight();
    uint64_t records = 0;
    for (const auto& batch : state.batches) records += batch.second;
    std::printf("%s: %s holds %llu records; %zu batch%s (%llu records) in flight in %s%s\n",
                t.args.pipeline.c_str(), source.describe().c_str(),
                static_cast<unsigned long long>(state.list_length), state.batches.size(),
                state.batches.size() == 1 ? "" : "es", static_cast<unsigned long long>(records),
                state.in_flight_key.c_str(),
                state.batches.empty() ? "" : " (sent again before anything else by the next run)");
    for (const auto& [name, count] : state.batches)
        std::printf("  %s: %llu records\n", name.c_str(), static_cast<unsigned long long>(count));
}

void check_postgres_position(StateTarget& t, const Position& position) {
    try {
        dynamic_cast<PostgresTableSource&>(*t.pipeline.source).check_position(position);
    } catch (const std::invalid_argument& e) {
        throw StateRefused(e.what());
    }
}

// Source types not named here keep their position in the state dir, if any.
const std::map<std::string, SourceState>& source_states() {
    static const std::map<std::string, SourceState> states = {
        {"postgres_table", {show_stored_position, check_postgres_position}},
        {"kafka",
         {show_kafka,
          [](StateTarget& t, const Position&) {
              refuse_set("pipeline " + t.args.pipeline +
                         ": a kafka source's position is its group's committed offsets (or an "
                         "exactly_once sink's), not a position kbridge stores; move them with "
                         "kafka-consumer-groups.sh --reset-offsets while no run is consuming");
          }}},
        {"postgres_cdc",
         {[](StateTarget& t) {
              if (PositionCommitter* committer = t.pipeline.sink->position_committer()) {
                  const auto position = committer->peek_position();
                  std::printf("%s: checkpoint committed in Kafka by %s (exactly_once):%s\n",
                              t.args.pipeline.c_str(), t.pipeline.sink->describe().c_str(),
                              position ? "" : " none");
                  for (const auto& [name, value] : position.value_or(Position{}))
                      std::printf("  %s = %s\n", name.c_str(), value.c_str());
              } else {
                  show_stored_position(t);
              }
              std::printf(
                  "%s", dynamic_cast<PostgresCdcSource&>(*t.pipeline.source).slot_report().c_str());
          },
          [](StateTarget& t, const Position&) {
              refuse_set("pipeline " + t.args.pipeline +
                         ": a postgres_cdc source resumes from its slot and the checkpoint of the "
                         "last delivered change; `state reset --drop-slot` starts it over");
          }}},
        {"redis_list",
         {show_redis_list,
          [](StateTarget& t, const Position&) {
              refuse_set("pipeline " + t.args.pipeline +
                         ": a redis_list source keeps no position; what it has taken and not "
                         "acknowledged is in its in-flight batches (state show)");
          }}},
    };
    return states;
}

SourceState state_of(const std::string& type) {
    const auto& states = source_states();
    if (const auto it = states.find(type); it != states.end()) return it->second;
    return {show_stored_position, [type](StateTarget&, const Position&) {
                refuse_set("a " + type + " source keeps no position to set");
            }};
}

}  // namespace

int state_command(const StateArgs& args) {
    std::vector<BuiltPipeline> built;
    try {
        const Config config = load_config(args.config, {});
        // Checks the pipeline exists and its options are valid before touching its position.
        built =
            build_pipelines(config, {args.pipeline}, false, resolve_state_dir(args.state_dir), "");
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitUsage;
    }
    const PositionStore store(resolve_state_dir(args.state_dir), args.pipeline);
    StateTarget target{args, built.front(), store};
    const SourceState state = state_of(built.front().source_type);
    try {
        // A running pipeline would write its position over the change (or, with exactly_once,
        // commit a new one after the reset): writing takes the run's lock, so it waits for no run.
        std::unique_ptr<PipelineLock> lock;
        if (args.action != "show")
            lock = std::make_unique<PipelineLock>(resolve_state_dir(args.state_dir), args.pipeline);
        if (args.action == "reset") {
            auto* cdc = dynamic_cast<PostgresCdcSource*>(target.pipeline.source.get());
            if (args.drop_slot && !cdc) {
                std::fprintf(stderr, "kbridge: --drop-slot: the source is not postgres_cdc\n");
                return kExitUsage;
            }
            if (args.drop_slot) cdc->drop_slot_and_publication();
            if (PositionCommitter* committer = target.pipeline.sink->position_committer())
                committer->reset_position();  // exactly_once keeps it in Kafka
            store.reset();
            std::printf("%s: position reset; the next run starts from the beginning\n",
                        args.pipeline.c_str());
            return kExitOk;
        }
        if (args.action == "set") {
            if (args.values.empty()) {
                std::fprintf(stderr,
                             "kbridge: state set needs NAME=VALUE (e.g. incrementing=1000)\n");
                return kExitUsage;
            }
            Position changes;
            for (const auto& assignment : args.values) {
                const auto eq = assignment.find('=');
                if (eq == std::string::npos || eq == 0) {
                    std::fprintf(stderr, "kbridge: state set: expected NAME=VALUE, got '%s'\n",
                                 assignment.c_str());
                    return kExitUsage;
                }
                changes[assignment.substr(0, eq)] = assignment.substr(eq + 1);
            }
            Position position = store.load().value_or(Position{});
            for (const auto& [name, value] : changes) position[name] = value;
            state.check_set(target, changes);
            store.save(position);
            show_stored_position(target);
            return kExitOk;
        }
        state.show(target);
        return kExitOk;
    } catch (const LockHeld& e) {
        std::fprintf(stderr, "kbridge: state %s %s: %s; stop it first, nothing was written\n",
                     args.action.c_str(), args.pipeline.c_str(), e.what());
        return kExitLocked;
    } catch (const StateRefused& e) {
        std::fprintf(stderr, "kbridge: state set %s: %s; nothing was written\n",
                     args.pipeline.c_str(), scrub_secrets(e.what()).c_str());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", scrub_secrets(e.what()).c_str());
        return kExitFailure;
    }
}

}  // namespace kbridge
