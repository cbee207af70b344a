#pragma once
// Runs programs for tests: the kbridge binary, kcat, redis-server. Output goes to files so a
// chatty child never blocks on a full pipe.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kbridge::test {

class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

class Process {
  public:
    // Starts `argv` with `env` added to the environment; stdout/stderr go to files in `dir`.
    Process(std::vector<std::string> argv, const std::string& dir,
            const std::map<std::string, std::string>& env = {}, const std::string& stdin_file = "");
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    // Waits for the exit code (128+signal when killed); -1 on timeout.
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(120));
    bool running();
    void signal(int sig);
    pid_t pid() const { return pid_; }
    std::string out() const;
    std::string err() const;

  private:
    pid_t pid_ = -1;
    int status_ = -1;
    bool exited_ = false;
    std::string out_path_, err_path_;
};

// Waits (up to `timeout`) while `p` runs until its stderr holds `text`; whether it does.
bool wait_for_stderr(Process& p, const std::string& text,
                     std::chrono::milliseconds timeout = std::chrono::seconds(15));

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// Runs a shell command to completion and returns its stdout; fails the test on a non-zero exit.
std::string shell(const std::string& command);
int free_port();

// kbridge run CONFIG --once ... with the given environment, waiting for it.
struct RunResult {
    int code;
    std::string out, err;
};
RunResult run_kbridge(const std::vector<std::string>& args, const std::string& dir,
                      const std::map<std::string, std::string>& env = {});

}  // namespace kbridge::test
