#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>

#include "cli/commands.h"

namespace kbridge {

std::string version_text() {
    return std::string("kbridge ") + KBRIDGE_VERSION + " (librdkafka " + rd_kafka_version_str() +
           ", hiredis " + std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) +
           "." + std::to_string(HIREDIS_PATCH) + ")";
}

int version_command() {
    std::printf("%s\n", version_text().c_str());
    return kExitOk;
}

}  // namespace kbridge
