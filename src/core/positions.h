#pragma once
// Exactly-once from a source that resumes at a position of its own (postgres_cdc's checkpoint)
// into a sink that commits that position in the same transaction as the records (kafka with
// exactly_once): a restart resumes at the position of the last commit, so what a crash
// interrupted is sent again and what was committed never is.
#include <optional>

#include "state/position_store.h"

namespace kbridge {

struct ResumePoint {
    Position position;      // where the source resumes after every record it gave so far
    bool boundary = false;  // a transaction of the source ends there: a commit may follow
};

class PositionCommitter {
  public:
    virtual ~PositionCommitter() = default;
    // Where the source resumes: the position of the last commit (none: nothing was committed).
    // What was sent since is aborted, as the source sends it again. Connects if it must.
    virtual std::optional<Position> restart_position() = 0;
    // Every record sent so far comes before `point`.
    virtual void advance(const ResumePoint& point) = 0;
    // The position of the last commit, for the source to release what is behind it.
    virtual std::optional<Position> committed() const = 0;
    // The position committed last, read without fencing a running pipeline (kbridge state).
    virtual std::optional<Position> peek_position() = 0;
    // Forgets the committed position (kbridge state reset): the next start begins anew.
    virtual void reset_position() = 0;
};

// A position as one JSON object of strings (what an offsets topic holds), and back; decoding
// throws std::runtime_error on anything else.
std::string encode_position(const Position& position);
Position decode_position(std::string_view text);

}  // namespace kbridge
