// The two records kept beside each environment in the root-owned pack directory (envs/environment.h
// describes the layout): the ready marker and the record of the last failed build, as JSON. They
// are written by the supervisor only, but the failure record holds what the build printed (the
// sandboxed installer's output), so reading one back is parsing text others wrote in part: a
// record that is not exactly what these functions write reads as no record. Pure functions; none
// throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace packvisor::envs {

// .{runtime}.ready: the environment of `digest` is published as the directory of inode `ino`.
struct ReadyMarker {
  std::string digest;
  uint64_t ino = 0;
};

// .{runtime}.failed: the build of `digest` failed with `error` (one line) at `failed_at`.
struct FailureRecord {
  std::string digest;
  std::string error;
  int64_t failed_at = 0;  // unix time
};

// The marker's text: {"digest", "ino", "runtime", "built_at"} and a newline.
std::string ReadyMarkerText(const ReadyMarker& marker, const std::string& runtime,
                            int64_t built_at);

// The record's text: {"digest", "error", "runtime", "failed_at"} and a newline. Bytes of `error`
// that are not UTF-8 are replaced (U+FFFD), so any build output can be recorded.
std::string FailureRecordText(const FailureRecord& record, const std::string& runtime);

// The marker or record in `text`; nullopt when it is not a JSON object with a string "digest"
// (and a string "error" for a record), or when "ino" / "failed_at" is there but not a
// non-negative integer. Documents nested deeper than 16 levels are refused before parsing.
std::optional<ReadyMarker> ParseReadyMarker(std::string_view text);
std::optional<FailureRecord> ParseFailureRecord(std::string_view text);

}  // namespace packvisor::envs
