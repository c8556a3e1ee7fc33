#include "supervisor/output.h"

#include <algorithm>

namespace packvisor {

CappedOutput::CappedOutput(uint64_t max_bytes, std::string stream_name)
    : effective_(max_bytes > kNoticeReserve ? max_bytes - kNoticeReserve : 0),
      stream_(std::move(stream_name)) {}

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
    return;
  }
  truncated_ = true;
  kept_.append(chunk.substr(0, room));
  // When the first dropped byte continues a UTF-8 sequence, the kept prefix ends inside that
  // sequence: drop its partial start too.
  if ((static_cast<unsigned char>(chunk[room]) & 0xC0) == 0x80) {
    size_t cut = kept_.size();
    for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(kept_[cut - 1]) & 0xC0) == 0x80;
         ++i) {
      --cut;
    }
    if (cut > 0 && (static_cast<unsigned char>(kept_[cut - 1]) & 0xC0) == 0xC0) --cut;
    kept_.resize(cut);
  }
  kept_bytes_ = kept_.size();
}

std::string CappedOutput::TakeText() {
  std::string text = std::move(kept_);
  kept_.clear();
  if (truncated_) text += "\n\n[OUTPUT TRUNCATED: " + stream_ + " exceeded size limit]\n";
  return text;
}

std::string CappedOutput::Text() const {
  if (!truncated_) return kept_;
  return kept_ + "\n\n[OUTPUT TRUNCATED: " + stream_ + " exceeded size limit]\n";
}

}  // namespace packvisor
