#pragma once
// A thread that runs one job at a time for its owner. The SQLite dialect runs a batch's
// transaction there: SQLite works in-process, so without it the inserts and the COMMIT's fsync
// would stop the reading and encoding of the next batch (which `kcat | sqlite3` overlaps, being
// two processes). The owner and the job never use the connection at once: the owner starts a
// job only when the last one has ended, and touches the connection only then.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace kbridge {

class JobThread {
  public:
    // `name`: the thread's, at most 15 characters.
    explicit JobThread(const char* name) : name_(name) {}
    JobThread(const JobThread&) = delete;
    JobThread& operator=(const JobThread&) = delete;
    // Waits for the job running, then ends the thread.
    ~JobThread();

    // Runs `job` on the thread (started at the first job); the last job must have ended.
    void start(std::function<void()> job);
    // True once the job has ended (or there is none), waiting up to `wait`; rethrows, once, what
    // the job threw.
    bool finished(std::chrono::milliseconds wait);
    // Waits until the job has ended; what it threw is kept for finished().
    void wait_ended();
    // Waits until the job has ended; what it threw is dropped.
    void forget();

  private:
    enum class State { Idle, Queued, Running, Ended };
    void run();

    const char* name_;
    std::mutex mutex_;
    std::condition_variable changed_;
    State state_ = State::Idle;
    bool quit_ = false;
    std::function<void()> job_;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace kbridge
