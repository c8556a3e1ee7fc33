// Bounded capture of one output stream (SPEC §7): at most max_bytes - 128 bytes are kept; past
// that, the kept prefix is cut at a UTF-8 boundary and followed by a truncation marker, and the
// rest is only counted (the launcher splices it to /dev/null once Full() says so), so memory
// stays bounded whatever the action prints.
//
// Live output: a capture may also hand what it keeps, as it keeps it, to a LiveOutput (the CLI's
// terminal in human mode). What goes there is exactly what the result will hold: nothing past the
// cap, then the marker.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sandbox/launcher.h"

namespace packvisor {

// Receives bytes of one stream in order. Called on the launching thread only.
class LiveOutput {
 public:
  virtual ~LiveOutput() = default;
  virtual void Write(std::string_view bytes) = 0;
};

class CappedOutput : public sandbox::OutputSink {
 public:
  static constexpr uint64_t kNoticeReserve = 128;

  // stream_name is "stdout" or "stderr" (it appears in the marker). `live`, when set, receives
  // the kept bytes as they arrive (a trailing incomplete UTF-8 sequence waits for its next
  // bytes, because the cut may drop it) and the marker; it must outlive the capture.
  CappedOutput(uint64_t max_bytes, std::string stream_name, LiveOutput* live = nullptr);

  void Consume(std::string_view chunk) override;
  bool Full() const override { return truncated_; }
  void Skipped(uint64_t bytes) override { total_ += bytes; }

  // The captured text, with the marker appended when truncated.
  std::string Text() const;
  // The same, moved out (the capture is empty afterwards): no second copy of a large output.
  // Anything held back from the live output is given to it first.
  std::string TakeText();
  bool truncated() const { return truncated_; }
  uint64_t bytes_truncated() const { return total_ - kept_bytes_; }
  uint64_t total_bytes() const { return total_; }

 private:
  std::string Marker() const;
  // Gives `live_` the kept bytes it has not had; at the end of the stream (`final`) also a
  // trailing incomplete UTF-8 sequence.
  void Publish(bool final);

  uint64_t effective_;
  std::string stream_;
  std::string kept_;
  uint64_t kept_bytes_ = 0;  // kept_.size(), also after TakeText()
  uint64_t total_ = 0;
  bool truncated_ = false;
  LiveOutput* live_;
  size_t published_ = 0;  // bytes of kept_ given to live_
  bool marker_published_ = false;
};

// The number of bytes at the end of `text` that start a UTF-8 sequence whose remaining bytes
// have not arrived (0 to 3).
size_t IncompleteUtf8Tail(std::string_view text);

// Copies live output to file descriptors (the CLI's stdout and stderr) on a thread of its own,
// in the order it arrives. The launching thread only queues: a terminal or pipe that stops
// reading can never stall the launcher's loop, and with it the timeout, the kill or the other
// stream's capture. The queue holds at most what the captures keep, so it is bounded by the
// caps. A write that fails (EPIPE: the reader went away) ends the copying to that descriptor;
// the capture and the result are unaffected. The constructor ignores SIGPIPE process-wide. The
// thread starts with the first bytes queued. Thread-compatible: To(), the targets' Write() and
// Finish() are called from one thread (the launcher's).
class FdStreamer {
 public:
  FdStreamer();
  ~FdStreamer();  // Finish()
  FdStreamer(const FdStreamer&) = delete;
  FdStreamer& operator=(const FdStreamer&) = delete;

  // A LiveOutput that writes to `fd` (not owned: it must stay open until Finish()). Valid as long
  // as this streamer.
  LiveOutput* To(int fd);
  // Waits until everything queued has been written (or its descriptor failed), then ends the
  // thread. Like any program writing to its stdout, this waits for as long as the reader does.
  void Finish();

 private:
  class Target;
  void Enqueue(int fd, std::string_view bytes);
  void Loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<int, std::string>> queue_;
  std::set<int> failed_;  // touched by the writer thread only
  bool finishing_ = false;
  std::vector<std::unique_ptr<Target>> targets_;
  std::thread thread_;
};

}  // namespace packvisor
