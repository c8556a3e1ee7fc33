// What a failed environment build step says about itself: the installer's decisive line first,
// then the last lines of its output, in one line (SPEC §5, docs/environments.md "Failures").
// Builds never see secrets, so their output may go into errors and failure records.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/launcher.h"

namespace packvisor::envs {

// Keeps the last bytes of a build step's output (stdout and stderr interleaved).
class BuildOutputTail : public sandbox::OutputSink {
 public:
  void Consume(std::string_view chunk) override;
  const std::string& text() const { return tail_; }

 private:
  std::string tail_;
};

// The non-empty lines of `text`, trailing blanks and carriage returns removed, each cut to 200
// bytes (never inside a UTF-8 character), tabs made spaces, other control characters and bytes
// that are not UTF-8 '?': a line is printable text, fit for an error message and a JSON record.
std::vector<std::string> OutputLines(std::string_view text);

// The line of `lines` that says why the step failed: the last one that reads as an error
// (contains "ERROR", "error:" in any case, "No matching distribution", "fatal:", or starts with
// "npm error"/"npm ERR!"), skipping npm's bookkeeping lines ("code ...", "path ...", "A complete
// log of this run ..."); else the last line. "" when there are no lines.
std::string DecisiveLine(const std::vector<std::string>& lines);

// `<step> failed (<how>)`, then `: <decisive line>`, then `; output: <up to `tail_lines` last
// lines other than the decisive one, joined with " | ">` (each part only when there is one).
std::string StepFailureDetail(std::string_view step, std::string_view how, std::string_view output,
                              size_t tail_lines);

}  // namespace packvisor::envs
