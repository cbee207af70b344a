#include <gtest/gtest.h>
#include <stdlib.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "state/state_dir.h"

namespace kbridge {
namespace {

// Sets the variables the state directory is chosen from, and restores them afterwards.
class StateDirEnvironment : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* name : {"STATE_DIRECTORY", "XDG_STATE_HOME", "HOME"}) {
            const char* value = getenv(name);
            saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
            unsetenv(name);
        }
    }
    void TearDown() override {
        for (const auto& [name, value] : saved_) {
            if (value)
                setenv(name.c_str(), value->c_str(), 1);
            else
                unsetenv(name.c_str());
        }
    }

  private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(StateDirEnvironment, TheCommandLineWinsThenSystemdThenXdgThenHome) {
    setenv("HOME", "/home/u", 1);
    EXPECT_EQ(resolve_state_dir(""), "/home/u/.local/state/kbridge");
    setenv("XDG_STATE_HOME", "/xdg", 1);
    EXPECT_EQ(resolve_state_dir(""), "/xdg/kbridge");
    setenv("STATE_DIRECTORY", "/var/lib/kbridge", 1);
    EXPECT_EQ(resolve_state_dir(""), "/var/lib/kbridge");
    EXPECT_EQ(resolve_state_dir("/given"), "/given");
}

TEST_F(StateDirEnvironment, OfSeveralSystemdStateDirectoriesTheFirstIsUsed) {
    setenv("STATE_DIRECTORY", "/var/lib/kbridge:/var/lib/other", 1);
    EXPECT_EQ(resolve_state_dir(""), "/var/lib/kbridge");
}

}  // namespace
}  // namespace kbridge
