#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>

#include "cli/commands.h"

namespace kbridge {

int version_command() {
    std::printf("kbridge %s (librdkafka %s, hiredis %d.%d.%d)\n", KBRIDGE_VERSION,
                rd_kafka_version_str(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    return kExitOk;
}

}  // namespace kbridge
