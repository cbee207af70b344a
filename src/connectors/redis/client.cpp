#include "connectors/redis/client.h"

#include <hiredis/read.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/secrets.h"
#include "core/wait.h"

namespace kbridge {

// hiredis builds replies through a table of functions; while reading a reply of many strings,
// ours put the strings into caller-owned storage and hand hiredis a placeholder. Everything else
// (an error reply, say) is built by hiredis's own functions.
struct RedisReplyCapture {
    redisReplyObjectFunctions* defaults;
    std::vector<char>* storage;
    std::vector<RedisClient::Place>* places;  // reply_strings(): one flat array of strings
    std::vector<RedisClient::Item>* items;    // reply_items(): any nesting
    char placeholder;
};

namespace {

using Capture = RedisReplyCapture;

constexpr size_t kReaderBufferKept = 4 << 20;

Capture* capture_of(const redisReadTask* task) {
    return static_cast<Capture*>(task->privdata);
}

int depth_of(const redisReadTask* task) {
    int depth = 0;
    for (const redisReadTask* t = task->parent; t; t = t->parent) ++depth;
    return depth;
}

void* capture_string(const redisReadTask* task, char* str, size_t len) {
    Capture* c = capture_of(task);
    if (!task->parent) return c->defaults->createString(task, str, len);
    if (c->items)
        c->items->push_back(
            {task->type, depth_of(task), c->storage->size(), static_cast<long long>(len)});
    else
        c->places->push_back({c->storage->size(), len});
    c->storage->insert(c->storage->end(), str, str + len);
    return &c->placeholder;
}
void* capture_array(const redisReadTask* task, int elements) {
    Capture* c = capture_of(task);
    if (c->items)
        c->items->push_back({REDIS_REPLY_ARRAY, depth_of(task), 0, elements});
    else if (!task->parent && elements > 0)
        c->places->reserve(c->places->size() + elements);
    return &c->placeholder;
}
void* capture_integer(const redisReadTask* task, long long value) {
    Capture* c = capture_of(task);
    if (!task->parent) return c->defaults->createInteger(task, value);
    if (c->items) c->items->push_back({REDIS_REPLY_INTEGER, depth_of(task), 0, value});
    return &c->placeholder;
}
void* capture_nil(const redisReadTask* task) {
    Capture* c = capture_of(task);
    if (c->items) {
        // A nil reply (XREADGROUP finding nothing within BLOCK) is an item too.
        c->items->push_back({REDIS_REPLY_NIL, depth_of(task), 0, 0});
        return &c->placeholder;
    }
    return task->parent ? &c->placeholder : c->defaults->createNil(task);
}
// hiredis frees what an aborted read built; placeholders are not its to free. The real reply
// objects it may free are only ever top-level ones, which hold no placeholders.
thread_local Capture* g_active_capture = nullptr;
void capture_free(void* object) {
    if (g_active_capture && object == &g_active_capture->placeholder) return;
    if (g_active_capture) g_active_capture->defaults->freeObject(object);
}

redisReplyObjectFunctions kCaptureFunctions = {capture_string, capture_array, capture_integer,
                                               capture_nil, capture_free};

// A reply hiredis built (after a Cluster redirection), as reply_items() gives it.
void flatten(const redisReply* r, int depth, std::vector<char>& storage,
             std::vector<RedisClient::Item>& items) {
    switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            items.push_back({r->type, depth, storage.size(), static_cast<long long>(r->len)});
            storage.insert(storage.end(), r->str, r->str + r->len);
            return;
        case REDIS_REPLY_ARRAY:
            items.push_back({r->type, depth, 0, static_cast<long long>(r->elements)});
            for (size_t i = 0; i < r->elements; ++i)
                flatten(r->element[i], depth + 1, storage, items);
            return;
        case REDIS_REPLY_INTEGER:
            items.push_back({r->type, depth, 0, r->integer});
            return;
        default:
            items.push_back({REDIS_REPLY_NIL, depth, 0, 0});
    }
}

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
    // The host part: host, [v6 address] or empty, then an optional :port; several, comma
    // separated, for a Redis Cluster.
    auto number = [&](const std::string& text, const char* what, int max) {
        if (text.empty() || text.size() > 9 ||
            text.find_first_not_of("0123456789") != std::string::npos || std::stoi(text) > max)
            throw std::invalid_argument(std::string("the ") + what + " is not a number up to " +
                                        std::to_string(max) + "; " + kExpected);
        return std::stoi(text);
    };
    auto host_and_port = [&](std::string hosts, NodeAddress& node) {
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
        node.host = hosts.empty() ? out.host : hosts;
        node.port = port.empty() ? out.port : number(port, "port", 65535);
    };
    size_t start = 0;
    for (;;) {
        const size_t comma = parsed.hosts.find(',', start);
        NodeAddress node;
        host_and_port(
            parsed.hosts.substr(start, comma == std::string::npos ? comma : comma - start), node);
        out.nodes.push_back(node);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    out.cluster = out.nodes.size() > 1;
    out.host = out.nodes[0].host;
    out.port = out.nodes[0].port;
    std::string db = parsed.path;
    if (!db.empty() && db.back() == '/') db.pop_back();
    if (!db.empty()) out.db = number(db, "database", 1 << 20);
    if (out.cluster && out.db != 0)
        throw std::invalid_argument("a Redis Cluster has only database 0");
    std::string nodes;
    for (const auto& n : out.nodes)
        nodes += (nodes.empty() ? "" : ",") +
                 (n.host.find(':') != std::string::npos ? "[" + n.host + "]" : n.host) + ":" +
                 std::to_string(n.port);
    out.redacted =
        "redis://" +
        std::string(out.password.empty() ? "" : (out.user.empty() ? "***@" : out.user + ":***@")) +
        nodes + "/" + std::to_string(out.db);
    return out;
}

RedisUrl redis_url_option(const Options& connector, const Options& defaults) {
    const Options& where = connector.has("url") ? connector : defaults;
    RedisUrl url;
    try {
        url = parse_redis_url(where.str("url"));
    } catch (const std::invalid_argument& e) {
        throw where.error("url", e.what());
    }
    const Options& cluster = connector.has("cluster") ? connector : defaults;
    if (cluster.boolean("cluster")) {
        if (!url.unix_path.empty())
            throw cluster.error("cluster", "a Redis Cluster is reached over TCP, not unix://");
        if (url.db != 0) throw where.error("url", "a Redis Cluster has only database 0");
        url.cluster = true;
    }
    return url;
}

void RedisClient::connect() {
    if (!url_.cluster) return connect_node(url_.host, url_.port);
    // The node last used first (it likely still owns the slot), then the URL's.
    std::vector<NodeAddress> candidates;
    if (!node_.host.empty()) candidates.push_back(node_);
    candidates.insert(candidates.end(), url_.nodes.begin(), url_.nodes.end());
    std::string errors;
    for (const auto& candidate : candidates) {
        try {
            connect_node(candidate.host, candidate.port);
            if (slot_ < 0) return;
            const RedisReply slots = command({"CLUSTER", "SLOTS"});
            const std::optional<NodeAddress> owner = slot_owner(slots.get(), slot_);
            if (!owner)
                throw RedisError("redis " + url_.redacted + ": no node serves slot " +
                                 std::to_string(slot_) + " (is the cluster complete?)");
            if (!(*owner == candidate)) connect_node(owner->host, owner->port);
            return;
        } catch (const RedisError& e) {
            errors += std::string(errors.empty() ? "" : "; ") + e.what();
        }
    }
    throw RedisError(errors);
}

void RedisClient::connect_node(const std::string& host, int port) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    pending_ = 0;
    sent_.clear();
    moved_to_.reset();
    node_ = {host, port};
    // Non-blocking from the start: a connect, like every later wait, is one we can bound.
    redisContext* c = url_.unix_path.empty() ? redisConnectNonBlock(host.c_str(), port)
                                             : redisConnectUnixNonBlock(url_.unix_path.c_str());
    if (!c) throw RedisError("redis " + url_.redacted + ": out of memory");
    context_.reset(c);
    if (c->err) broken(std::string("cannot connect: ") + c->errstr);
    // A batch's reply runs to 100s of KB: the reader keeps its buffer for the next one instead
    // of freeing it whenever more than 16 KB lie unused (which costs a heap consolidation too).
    c->reader->maxbuf = kReaderBufferKept;
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

void RedisClient::append(size_t count, const char* const* argv, const size_t* lengths) {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    if (moved_to_ && pending_ == 0) {
        // The slot moved: every reply the old node owed is in, so go over.
        const NodeAddress to = *moved_to_;
        spdlog::info("redis {}: slot {} moved to {}", url_.redacted, slot_, to.text());
        connect_node(to.host, to.port);
    }
    if (url_.cluster) {
        std::vector<std::string> args;
        args.reserve(count);
        for (size_t i = 0; i < count; ++i) args.emplace_back(argv[i], lengths[i]);
        sent_.push_back(std::move(args));
    }
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(count),
                               const_cast<const char**>(argv), lengths) != REDIS_OK)
        broken();
    ++pending_;
}

void RedisClient::broken() {
    broken(context_ ? context_->errstr : "not connected");
}

void RedisClient::broken(const std::string& error) {
    context_.reset();  // a hiredis context is unusable after an I/O error
    pending_ = 0;
    sent_.clear();
    throw RedisError("redis " + url_.redacted +
                     (url_.cluster ? " (node " + node_.text() + ")" : "") + ": " +
                     scrub_secrets(error));
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

// One command of `args` (strings or views), written out at once.
template <typename Args>
void RedisClient::send_arguments(const Args& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    append(args.size(), argv.data(), lengths.data());
    write_out(std::chrono::steady_clock::now() + timeout_);
}

void RedisClient::send(const std::vector<std::string>& args) {
    send_arguments(args);
}

void RedisClient::send_views(const std::vector<std::string_view>& args) {
    send_arguments(args);
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

void* RedisClient::next_reply(std::chrono::milliseconds blocks, const void* placeholder) {
    void* raw = read_reply(blocks);
    if (!url_.cluster || sent_.empty()) return raw;
    const std::vector<std::string> args = std::move(sent_.front());
    sent_.pop_front();
    if (raw == placeholder) return raw;
    const redisReply* r = static_cast<const redisReply*>(raw);
    if (r->type != REDIS_REPLY_ERROR) return raw;
    const auto redirection = parse_redirection(std::string_view(r->str, r->len));
    if (!redirection) return raw;
    freeReplyObject(raw);
    return redirect(args, *redirection).release();
}

RedisClient& RedisClient::node_client(const NodeAddress& at) {
    auto& client = others_[at.text()];
    if (!client) {
        RedisUrl url = url_;
        url.cluster = false;
        url.host = at.host;
        url.port = at.port;
        client = std::make_unique<RedisClient>(url, timeout_);
    }
    if (!client->connected()) client->connect();
    return *client;
}

// Runs a redirected command where the cluster says it belongs, as often as it is redirected
// again, within the timeout. Only MOVED changes where this client's later commands go.
RedisReply RedisClient::redirect(const std::vector<std::string>& args, Redirection redirection) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    NodeAddress at = moved_to_ ? *moved_to_ : node_;
    for (;;) {
        bool asking = false;
        switch (redirection.kind) {
            case Redirection::Moved:
                at = redirection.to;
                // A key of another slot (an upgrade's old names) moves nothing of ours.
                if (redirection.slot == slot_ && !(at == node_)) moved_to_ = at;
                break;
            case Redirection::Ask:
                at = redirection.to;
                asking = true;
                break;
            case Redirection::TryAgain:
                // A slot migrating with our keys split across two nodes: wait for the move.
                if (!sleep_unless_stopped(std::chrono::milliseconds(50)))
                    throw RedisError("redis " + url_.redacted + ": gave up waiting for slot " +
                                     std::to_string(slot_) + ": the run is stopping");
                break;
        }
        if (std::chrono::steady_clock::now() > deadline)
            throw RedisError("redis " + url_.redacted + ": " + args[0] +
                             " still redirected after " + duration_text(timeout_) +
                             " (connect_timeout)");
        RedisClient& node = node_client(at);
        if (asking) node.send({"ASKING"});
        node.send(args);
        if (asking) node.reply();
        RedisReply answer = node.any_reply();
        if (answer->type != REDIS_REPLY_ERROR) return answer;
        const auto again = parse_redirection(std::string_view(answer->str, answer->len));
        if (!again) return answer;
        redirection = *again;
    }
}

RedisReply RedisClient::any_reply() {
    RedisReply owned(static_cast<redisReply*>(next_reply(std::chrono::milliseconds(0))));
    --pending_;
    return owned;
}

RedisReply RedisClient::reply(std::chrono::milliseconds blocks) {
    RedisReply owned(static_cast<redisReply*>(next_reply(blocks)));
    --pending_;
    if (owned->type == REDIS_REPLY_ERROR)
        throw RedisError("redis " + url_.redacted + ": " +
                         scrub_secrets(std::string(owned->str, owned->len)));
    return owned;
}

RedisReply RedisClient::read_captured(RedisReplyCapture& capture,
                                      std::chrono::milliseconds blocks) {
    if (!context_) throw RedisError("redis " + url_.redacted + ": not connected");
    redisReader* reader = context_->reader;
    capture.defaults = reader->fn;
    void* saved_privdata = reader->privdata;
    reader->fn = &kCaptureFunctions;
    reader->privdata = &capture;
    g_active_capture = &capture;
    void* raw = nullptr;
    try {
        raw = read_reply(blocks);
    } catch (...) {
        // broken() freed the context and its reader with it
        g_active_capture = nullptr;
        throw;
    }
    reader->fn = capture.defaults;
    reader->privdata = saved_privdata;
    g_active_capture = nullptr;
    --pending_;
    std::optional<std::vector<std::string>> args;
    if (url_.cluster && !sent_.empty()) {
        args = std::move(sent_.front());
        sent_.pop_front();
    }
    if (raw == &capture.placeholder) return nullptr;
    RedisReply owned(static_cast<redisReply*>(raw));
    if (args && owned->type == REDIS_REPLY_ERROR) {
        const auto redirection = parse_redirection(std::string_view(owned->str, owned->len));
        if (redirection) owned = redirect(*args, *redirection);
    }
    if (owned->type == REDIS_REPLY_ERROR)
        throw RedisError("redis " + url_.redacted + ": " +
                         scrub_secrets(std::string(owned->str, owned->len)));
    return owned;
}

void RedisClient::reply_strings(std::vector<char>& storage, std::vector<Place>& places) {
    Capture capture{nullptr, &storage, &places, nullptr, 0};
    const RedisReply built = read_captured(capture, std::chrono::milliseconds(0));
    if (!built) return;
    if (built->type != REDIS_REPLY_ARRAY)
        throw RedisError("redis " + url_.redacted + ": expected a list of strings");
    for (size_t i = 0; i < built->elements; ++i) {
        const redisReply* e = built->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        places.push_back({storage.size(), e->len});
        storage.insert(storage.end(), e->str, e->str + e->len);
    }
}

void RedisClient::reply_items(std::vector<char>& storage, std::vector<Item>& items,
                              std::chrono::milliseconds blocks) {
    Capture capture{nullptr, &storage, nullptr, &items, 0};
    const RedisReply built = read_captured(capture, blocks);
    if (built) flatten(built.get(), 0, storage, items);
}

RedisReply RedisClient::command(const std::vector<std::string>& args,
                                std::chrono::milliseconds blocks) {
    send(args);
    while (pending_ > 1) reply();
    try {
        return reply(blocks);
    } catch (const RedisError& e) {
        throw RedisError(std::string(e.what()) + " (" + args[0] + ")");
    }
}

}  // namespace kbridge
