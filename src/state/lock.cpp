#include "state/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace kbridge {

PipelineLock::PipelineLock(const std::string& state_dir, const std::string& pipeline) {
    std::error_code error;
    std::filesystem::create_directories(state_dir, error);
    const std::string path = state_dir + "/" + pipeline + ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open lock " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        char holder[256] = {0};
        const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
        std::string who = n > 0 ? std::string(holder, n) : "another run";
        while (!who.empty() && who.back() == '\n') who.pop_back();
        ::close(fd_);
        fd_ = -1;
        throw LockHeld("pipeline " + pipeline + " is already running (" + who + "; lock " + path +
                       ")");
    }
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    char since[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    const std::string holder =
        "pid " + std::to_string(getpid()) + " on " + host + " since " + since + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, holder.data(), holder.size(), 0) < 0) {
        // The lock holds all the same; only the note of who holds it is missing.
    }
}

PipelineLock::~PipelineLock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace kbridge
