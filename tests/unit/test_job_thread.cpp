// JobThread, which runs the SQLite sink's transactions: one job at a time, its end and its error
// handed to the owner once. Jobs wait on promises the test fulfils, never on the clock.
#include <gtest/gtest.h>

#include <future>
#include <stdexcept>

#include "connectors/sqlite/job_thread.h"

namespace kbridge {
namespace {

using std::chrono::milliseconds;

TEST(JobThread, RunsJobsOneAfterAnotherAndReportsEachEnd) {
    JobThread thread("test-jobs");
    EXPECT_TRUE(thread.finished(milliseconds(0)));  // none yet
    int runs = 0;
    for (int i = 0; i < 3; ++i) {
        thread.start([&] { ++runs; });
        while (!thread.finished(milliseconds(1000))) {
        }
        EXPECT_EQ(runs, i + 1);
    }
}

TEST(JobThread, AJobStillRunningIsNotFinishedAndANewOneIsRefused) {
    JobThread thread("test-jobs");
    std::promise<void> go;
    std::shared_future<void> released = go.get_future().share();
    thread.start([released] { released.wait(); });
    EXPECT_FALSE(thread.finished(milliseconds(0)));
    EXPECT_THROW(thread.start([] {}), std::logic_error);
    go.set_value();
    while (!thread.finished(milliseconds(1000))) {
    }
}

TEST(JobThread, AnErrorIsRethrownOnceAndWaitingKeepsItForFinished) {
    JobThread thread("test-jobs");
    thread.start([] { throw std::runtime_error("disk full"); });
    thread.wait_ended();
    thread.wait_ended();  // keeps it
    EXPECT_THROW(
        {
            try {
                thread.finished(milliseconds(0));
            } catch (const std::runtime_error& e) {
                EXPECT_STREQ(e.what(), "disk full");
                throw;
            }
        },
        std::runtime_error);
    EXPECT_TRUE(thread.finished(milliseconds(0)));  // told once

    thread.start([] { throw std::runtime_error("dropped"); });
    thread.forget();
    EXPECT_TRUE(thread.finished(milliseconds(0)));
}

TEST(JobThread, DestructionWaitsForTheRunningJob) {
    bool ended = false;
    std::promise<void> go;
    {
        JobThread thread("test-jobs");
        std::shared_future<void> released = go.get_future().share();
        thread.start([released, &ended] {
            released.wait();
            ended = true;
        });
        go.set_value();
    }
    EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace kbridge
