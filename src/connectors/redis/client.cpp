#include "connectors/redis/client.h"

#include <hiredis/read.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/secrets.h"
#include "core/wait.h"

namespace kbridge {
namespace {

// hiredis builds replies through a table of functions; while reading a string array, ours put
// the strings into caller-owned storage and hand hiredis a placeholder. Everything else (an error
// reply, say) is built by hiredis's own functions.
struct StringCapture {
    redisReplyObjectFunctions* defaults;
    std::vector<char>* storage;
    std::vector<RedisClient::Place>* places;
    char placeholder;
};

StringCapture* capture_of(const redisReadTask* task) {
    return static_cast<StringCapture*>(task->privdata);
}

void* capture_string(const redisReadTask* task, char* str, size_t len) {
    StringCapture* c = capture_of(task);
    if (!task->parent) return c->defaults->createString(task, str, len);
    c->places->push_back({c->storage->size(), len});
    c->storage->insert(c->storage->end(), str, str + len);
    return &c->placeholder;
}
void* capture_array(const redisReadTask* task, int elements) {
    StringCapture* c = capture_of(task);
    if (!task->parent && elements > 0) c->places->reserve(c->places->size() + elements);
    return &c->placeholder;
}
void* capture_integer(const redisReadTask* task, long long value) {
    StringCapture* c = capture_of(task);
    return task->parent ? &c->placeholder : c->defaults->createInteger(task, value);
}
void* capture_nil(const redisReadTask* task) {
    StringCapture* c = capture_of(task);
    return task->parent ? &c->placeholder : c->defaults->createNil(task);
}
// hiredis frees what an aborted read built; placeholders are not its to free. The real reply
// objects it may free are only ever top-level ones, which hold no placeholders.
thread_local StringCapture* g_active_capture = nullptr;
void capture_free(void* object) {
    if (g_active_capture && object == &g_active_capture->placeholder) return;
    if (g_active_capture) g_active_capture->defaults->freeObject(object);
}

redisReplyObjectFunctions kCaptureFunctions = {capture_string, capture_array, capture_integer,
                                               capture_nil, capture_free};

}  // namespace

RedisUrl parse_redis_url(const std::string& url) {
    RedisUrl out;
    if (url.size() > 4096) throw std::invalid_argument("URL longer than 4096 bytes");
    const char* const kExpected = "expected redis://[user:password@]host:port/db or unix:///path";
    ConnectionString parsed;
    try {
        parsed = parse_connection_string(url);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(e.what()) + "; " + kExpected);
    }
    remember_secrets(parsed);
    if (parsed.scheme == "unix") {
        out.unix_path = "/" + parsed.path;
        if (parsed.path.empty()) throw std::invalid_argument("unix:// URL without a socket path");
        out.redacted = mask_connection_string(url);
        return out;
    }
    if (parsed.scheme == "rediss")
        throw std::invalid_argument(
            "rediss:// (TLS) is not supported: this kbridge's hiredis has no TLS");
    if (parsed.scheme != "redis") throw std::invalid_argument(kExpected);
    if (!parsed.params.empty())
        throw std::invalid_argument("a redis:// URL takes no ?parameters; " +
                                    std::string(kExpected));
    out.user = parsed.user;
    out.password = parsed.password;
    // The host part: host, [v6 address] or empty, then an optional :port.
    std::string hosts = parsed.hosts;
    std::string port;
    const size_t bracket = hosts.rfind(']');
    const size_t colon = hosts.rfind(':');
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
        port = hosts.substr(colon + 1);
        hosts.resize(colon);
    }
    if (hosts.size() >= 2 && hosts.front() == '[' && hosts.back() == ']')
        hosts = hosts.substr(1, hosts.size() - 2);
    if (hosts.find_first_of("[],@ ") != std::string::npos)
        throw std::invalid_argument("the host part is not one host name; " +
                                    std::string(kExpected));
    if (!hosts.empty()) out.host = hosts;
    auto number = [&](const std::string& text, const char* what, int max) {
        if (text.empty() || text.size() > 9 ||
            text.find_first_not_of("0123456789") != std::string::npos || std::stoi(text) > max)
            throw std::invalid_argument(std::string("the ") + what + " is not a number up to " +
                                        std::to_string(max) + "; " + kExpected);
        return std::stoi(text);
    };
    if (!port.empty()) out.port = number(port, "port", 65535);
    std::string db = parsed.path;
    if (!db.empty() && db.back() == '/') db.pop_back();
    if (!db.empty()) out.db = number(db, "database", 1 << 20);
    out.redacted =
        "redis://" +
        std::string(out.password.empty() ? "" : (out.user.empty() ? "***@" : out.user + ":***@")) +
        (out.host.find(':') != std::string::npos ? "[" + out.host + "]" : out.host) + ":" +
        std::to_string(out.port) + "/" + std::to_string(out.db);
    return out;
}

void RedisClient::connect() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    pending_ = 0;
    // Non-blocking from the start: a connect, like every later wait, is one we can bound.
    redisContext* c = url_.unix_path.empty() ? redisConnectNonBlock(url_.host.c_str(), url_.port)
                                             : redisConnectUnixNonBlock(url_.unix_path.c_str());
    if (!c) throw RedisError("redis " + url_.redacted + ": out of memory");
    context_.reset(c);
    if (c->err) broken(std::string("cannot connect: ") + c->errstr);
    await(POLLOUT, deadline, "connecting");
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    if (error != 0) broken(std::string("cannot connect: ") + std::strerror(error));
    // Finds a peer that vanished (host down, network cut) while no command is waiting.
    if (url_.unix_path.empty() && redisEnableKeepAlive(c) != REDIS_OK)
        broken(std::string("cannot enable TCP keepalive: ") + c->errstr);
    try {
        if (!url_.password.empty()) {
            if (url_.user.empty())
                command({"AUTH", url_.password});
            else
                command({"AUTH", url_.user, url_.password});
        }
        if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
        // Asked even when there is nothing to set up: an endpoint that accepts connections but
        // never answers is found here, not at the first read.
        command({"PING"});
    } catch (const RedisError&) {
        context_.reset();
        pending_ = 0;
        throw;
    }
}

void RedisClient::await(short events, std::chrono::steady_clock::time_point deadline,
                        const char* doing) {
    switch (wait_socket(context_->fd, events, deadline)) {
        case SocketWait::Ready:
            return;
        case SocketWait::TimedOut:
            broken("no answer within " + duration_text(timeout_) + " (connect_timeout) while " +
                   doing);
        case SocketWait::Stopped:
            broken(std::string("gave up ") + doing + ": the run is stopping");
    }
    broken("unexpected wait outcome");
}

void RedisClient::append(const std::vector<std::string>& args) {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK)
        broken();
    ++pending_;
}

void RedisClient::broken() {
    broken(context_ ? context_->errstr : "not connected");
}

void RedisClient::broken(const std::string& error) {
    context_.reset();  // a hiredis context is unusable after an I/O error
    pending_ = 0;
    throw RedisError("redis " + url_.redacted + ": " + scrub_secrets(error));
}

void RedisClient::write_out(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        int done = 0;
        if (redisBufferWrite(context_.get(), &done) != REDIS_OK) broken();
        if (done) return;
        // The server may be answering while it reads: its replies must not fill our socket
        // buffer, or it would stop reading.
        await(POLLOUT, deadline, "sending");
        deadline = std::chrono::steady_clock::now() + timeout_;
    }
}

void RedisClient::send(const std::vector<std::string>& args) {
    append(args);
    write_out(std::chrono::steady_clock::now() + timeout_);
}

// The oldest reply, reading until the reader holds a whole one. The server may stay silent for
// `blocks` + the timeout at most; any byte it sends renews that.
void* RedisClient::read_reply(std::chrono::milliseconds blocks) {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) broken();
    if (raw) return raw;
    write_out(std::chrono::steady_clock::now() + timeout_);
    auto deadline = std::chrono::steady_clock::now() + timeout_ + blocks;
    while (!raw) {
        await(POLLIN, deadline, "waiting for a reply");
        if (redisBufferRead(context_.get()) != REDIS_OK) broken();
        if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) broken();
        deadline = std::chrono::steady_clock::now() + timeout_ + blocks;
    }
    return raw;
}

RedisReply RedisClient::any_reply() {
    RedisReply owned(static_cast<redisReply*>(read_reply(std::chrono::milliseconds(0))));
    --pending_;
    return owned;
}

RedisReply RedisClient::reply(std::chrono::milliseconds blocks) {
    RedisReply owned(static_cast<redisReply*>(read_reply(blocks)));
    --pending_;
    if (owned->type == REDIS_REPLY_ERROR)
        throw RedisError("redis " + url_.redacted + ": " +
                         scrub_secrets(std::string(owned->str, owned->len)));
    return owned;
}

void RedisClient::reply_strings(std::vector<char>& storage, std::vector<Place>& places) {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    redisReader* reader = context_->reader;
    StringCapture capture{reader->fn, &storage, &places, 0};
    void* saved_privdata = reader->privdata;
    reader->fn = &kCaptureFunctions;
    reader->privdata = &capture;
    g_active_capture = &capture;
    void* raw = nullptr;
    try {
        raw = read_reply(std::chrono::milliseconds(0));
    } catch (...) {
        // broken() freed the context and its reader with it
        g_active_capture = nullptr;
        throw;
    }
    reader->fn = capture.defaults;
    reader->privdata = saved_privdata;
    g_active_capture = nullptr;
    --pending_;
    if (raw == &capture.placeholder) return;
    RedisReply owned(static_cast<redisReply*>(raw));
    if (owned->type == REDIS_REPLY_ERROR)
        throw RedisError("redis " + url_.redacted + ": " +
                         scrub_secrets(std::string(owned->str, owned->len)));
    throw RedisError("redis " + url_.redacted + ": expected a list of strings");
}

RedisReply RedisClient::command(const std::vector<std::string>& args,
                                std::chrono::milliseconds blocks) {
    append(args);
    while (pending_ > 1) reply();
    try {
        return reply(blocks);
    } catch (const RedisError& e) {
        throw RedisError(std::string(e.what()) + " (" + args[0] + ")");
    }
}

}  // namespace kbridge
