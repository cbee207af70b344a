#include "core/metrics_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace kbridge {

ListenAddress parse_listen_address(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
        throw std::invalid_argument("'" + text + "' is not HOST:PORT (e.g. 127.0.0.1:9464)");
    ListenAddress address;
    address.host = text.substr(0, colon);
    if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']')
        address.host = address.host.substr(1, address.host.size() - 2);
    const std::string port = text.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
        throw std::invalid_argument("'" + text + "': the port must be 1 to 65535");
    address.port = std::stoi(port);
    return address;
}

bool pipelines_healthy(const std::vector<std::unique_ptr<PipelineRunner>>& runners,
                       std::string& body) {
    const int64_t now = PipelineRunner::steady_ms();
    bool healthy = true;
    for (const auto& r : runners) {
        const PipelineStats& s = r->stats();
        healthy &=
            s.connected.load() && now - s.heartbeat_ms.load() < 30000 && s.source_healthy.load();
        const std::string unreachable = r->unreachable();
        body += r->name() +
                (s.connected.load()    ? " connected"
                 : unreachable.empty() ? " connecting"
                                       : " retrying: " + unreachable + " unreachable") +
                (s.source_healthy.load() ? "" : ", source held up") + "\n";
    }
    return healthy;
}

MetricsServer::MetricsServer(const ListenAddress& address, Pages pages) : pages_(std::move(pages)) {
    const std::string where =
        (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) +
        ":" + std::to_string(address.port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(address.port);
    if (const int rc = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(),
                                   port.c_str(), &hints, &found);
        rc != 0)
        throw std::runtime_error("metrics: cannot listen on " + where + ": " + gai_strerror(rc));
    std::string error = "no address";
    for (const addrinfo* a = found; a && listener_ < 0; a = a->ai_next) {
        listener_ = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (listener_ < 0) {
            error = std::strerror(errno);
            continue;
        }
        const int yes = 1;
        setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (bind(listener_, a->ai_addr, a->ai_addrlen) != 0 || listen(listener_, 16) != 0) {
            error = std::strerror(errno);
            close(listener_);
            listener_ = -1;
        }
    }
    freeaddrinfo(found);
    if (listener_ < 0)
        throw std::runtime_error("metrics: cannot listen on " + where + ": " + error);
    thread_ = std::thread([this] { serve(); });
}

MetricsServer::~MetricsServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    close(listener_);
}

void MetricsServer::serve() {
    while (!stop_) {
        pollfd fd{listener_, POLLIN, 0};
        if (::poll(&fd, 1, 200) <= 0) continue;
        const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        // A scraper that never sends its request must not hold the server.
        timeval timeout{2, 0};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        answer(client);
        close(client);
    }
}

void MetricsServer::answer(int client) {
    std::string request;
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
        const ssize_t n = recv(client, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
    }
    const std::string line = request.substr(0, request.find("\r\n"));
    // HEAD is answered like GET, headers only (RFC 9110 9.3.2).
    const bool head = line.rfind("HEAD ", 0) == 0;
    const std::string target = line.substr(line.find(' ') + 1);
    auto is = [&](const char* path) {
        return (head || line.rfind("GET ", 0) == 0) &&
               (target.rfind(std::string(path) + " ", 0) == 0 ||
                target.rfind(std::string(path) + "?", 0) == 0);
    };
    std::string status = "200 OK", type = "text/plain; version=0.0.4", body;
    if (is("/metrics")) {
        body = pages_.metrics();
    } else if (is("/health")) {
        if (!pages_.health(body)) status = "503 Service Unavailable";
        type = "text/plain";
    } else {
        status = "404 Not Found";
        type = "text/plain";
        body = "kbridge serves /metrics and /health\n";
    }
    std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                           "\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n";
    if (!head) response += body;
    size_t sent = 0;
    while (sent < response.size()) {
        const ssize_t n =
            send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<size_t>(n);
    }
}

}  // namespace kbridge
