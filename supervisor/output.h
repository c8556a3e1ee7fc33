// Bounded capture of one output stream (SPEC §7): at most max_bytes - 128 bytes are kept; past
// that, the kept prefix is cut at a UTF-8 boundary and followed by a truncation marker, and the
// rest is only counted (the launcher splices it to /dev/null once Full() says so), so memory
// stays bounded whatever the action prints.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/launcher.h"

namespace packvisor {

class CappedOutput : public sandbox::OutputSink {
 public:
  static constexpr uint64_t kNoticeReserve = 128;

  // stream_name is "stdout" or "stderr" (it appears in the marker).
  CappedOutput(uint64_t max_bytes, std::string stream_name);

  void Consume(std::string_view chunk) override;
  bool Full() const override { return truncated_; }
  void Skipped(uint64_t bytes) override { total_ += bytes; }

  // The captured text, with the marker appended when truncated.
  std::string Text() const;
  // The same, moved out (the capture is empty afterwards): no second copy of a large output.
  std::string TakeText();
  bool truncated() const { return truncated_; }
  uint64_t bytes_truncated() const { return total_ - kept_bytes_; }
  uint64_t total_bytes() const { return total_; }

 private:
  uint64_t effective_;
  std::string stream_;
  std::string kept_;
  uint64_t kept_bytes_ = 0;  // kept_.size(), also after TakeText()
  uint64_t total_ = 0;
  bool truncated_ = false;
};

}  // namespace packvisor
