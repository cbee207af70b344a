#pragma once
// Database servers for tests start from a copy of a data directory initialized once per machine
// and user: initdb and mariadb-install-db take seconds, a copy a fraction of that, and every test
// that starts a server pays it.
#include <functional>
#include <string>
#include <vector>

namespace kbridge::test {

// Makes `target` a copy of the data directory that `initialize(dir)` (an argv, run in `cwd`)
// creates in `dir`; the first call for `name` runs it, concurrent test processes included.
void copy_initialized_data_dir(
    const std::string& name, const std::string& target, const std::string& cwd,
    const std::function<std::vector<std::string>(const std::string& dir)>& initialize);

}  // namespace kbridge::test
