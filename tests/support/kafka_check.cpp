#include "support/kafka_check.h"

#include <librdkafka/rdkafka.h>

#include <sstream>
#include <stdexcept>

#include "connectors/kafka/handles.h"
#include "support/process.h"

namespace kbridge::test {

std::vector<Consumed> kcat_consume(const std::string& bootstraps, const std::string& topic) {
    const std::string out = shell("kcat -b '" + bootstraps + "' -C -t '" + topic +
                                  "' -o beginning -e -q -f '%k\\t%h\\t%s\\n' 2>/dev/null");
    std::vector<Consumed> messages;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        const auto first = line.find('\t');
        const auto second = line.find('\t', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        messages.push_back({line.substr(0, first), line.substr(second + 1),
                            line.substr(first + 1, second - first - 1)});
    }
    return messages;
}

void kcat_produce(const std::string& bootstraps, const std::string& topic,
                  const std::vector<std::string>& lines, const std::string& dir) {
    static int counter = 0;
    const std::string file = dir + "/produce-" + std::to_string(counter++) + ".txt";
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    write_file(file, text);
    shell("kcat -P -b '" + bootstraps + "' -t '" + topic +
          "' -K '\t' -Z -X enable.idempotence=true -l '" + file + "' 2>&1");
}

int64_t message_count(const std::string& bootstraps, const std::string& topic) {
    KafkaConf conf = make_kafka_conf({bootstraps, {{"log_level", "0"}}});
    char error[512];
    KafkaHandle consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.release(), error, sizeof error));
    if (!consumer) throw std::runtime_error(error);
    KafkaTopic handle(rd_kafka_topic_new(consumer.get(), topic.c_str(), nullptr));
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(consumer.get(), 0, handle.get(), &metadata, 10000))
        throw std::runtime_error("metadata for " + topic);
    int64_t total = 0;
    for (int t = 0; t < metadata->topic_cnt; ++t)
        for (int p = 0; p < metadata->topics[t].partition_cnt; ++p) {
            int64_t low = 0, high = 0;
            if (rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(),
                                                 metadata->topics[t].partitions[p].id, &low, &high,
                                                 10000))
                throw std::runtime_error("watermarks for " + topic);
            total += high;
        }
    rd_kafka_metadata_destroy(metadata);
    return total;
}

std::vector<std::string> make_events(int from, int to) {
    static const char* kActions[] = {"view", "click", "cart", "buy"};
    std::vector<std::string> events;
    events.reserve(to - from);
    char buffer[160];
    for (int id = from; id < to; ++id) {
        std::snprintf(buffer, sizeof buffer,
                      R"({"id":%d,"user_id":%d,"action":"%s","item":"item-%05d","ts":%lld})", id,
                      static_cast<int>(id * 7919LL % 10007), kActions[id % 4], id % 50000,
                      1700000000000LL + id);
        events.emplace_back(buffer);
    }
    return events;
}

long long event_id(const std::string& json) {
    const auto at = json.find("\"id\":");
    if (at == std::string::npos) return -1;
    return std::atoll(json.c_str() + at + 5);
}

}  // namespace kbridge::test
