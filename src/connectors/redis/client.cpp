#include "connectors/redis/client.h"

#include <hiredis/read.h>
#include <sys/time.h>

#include "core/secrets.h"

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

void RedisClient::connect(std::chrono::milliseconds timeout) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    redisContext* c = url_.unix_path.empty()
                          ? redisConnectWithTimeout(url_.host.c_str(), url_.port, tv)
                          : redisConnectUnixWithTimeout(url_.unix_path.c_str(), tv);
    if (!c) throw RedisError("redis " + url_.redacted + ": out of memory");
    pending_ = 0;
    context_.reset(c);
    if (c->err) {
        const std::string error = c->errstr;
        context_.reset();
        throw RedisError("redis " + url_.redacted + ": cannot connect: " + scrub_secrets(error));
    }
    // Commands may block (BLMOVE) for up to their own timeout; do not cut them short.
    timeval no_timeout{0, 0};
    redisSetTimeout(c, no_timeout);
    if (!url_.password.empty()) {
        if (url_.user.empty())
            command({"AUTH", url_.password});
        else
            command({"AUTH", url_.user, url_.password});
    }
    if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
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
    const std::string error = context_ ? context_->errstr : "not connected";
    context_.reset();  // a hiredis context is unusable after an I/O error
    pending_ = 0;
    throw RedisError("redis " + url_.redacted + ": " + scrub_secrets(error));
}

void RedisClient::send(const std::vector<std::string>& args) {
    append(args);
    int done = 0;
    while (!done)
        if (redisBufferWrite(context_.get(), &done) != REDIS_OK) broken();
}

RedisReply RedisClient::any_reply() {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) != REDIS_OK || !raw) broken();
    --pending_;
    return RedisReply(static_cast<redisReply*>(raw));
}

RedisReply RedisClient::reply() {
    RedisReply owned = any_reply();
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
    const int status = redisGetReply(context_.get(), &raw);
    reader->fn = capture.defaults;
    reader->privdata = saved_privdata;
    g_active_capture = nullptr;
    if (status != REDIS_OK || !raw) broken();
    --pending_;
    if (raw == &capture.placeholder) return;
    RedisReply owned(static_cast<redisReply*>(raw));
    if (owned->type == REDIS_REPLY_ERROR)
        throw RedisError("redis " + url_.redacted + ": " +
                         scrub_secrets(std::string(owned->str, owned->len)));
    throw RedisError("redis " + url_.redacted + ": expected a list of strings");
}

RedisReply RedisClient::command(const std::vector<std::string>& args) {
    append(args);
    while (pending_ > 1) reply();
    try {
        return reply();
    } catch (const RedisError& e) {
        throw RedisError(std::string(e.what()) + " (" + args[0] + ")");
    }
}

}  // namespace kbridge
