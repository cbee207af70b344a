#pragma once
// Reads back what arrived in Kafka: with kcat (a client we did not write) and with watermarks.
#include <cstdint>
#include <string>
#include <vector>

namespace kbridge::test {

struct Consumed {
    std::string key;
    std::string value;
    std::string headers;  // kcat's %h: name=value,name=value
};

// Every message of `topic` from the beginning, read by kcat. Values must not contain tabs or
// newlines (the test data never does).
std::vector<Consumed> kcat_consume(const std::string& bootstraps, const std::string& topic);
// Produces with kcat (-K tab, -Z): each line is KEY<TAB>VALUE; an empty key or value is sent as
// none (an empty value: a tombstone). Lines without a tab are values without a key.
void kcat_produce(const std::string& bootstraps, const std::string& topic,
                  const std::vector<std::string>& lines, const std::string& dir);
// The sum of the partitions' high watermarks: how many messages the topic has received.
int64_t message_count(const std::string& bootstraps, const std::string& topic);

// ~85-byte user-behaviour events with ids [from, to).
std::vector<std::string> make_events(int from, int to);
// The "id" of an event produced by make_events; -1 when absent.
long long event_id(const std::string& json);

}  // namespace kbridge::test
