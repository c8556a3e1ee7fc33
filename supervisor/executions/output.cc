#include "supervisor/executions/output.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

namespace packvisor {
namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

size_t IncompleteUtf8Tail(std::string_view text) {
  size_t continuations = 0;
  size_t at = text.size();
  while (at > 0 && continuations < 3 && IsContinuation(text[at - 1])) {
    --at;
    ++continuations;
  }
  if (at == 0) return 0;
  auto lead = static_cast<unsigned char>(text[at - 1]);
  if (lead < 0xC0) return 0;  // ASCII or a stray continuation: nothing is waiting
  size_t needed = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
  return continuations < needed ? continuations + 1 : 0;
}

CappedOutput::CappedOutput(uint64_t max_bytes, std::string stream_name, LiveOutput* live)
    : effective_(max_bytes > kNoticeReserve ? max_bytes - kNoticeReserve : 0),
      stream_(std::move(stream_name)),
      live_(live) {}

void CappedOutput::Consume(std::string_view chunk) {
  total_ += chunk.size();
  if (truncated_) return;
  // One allocation of the whole cap (its untouched pages cost no memory) instead of doubling,
  // which would hold up to twice the cap.
  if (kept_.capacity() < effective_ && kept_.size() + chunk.size() > 4096) {
    kept_.reserve(effective_ + kNoticeReserve);  // room for the marker too
  }
  uint64_t room = effective_ - kept_.size();
  if (chunk.size() <= room) {
    kept_.append(chunk);
    kept_bytes_ = kept_.size();
    Publish(false);
    return;
  }
  truncated_ = true;
  kept_.append(chunk.substr(0, room));
  // When the first dropped byte continues a UTF-8 sequence, the kept prefix ends inside that
  // sequence: drop its partial start too.
  if (IsContinuation(chunk[room])) kept_.resize(kept_.size() - IncompleteUtf8Tail(kept_));
  kept_bytes_ = kept_.size();
  Publish(false);
}

void CappedOutput::Publish(bool final) {
  if (live_ == nullptr) return;
  size_t end = kept_.size();
  if (!truncated_ && !final) end -= IncompleteUtf8Tail(kept_);
  if (end > published_) {
    live_->Write(std::string_view(kept_).substr(published_, end - published_));
    published_ = end;
  }
  if (truncated_ && !marker_published_) {
    live_->Write(Marker());
    marker_published_ = true;
  }
}

std::string CappedOutput::Marker() const {
  return "\n\n[OUTPUT TRUNCATED: " + stream_ + " exceeded size limit]\n";
}

std::string CappedOutput::TakeText() {
  Publish(true);
  live_ = nullptr;  // everything was given; the text moves out
  std::string text = std::move(kept_);
  kept_.clear();
  if (truncated_) text += Marker();
  return text;
}

std::string CappedOutput::Text() const {
  if (!truncated_) return kept_;
  return kept_ + Marker();
}

class FdStreamer::Target : public LiveOutput {
 public:
  Target(FdStreamer* streamer, int fd) : streamer_(streamer), fd_(fd) {}
  void Write(std::string_view bytes) override { streamer_->Enqueue(fd_, bytes); }

 private:
  FdStreamer* streamer_;
  int fd_;
};

FdStreamer::FdStreamer() {
  // A reader that goes away must cost EPIPE, not the supervisor (the launcher does the same).
  signal(SIGPIPE, SIG_IGN);
}

FdStreamer::~FdStreamer() { Finish(); }

LiveOutput* FdStreamer::To(int fd) {
  targets_.push_back(std::make_unique<Target>(this, fd));
  return targets_.back().get();
}

void FdStreamer::Enqueue(int fd, std::string_view bytes) {
  if (bytes.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(fd, std::string(bytes));
  }
  // Started with the first bytes: an execution that prints nothing costs no thread.
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  wake_.notify_one();
}

void FdStreamer::Finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finishing_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void FdStreamer::Loop() {
  for (;;) {
    std::pair<int, std::string> item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return finishing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // finishing, and everything was written
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto& [fd, bytes] = item;
    size_t offset = 0;
    while (!failed_.count(fd) && offset < bytes.size()) {
      ssize_t n = write(fd, bytes.data() + offset, bytes.size() - offset);
      if (n > 0) {
        offset += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        struct pollfd writable = {fd, POLLOUT, 0};  // an inherited non-blocking descriptor
        poll(&writable, 1, -1);
      } else {
        failed_.insert(fd);  // EPIPE, EIO, ...: the reader is gone; the result still has it all
      }
    }
  }
}

}  // namespace packvisor
