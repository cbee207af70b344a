#include "state/quarantine.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace kbridge {
namespace {

std::runtime_error os_error(const std::string& what, const std::string& path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw os_error("cannot write", path);
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) throw os_error("cannot open", dir);
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw os_error("cannot fsync", dir);
}

// Topic names are [A-Za-z0-9._-]; anything else is replaced so the name stays one path part.
std::string file_safe(const std::string& text) {
    std::string out = text;
    for (char& c : out)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
            c = '_';
    return out;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

Quarantine::Quarantine(const std::string& state_dir, const std::string& pipeline)
    : dir_(state_dir + "/quarantine/" + pipeline) {}

std::string Quarantine::keep(const Record& record, const std::string& sha256) {
    std::string position;
    if (record.offset >= 0) {
        position = file_safe(record.topic) + "-" + std::to_string(record.partition) + "-" +
                   std::to_string(record.offset);
    } else {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        position =
            std::to_string(ms) + "-" + std::to_string(getpid()) + "-" + std::to_string(count_++);
    }
    std::error_code error;
    std::filesystem::create_directories(dir_, error);
    if (error) throw std::runtime_error("cannot create " + dir_ + ": " + error.message());
    const std::string path = dir_ + "/" + position + "-" + sha256 + ".value";
    const std::string temp = path + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw os_error("cannot create", temp);
    try {
        write_all(fd, record.value.value_or(std::string_view()), temp);
        if (::fsync(fd) != 0) throw os_error("cannot fsync", temp);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    if (std::rename(temp.c_str(), path.c_str()) != 0) throw os_error("cannot rename", temp);
    fsync_dir(dir_);
    return path;
}

}  // namespace kbridge
