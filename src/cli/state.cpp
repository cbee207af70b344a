#include <cstdio>

#include "cli/commands.h"
#include "cli/pipelines.h"
#include "connectors/postgres_cdc/cdc_source.h"
#include "state/position_store.h"
#include "state/state_dir.h"

namespace kbridge {

int state_command(const StateArgs& args) {
    std::unique_ptr<PostgresCdcSource> cdc;  // its slot is part of the state
    try {
        const Config config = load_config(args.config, {});
        // Checks the pipeline exists and its options are valid before touching its position.
        build_pipelines(config, {args.pipeline}, false, "", "");
        cdc = postgres_cdc_of(config, args.pipeline, resolve_state_dir(args.state_dir));
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", e.what());
        return kExitUsage;
    }
    const PositionStore store(resolve_state_dir(args.state_dir), args.pipeline);
    try {
        if (args.action == "reset") {
            if (args.drop_slot && !cdc) {
                std::fprintf(stderr, "kbridge: --drop-slot: the source is not postgres_cdc\n");
                return kExitUsage;
            }
            if (args.drop_slot) cdc->drop_slot_and_publication();
            store.reset();
            std::printf("%s: position reset; the next run starts from the beginning\n",
                        args.pipeline.c_str());
            return kExitOk;
        }
        Position position = store.load().value_or(Position{});
        if (args.action == "set") {
            if (args.values.empty()) {
                std::fprintf(stderr,
                             "kbridge: state set needs NAME=VALUE (e.g. incrementing=1000)\n");
                return kExitUsage;
            }
            for (const auto& assignment : args.values) {
                const auto eq = assignment.find('=');
                if (eq == std::string::npos || eq == 0) {
                    std::fprintf(stderr, "kbridge: state set: expected NAME=VALUE, got '%s'\n",
                                 assignment.c_str());
                    return kExitUsage;
                }
                position[assignment.substr(0, eq)] = assignment.substr(eq + 1);
            }
            store.save(position);
        }
        if (position.empty()) {
            std::printf("%s: no position stored (%s)\n", args.pipeline.c_str(),
                        store.path().c_str());
            return kExitOk;
        }
        std::printf("%s (%s):\n", args.pipeline.c_str(), store.path().c_str());
        for (const auto& [name, value] : position)
            std::printf("  %s = %s\n", name.c_str(), value.c_str());
        if (cdc) std::printf("%s", cdc->slot_report().c_str());
        return kExitOk;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", e.what());
        return kExitFailure;
    }
}

}  // namespace kbridge
