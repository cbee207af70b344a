#include "connectors/sqlite/job_thread.h"

#include <pthread.h>

#include <stdexcept>

namespace kbridge {

JobThread::~JobThread() {
    if (!thread_.joinable()) return;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return state_ != State::Queued && state_ != State::Running; });
        quit_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void JobThread::start(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (state_ != State::Idle) throw std::logic_error("JobThread: the last job has not ended");
        job_ = std::move(job);
        state_ = State::Queued;
    }
    if (!thread_.joinable()) {
        thread_ = std::thread([this] { run(); });
        pthread_setname_np(thread_.native_handle(), name_);  // for top -H, perf and gdb
    }
    changed_.notify_all();
}

bool JobThread::finished(std::chrono::milliseconds wait) {
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto ended = [&] { return state_ == State::Idle || state_ == State::Ended; };
        if (!changed_.wait_for(lock, wait, ended)) return false;
        state_ = State::Idle;
        std::swap(error, error_);
    }
    if (error) std::rethrow_exception(error);
    return true;
}

void JobThread::wait_ended() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return state_ == State::Idle || state_ == State::Ended; });
}

void JobThread::forget() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return state_ == State::Idle || state_ == State::Ended; });
    state_ = State::Idle;
    error_ = nullptr;
}

void JobThread::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return quit_ || state_ == State::Queued; });
        if (quit_) return;
        state_ = State::Running;
        std::function<void()> job = std::move(job_);
        lock.unlock();
        std::exception_ptr error;
        try {
            job();
        } catch (...) {
            error = std::current_exception();
        }
        job = nullptr;  // what it holds goes before the owner hears of the end
        lock.lock();
        error_ = error;
        state_ = State::Ended;
        changed_.notify_all();
    }
}

}  // namespace kbridge
