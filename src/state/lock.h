#pragma once
// One run per pipeline: an flock on <state-dir>/<pipeline>.lock, held until the process exits
// (the kernel releases it even after kill -9). The file says who holds it.
#include <memory>
#include <stdexcept>
#include <string>

namespace kbridge {

// Another run holds the lock; what() names it (pid, host, since).
class LockHeld : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class PipelineLock {
  public:
    // Throws LockHeld, or std::runtime_error when the state dir is unusable.
    PipelineLock(const std::string& state_dir, const std::string& pipeline);
    ~PipelineLock();
    PipelineLock(const PipelineLock&) = delete;
    PipelineLock& operator=(const PipelineLock&) = delete;

  private:
    int fd_ = -1;
};

}  // namespace kbridge
