#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "core/offsets.h"
#include "core/positions.h"
#include "core/record.h"
#include "formats/json.h"

namespace kbridge {

struct BatchState;

// How a sink reports on the records it accepted; called from poll().
class DeliveryListener {
  public:
    virtual ~DeliveryListener() = default;
    virtual void delivered(BatchState* batch) = 0;
    // Refused for good: `record` holds the original bytes so they can be dead-lettered.
    virtual void rejected(BatchState* batch, Record record, const Rejection& why) = 0;
    // Could not be delivered and may not be dropped: the run must stop.
    virtual void failed(BatchState* batch, const std::string& error) = 0;
    // Waits until the dead letter holds every record rejected() so far; false if it failed to
    // (the run then stops). For a sink whose commit moves the source's position past the
    // records it refused (exactly_once): it reports them and settles before committing, as a
    // crash after the commit would otherwise leave them nowhere. A listener that dead-letters
    // nothing has nothing to wait for.
    virtual bool settle_dead_letters() { return true; }
    // A record refused in an earlier run, kept by the sink with the offsets that pass it, whose
    // dead letter may not have been sent: it goes to the dead letter now (settle_dead_letters()
    // then waits for it), or the run stops.
    virtual void rejected_earlier(Record record, const Rejection& why) = 0;
    // A pipeline's filter dropped the record: it is done with (acknowledged), not written.
    virtual void filtered(BatchState* batch) { delivered(batch); }
    // The sink's destination went away without fault of the record or the pipeline (the reader
    // of a pipe exited, as `head` does): the record is not written, the run ends as if stopped
    // (exit 0), and nothing from this batch on is acknowledged. Null: found closed while idle.
    virtual void abandoned(BatchState* batch) { failed(batch, "the output was closed"); }
};

class Sink {
  public:
    virtual ~Sink() = default;
    virtual void connect() = 0;
    // `kbridge check`: connects and finds what it needs; throws saying what is missing.
    virtual void check() { connect(); }
    virtual void set_listener(DeliveryListener* listener) { listener_ = listener; }
    // Whether a rejected record has somewhere to go; if not, the run stops at it, and sinks
    // that write in transactions then write none of its batch.
    virtual void set_dead_letter_available(bool available) { dead_letter_available_ = available; }
    // Takes one record; its outcome comes later through the listener. Returns false and fills
    // `why` when the record can never be written (e.g. a template names a missing field).
    // `fields` is the decoded value, or null for raw records.
    virtual bool send(const Record& record, const json::Value* fields, BatchState* batch,
                      Rejection& why) = 0;
    // --dry-run: what send() would write, as one line of text; false (with why) where send()
    // would refuse the record.
    virtual bool preview(const Record& record, const json::Value* fields, std::string& out,
                         Rejection& why) {
        (void)fields;
        (void)why;
        out = describe() + " <- " +
              (record.value ? std::string(*record.value) : std::string("(tombstone)"));
        return true;
    }
    // Whether send() reads the decoded fields (templates naming fields do).
    virtual bool needs_fields() const { return true; }
    // Serves delivery reports, waiting up to `wait` for one.
    virtual void poll(std::chrono::milliseconds wait) = 0;
    virtual std::string describe() const = 0;
    // False once the connection to the endpoint is lost or was never made: after such an error
    // a follow-mode run connects again instead of stopping.
    virtual bool reachable() const { return true; }
    // The largest value the sink can write, when it has such a limit (a Kafka producer's
    // message.max.bytes); a source may refuse longer records without holding them whole.
    virtual std::optional<size_t> max_value_bytes() const { return std::nullopt; }
    // Set when the sink keeps Kafka offsets with its data (exactly_once).
    virtual OffsetStore* offset_store() { return nullptr; }
    // Set when the sink commits a source's positions with its records (exactly_once).
    virtual PositionCommitter* position_committer() { return nullptr; }
    // The run ends, every report served: a transactional sink commits what it sent up to the
    // source's last position, or aborts it when the run failed or stopped inside a transaction.
    virtual void finish(bool run_failed) { (void)run_failed; }
    // Records written again after a transient error (connection lost, serialization failure).
    virtual uint64_t retried() const { return retried_; }

  protected:
    DeliveryListener* listener_ = nullptr;
    uint64_t retried_ = 0;
    bool dead_letter_available_ = false;
};

}  // namespace kbridge
