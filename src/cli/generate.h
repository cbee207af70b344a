#pragma once
// Documents written from the command line itself, so they cannot drift from it: kbridge(1) and
// the bash and zsh completions. The package build runs `kbridge generate WHAT` (a hidden
// subcommand) and installs the output.
#include <CLI/CLI.hpp>
#include <string>

namespace kbridge {

std::string cli_man_page(const CLI::App& app);  // kbridge(1), in roff
std::string bash_completion(const CLI::App& app);
std::string zsh_completion(const CLI::App& app);

// WHAT: man1 | man5 (kbridge.yaml(5)) | bash | zsh. Prints it on stdout.
int generate_command(const CLI::App& app, const std::string& what);

}  // namespace kbridge
