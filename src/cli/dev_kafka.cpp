#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "connectors/kafka/embedded.h"
#include "core/shutdown.h"

namespace kbridge {

int dev_kafka_command(const DevKafkaArgs& args) {
    if (args.brokers < 1) {
        std::fprintf(stderr, "kbridge: --brokers must be at least 1\n");
        return kExitUsage;
    }
    std::vector<std::pair<std::string, int>> topics;
    for (const auto& spec : args.topics) {
        const auto colon = spec.rfind(':');
        std::string name = spec.substr(0, colon);
        int partitions = 4;
        if (colon != std::string::npos) {
            try {
                partitions = std::stoi(spec.substr(colon + 1));
            } catch (const std::exception&) {
                partitions = 0;
            }
        }
        if (name.empty() || partitions < 1) {
            std::fprintf(stderr, "kbridge: --topic %s: expected NAME[:PARTITIONS]\n", spec.c_str());
            return kExitUsage;
        }
        topics.emplace_back(std::move(name), partitions);
    }
    install_stop_handlers();
    try {
        EmbeddedKafka cluster(args.brokers);
        for (const auto& [name, partitions] : topics) cluster.create_topic(name, partitions);
        const std::string bootstraps = cluster.bootstraps();
        if (!args.bootstrap_file.empty()) {
            // Written whole, then renamed: a reader polling for the file never sees half of it.
            const std::string temp = args.bootstrap_file + ".tmp";
            std::ofstream(temp) << bootstraps << "\n";
            if (std::rename(temp.c_str(), args.bootstrap_file.c_str()) != 0) {
                std::fprintf(stderr, "kbridge: cannot write %s\n", args.bootstrap_file.c_str());
                return kExitFailure;
            }
        }
        std::printf("%s\n", bootstraps.c_str());
        std::fflush(stdout);
        std::fprintf(stderr, "kbridge dev-kafka: %d broker(s) on %s; Ctrl-C stops\n", args.brokers,
                     bootstraps.c_str());
        while (!stop_requested().load())
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: %s\n", e.what());
        return kExitFailure;
    }
    return kExitOk;
}

}  // namespace kbridge
