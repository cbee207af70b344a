#include "core/metrics_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/report.h"

namespace kbridge {

MetricsServer::MetricsServer(int port, const std::vector<std::unique_ptr<PipelineRunner>>& runners)
    : runners_(runners) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0)
        throw std::runtime_error(std::string("metrics: socket: ") + std::strerror(errno));
    const int yes = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listener_, 16) != 0) {
        const std::string error = std::strerror(errno);
        close(listener_);
        throw std::runtime_error("metrics: cannot listen on port " + std::to_string(port) + ": " +
                                 error);
    }
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
    std::string status = "200 OK", type = "text/plain; version=0.0.4", body;
    if (line.rfind("GET /metrics", 0) == 0) {
        body = prometheus_text(runners_);
    } else if (line.rfind("GET /health", 0) == 0) {
        const int64_t now = PipelineRunner::steady_ms();
        bool healthy = true;
        for (const auto& r : runners_) {
            const PipelineStats& s = r->stats();
            healthy &= s.connected.load() && now - s.heartbeat_ms.load() < 30000 &&
                       s.source_healthy.load();
            body += r->name() + (s.connected.load() ? " connected" : " connecting") +
                    (s.source_healthy.load() ? "" : ", source held up") + "\n";
        }
        if (!healthy) status = "503 Service Unavailable";
        type = "text/plain";
    } else {
        status = "404 Not Found";
        type = "text/plain";
        body = "kbridge serves /metrics and /health\n";
    }
    const std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                                 "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < response.size()) {
        const ssize_t n =
            send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<size_t>(n);
    }
}

}  // namespace kbridge
