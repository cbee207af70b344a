// kbridge topics list|describe|create|delete|alter: kafka-topics.sh and kafka-configs.sh through
// librdkafka's Admin API, with the brokers and properties of a pipeline file or --brokers.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>

#include "cli/commands.h"
#include "config/config.h"
#include "connectors/kafka/handles.h"

namespace kbridge {
namespace {

constexpr int kTimeoutMs = 15000;
constexpr int kAdminTimeoutMs = 5000;  // an unanswered admin request becomes an error this soon

struct AdminOptionsDeleter {
    void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using AdminOptions = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

AdminOptions admin_options(rd_kafka_t* rk, int timeout_ms = kAdminTimeoutMs) {
    AdminOptions options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY));
    char error[256];
    rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, error, sizeof error);
    return options;
}

struct EventDeleter {
    void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using KafkaEvent = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

KafkaSettings settings_of(const TopicsArgs& args) {
    KafkaSettings s;
    if (!args.config.empty()) {
        const Config config = load_config(args.config, {});
        s.brokers = config.kafka.str("brokers");
        s.properties = config.kafka.string_map("properties");
    }
    if (!args.brokers.empty()) s.brokers = args.brokers;
    if (s.brokers.empty()) s.brokers = "localhost:9092";
    return s;
}

// Waits for the Admin API's answer and returns it; throws on a request-level error.
KafkaEvent await(rd_kafka_queue_t* queue, const char* what) {
    KafkaEvent event(rd_kafka_queue_poll(queue, kTimeoutMs));
    if (!event) throw std::runtime_error(std::string(what) + ": no answer in 15 s");
    if (const rd_kafka_resp_err_t err = rd_kafka_event_error(event.get()))
        throw std::runtime_error(
            std::string(what) + ": " + rd_kafka_event_error_string(event.get()) +
            (err == RD_KAFKA_RESP_ERR__TIMED_OUT
                 ? " (the brokers did not answer; librdkafka's mock cluster, behind dev-kafka and "
                   "brokers: embedded, never answers admin requests)"
                 : ""));
    return event;
}

// One line per topic of a create/delete/partitions result; false when any failed.
bool report(const rd_kafka_topic_result_t** results, size_t count, const char* done) {
    bool ok = true;
    for (size_t i = 0; i < count; ++i) {
        const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err) {
            std::fprintf(stderr, "kbridge: topic %s: %s\n", rd_kafka_topic_result_name(results[i]),
                         rd_kafka_topic_result_error_string(results[i])
                             ? rd_kafka_topic_result_error_string(results[i])
                             : rd_kafka_err2str(err));
            ok = false;
        } else {
            std::printf("%s %s\n", done, rd_kafka_topic_result_name(results[i]));
        }
    }
    return ok;
}

bool set_configs(const std::vector<std::string>& configs,
                 const std::function<rd_kafka_resp_err_t(const char*, const char*)>& set) {
    for (const auto& c : configs) {
        const auto eq = c.find('=');
        if (eq == std::string::npos || eq == 0)
            throw std::invalid_argument("--config takes NAME=VALUE, not '" + c + "'");
        if (set(c.substr(0, eq).c_str(), c.substr(eq + 1).c_str()))
            throw std::invalid_argument("--config " + c.substr(0, eq) + ": not accepted");
    }
    return true;
}

int list_or_describe(rd_kafka_t* rk, const TopicsArgs& args) {
    const rd_kafka_metadata_t* metadata = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &metadata, kTimeoutMs);
    if (err) throw std::runtime_error(std::string("metadata: ") + rd_kafka_err2str(err));
    std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> owned(
        metadata, rd_kafka_metadata_destroy);
    std::vector<const rd_kafka_metadata_topic_t*> topics;
    for (int i = 0; i < metadata->topic_cnt; ++i) topics.push_back(&metadata->topics[i]);
    std::sort(topics.begin(), topics.end(),
              [](auto a, auto b) { return std::string(a->topic) < b->topic; });
    if (args.action == "list") {
        for (const auto* t : topics) std::printf("%s\n", t->topic);
        return kExitOk;
    }
    const auto it =
        std::find_if(topics.begin(), topics.end(), [&](auto t) { return args.topic == t->topic; });
    if (it == topics.end() || (*it)->err) {
        std::fprintf(stderr, "kbridge: topic %s does not exist\n", args.topic.c_str());
        return kExitFailure;
    }
    const auto* t = *it;
    std::printf("Topic: %s\tPartitionCount: %d\tReplicationFactor: %d\n", t->topic,
                t->partition_cnt, t->partition_cnt ? t->partitions[0].replica_cnt : 0);
    for (int p = 0; p < t->partition_cnt; ++p) {
        const auto& part = t->partitions[p];
        std::string replicas, isrs;
        for (int r = 0; r < part.replica_cnt; ++r)
            replicas += (r ? "," : "") + std::to_string(part.replicas[r]);
        for (int r = 0; r < part.isr_cnt; ++r)
            isrs += (r ? "," : "") + std::to_string(part.isrs[r]);
        std::printf("\tTopic: %s\tPartition: %d\tLeader: %d\tReplicas: %s\tIsr: %s\n", t->topic,
                    part.id, part.leader, replicas.c_str(), isrs.c_str());
    }
    // Configs, where the brokers answer DescribeConfigs.
    KafkaQueue queue(rd_kafka_queue_new(rk));
    rd_kafka_ConfigResource_t* resource =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, args.topic.c_str());
    rd_kafka_DescribeConfigs(rk, &resource, 1, admin_options(rk, 3000).get(), queue.get());
    rd_kafka_ConfigResource_destroy(resource);
    KafkaEvent event(rd_kafka_queue_poll(queue.get(), kTimeoutMs));
    const rd_kafka_DescribeConfigs_result_t* result =
        event ? rd_kafka_event_DescribeConfigs_result(event.get()) : nullptr;
    size_t count = 0;
    const rd_kafka_ConfigResource_t** resources =
        result ? rd_kafka_DescribeConfigs_result_resources(result, &count) : nullptr;
    if (!event || rd_kafka_event_error(event.get()) || count != 1 ||
        rd_kafka_ConfigResource_error(resources[0])) {
        const char* why = !event ? "no answer"
                          : rd_kafka_event_error(event.get())
                              ? rd_kafka_event_error_string(event.get())
                          : count == 1 ? rd_kafka_ConfigResource_error_string(resources[0])
                                       : "no result";
        std::printf("\tConfigs: unavailable (%s)\n", why ? why : "unknown error");
        return kExitOk;
    }
    size_t entries = 0;
    const rd_kafka_ConfigEntry_t** configs =
        rd_kafka_ConfigResource_configs(resources[0], &entries);
    std::string overridden;
    for (size_t i = 0; i < entries; ++i)
        if (!rd_kafka_ConfigEntry_is_default(configs[i]))
            overridden +=
                (overridden.empty() ? "" : ",") +
                std::string(rd_kafka_ConfigEntry_name(configs[i])) + "=" +
                (rd_kafka_ConfigEntry_is_sensitive(configs[i]) ? "[sensitive]"
                 : rd_kafka_ConfigEntry_value(configs[i]) ? rd_kafka_ConfigEntry_value(configs[i])
                                                          : "");
    std::printf("\tConfigs: %s\n", overridden.c_str());
    return kExitOk;
}

int create(rd_kafka_t* rk, const TopicsArgs& args) {
    char error[512];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
        args.topic.c_str(), args.partitions, args.replication_factor, error, sizeof error);
    if (!topic) throw std::invalid_argument(error);
    std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> owned(
        topic, rd_kafka_NewTopic_destroy);
    set_configs(args.configs, [&](const char* n, const char* v) {
        return rd_kafka_NewTopic_set_config(topic, n, v);
    });
    KafkaQueue queue(rd_kafka_queue_new(rk));
    rd_kafka_CreateTopics(rk, &topic, 1, admin_options(rk).get(), queue.get());
    KafkaEvent event = await(queue.get(), "create");
    size_t count = 0;
    const auto** results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event.get()), &count);
    return report(results, count, "created") ? kExitOk : kExitFailure;
}

int remove(rd_kafka_t* rk, const TopicsArgs& args) {
    rd_kafka_DeleteTopic_t* topic = rd_kafka_DeleteTopic_new(args.topic.c_str());
    std::unique_ptr<rd_kafka_DeleteTopic_t, void (*)(rd_kafka_DeleteTopic_t*)> owned(
        topic, rd_kafka_DeleteTopic_destroy);
    KafkaQueue queue(rd_kafka_queue_new(rk));
    rd_kafka_DeleteTopics(rk, &topic, 1, admin_options(rk).get(), queue.get());
    KafkaEvent event = await(queue.get(), "delete");
    size_t count = 0;
    const auto** results = rd_kafka_DeleteTopics_result_topics(
        rd_kafka_event_DeleteTopics_result(event.get()), &count);
    return report(results, count, "deleted") ? kExitOk : kExitFailure;
}

int alter(rd_kafka_t* rk, const TopicsArgs& args) {
    if (args.partitions < 1 && args.configs.empty())
        throw std::invalid_argument("alter needs --partitions N and/or --config NAME=VALUE");
    bool ok = true;
    char error[512];
    if (args.partitions >= 1) {
        rd_kafka_NewPartitions_t* parts =
            rd_kafka_NewPartitions_new(args.topic.c_str(), args.partitions, error, sizeof error);
        if (!parts) throw std::invalid_argument(error);
        std::unique_ptr<rd_kafka_NewPartitions_t, void (*)(rd_kafka_NewPartitions_t*)> owned(
            parts, rd_kafka_NewPartitions_destroy);
        KafkaQueue queue(rd_kafka_queue_new(rk));
        rd_kafka_CreatePartitions(rk, &parts, 1, admin_options(rk).get(), queue.get());
        KafkaEvent event = await(queue.get(), "alter partitions");
        size_t count = 0;
        const auto** results = rd_kafka_CreatePartitions_result_topics(
            rd_kafka_event_CreatePartitions_result(event.get()), &count);
        ok &= report(results, count,
                     ("partitions now " + std::to_string(args.partitions) + " for").c_str());
    }
    if (!args.configs.empty()) {
        rd_kafka_ConfigResource_t* resource =
            rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, args.topic.c_str());
        std::unique_ptr<rd_kafka_ConfigResource_t, void (*)(rd_kafka_ConfigResource_t*)> owned(
            resource, rd_kafka_ConfigResource_destroy);
        set_configs(args.configs, [&](const char* n, const char* v) {
            return rd_kafka_ConfigResource_set_config(resource, n, v);
        });
        KafkaQueue queue(rd_kafka_queue_new(rk));
        rd_kafka_AlterConfigs(rk, &resource, 1, admin_options(rk).get(), queue.get());
        KafkaEvent event = await(queue.get(), "alter configs");
        size_t count = 0;
        const auto** resources = rd_kafka_AlterConfigs_result_resources(
            rd_kafka_event_AlterConfigs_result(event.get()), &count);
        for (size_t i = 0; i < count; ++i) {
            if (rd_kafka_ConfigResource_error(resources[i])) {
                std::fprintf(stderr, "kbridge: topic %s: %s\n", args.topic.c_str(),
                             rd_kafka_ConfigResource_error_string(resources[i]));
                ok = false;
            } else {
                std::printf("configs altered for %s\n", args.topic.c_str());
            }
        }
    }
    return ok ? kExitOk : kExitFailure;
}

}  // namespace

int topics_command(const TopicsArgs& args) {
    try {
        if (args.action != "list" && args.topic.empty())
            throw std::invalid_argument(args.action + " needs a topic name");
        KafkaConf conf = make_kafka_conf(settings_of(args));
        char error[512];
        KafkaHandle rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error));
        if (!rk) throw std::runtime_error(std::string("kafka client: ") + error);
        conf.release();
        if (args.action == "list" || args.action == "describe")
            return list_or_describe(rk.get(), args);
        if (args.action == "create") return create(rk.get(), args);
        if (args.action == "delete") return remove(rk.get(), args);
        return alter(rk.get(), args);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "kbridge: %s\n", e.what());
        return kExitUsage;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "kbridge: topics %s: %s\n", args.action.c_str(), e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kbridge: topics %s: %s\n", args.action.c_str(), e.what());
        return kExitFailure;
    }
}

}  // namespace kbridge
