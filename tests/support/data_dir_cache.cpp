#include "support/data_dir_cache.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "support/process.h"

namespace kbridge::test {

void copy_initialized_data_dir(
    const std::string& name, const std::string& target, const std::string& cwd,
    const std::function<std::vector<std::string>(const std::string& dir)>& initialize) {
    namespace fs = std::filesystem;
    const std::string cache = "/tmp/kbridge-test-" + name + "-uid" + std::to_string(geteuid());
    if (!fs::exists(cache)) {
        // Built aside and renamed into place: a cache is whole or absent, whoever wins.
        const std::string building = cache + ".building." + std::to_string(getpid());
        Process init(initialize(building), cwd);
        if (init.wait(std::chrono::seconds(120)) != 0)
            throw std::runtime_error("initializing " + name + " failed: " + init.err());
        std::error_code taken;
        fs::rename(building, cache, taken);
        if (taken) fs::remove_all(building);  // another test process made it first
    }
    // cp -a keeps the owner (the server's user when the tests run as root) and modes.
    Process copy({"cp", "-a", cache, target}, cwd);
    if (copy.wait(std::chrono::seconds(60)) != 0)
        throw std::runtime_error("copying " + cache + " failed: " + copy.err());
}

}  // namespace kbridge::test
