#include "connectors/sql/batch.h"

#include <unordered_map>

namespace kbridge {

std::vector<size_t> SqlBatch::used_columns(const std::vector<size_t>& records, SqlMode mode,
                                           const std::vector<size_t>& keys) const {
    std::vector<bool> used(width, false);
    for (size_t k : keys) used[k] = mode != SqlMode::Insert;
    for (size_t r : records) {
        if (rows[r].tombstone) continue;
        const Cell* row = &cells[r * width];
        for (size_t c = 0; c < width; ++c)
            if (row[c].length != kAbsent) used[c] = true;
    }
    std::vector<size_t> out;
    for (size_t c = 0; c < width; ++c)
        if (used[c]) out.push_back(c);
    return out;
}

TopicPartitions SqlBatch::partitions(const std::vector<size_t>& records) const {
    TopicPartitions out;
    for (size_t r : records) out.insert({topic(r), partition(r)});
    return out;
}

std::vector<size_t> last_per_key(const SqlBatch& batch, const std::vector<size_t>& records,
                                 const std::vector<size_t>& keys) {
    std::unordered_map<std::string, size_t> last;  // key text -> place in `records`
    last.reserve(records.size());
    std::vector<bool> kept(records.size(), true);
    std::string key;
    for (size_t i = 0; i < records.size(); ++i) {
        key.clear();
        for (size_t k : keys) {
            const auto v = batch.value(records[i], k);
            // Length-prefixed, so that ("a,b", "c") and ("a", "b,c") differ; NULL apart.
            if (!v) {
                key += "N;";
                continue;
            }
            key += std::to_string(v->size());
            key += ':';
            key += *v;
        }
        auto [it, inserted] = last.try_emplace(key, i);
        if (!inserted) {
            kept[it->second] = false;
            it->second = i;
        }
    }
    std::vector<size_t> out;
    out.reserve(last.size());
    for (size_t i = 0; i < records.size(); ++i)
        if (kept[i]) out.push_back(records[i]);
    return out;
}

}  // namespace kbridge
