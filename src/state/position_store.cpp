#include "state/position_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kbridge {
namespace {

// One "name<TAB>value" line per entry; values are escaped so any bytes fit on a line.
std::string escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else
            out += c;
    }
    return out;
}

std::string unescape(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\' || i + 1 == text.size()) {
            out += text[i];
            continue;
        }
        const char c = text[++i];
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    }
    return out;
}

void fsync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("cannot fsync " + path + ": " + std::strerror(errno));
}

}  // namespace

PositionStore::PositionStore(std::string state_dir, const std::string& pipeline)
    : dir_(std::move(state_dir)), path_(dir_ + "/" + pipeline + ".position") {}

std::optional<Position> PositionStore::load() const {
    std::ifstream in(path_);
    if (!in) {
        if (errno == ENOENT || !std::filesystem::exists(path_)) return std::nullopt;
        throw std::runtime_error("cannot read " + path_ + ": " + std::strerror(errno));
    }
    Position position;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto tab = line.find('\t');
        if (tab == std::string::npos)
            throw std::runtime_error(path_ + ": malformed line '" + line + "'");
        position[line.substr(0, tab)] = unescape(line.substr(tab + 1));
    }
    return position;
}

void PositionStore::save(const Position& position) const {
    std::filesystem::create_directories(dir_);
    const std::string temp = path_ + ".tmp";
    {
        std::ofstream out(temp, std::ios::trunc);
        out << "# kbridge position: name<TAB>value\n";
        for (const auto& [name, value] : position) out << name << '\t' << escape(value) << '\n';
        out.flush();
        if (!out) throw std::runtime_error("cannot write " + temp);
    }
    fsync_path(temp, O_RDONLY);
    if (std::rename(temp.c_str(), path_.c_str()) != 0)
        throw std::runtime_error("cannot rename " + temp + ": " + std::strerror(errno));
    fsync_path(dir_, O_RDONLY | O_DIRECTORY);
}

void PositionStore::reset() const {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

}  // namespace kbridge
