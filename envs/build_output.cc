#include "envs/build_output.h"

#include <algorithm>
#include <cctype>

namespace packvisor::envs {
namespace {

constexpr size_t kOutputTailBytes = 16 << 10;
constexpr size_t kMaxLineChars = 200;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool ContainsIgnoringCase(std::string_view text, std::string_view needle) {
  auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

// npm prefixes every line of an error report; only some of them say what went wrong.
bool IsNpmBookkeeping(std::string_view line) {
  for (std::string_view prefix : {"npm error", "npm ERR!"}) {
    if (!StartsWith(line, prefix)) continue;
    std::string_view rest = line.substr(prefix.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.find(' ') == std::string_view::npos) return true;  // "npm error enoent", bare
    for (std::string_view field : {"code ", "syscall ", "path ", "errno "}) {
      if (StartsWith(rest, field)) return true;
    }
    for (std::string_view noise :
         {"A complete log of", "This is related to npm", "Log files were not written"}) {
      if (rest.find(noise) != std::string_view::npos) return true;
    }
  }
  return false;
}

bool ReadsAsError(std::string_view line) {
  std::string_view trimmed = line;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  return trimmed.find("ERROR") != std::string_view::npos ||
         ContainsIgnoringCase(trimmed, "error:") ||
         trimmed.find("No matching distribution") != std::string_view::npos ||
         StartsWith(trimmed, "fatal:") || StartsWith(trimmed, "npm error") ||
         StartsWith(trimmed, "npm ERR!");
}

}  // namespace

void BuildOutputTail::Consume(std::string_view chunk) {
  tail_.append(chunk);
  if (tail_.size() > 2 * kOutputTailBytes) tail_.erase(0, tail_.size() - kOutputTailBytes);
}

std::vector<std::string> OutputLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line.substr(0, kMaxLineChars));
    start = end + 1;
  }
  return lines;
}

std::string DecisiveLine(const std::vector<std::string>& lines) {
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (ReadsAsError(*it) && !IsNpmBookkeeping(*it)) return *it;
  }
  return lines.empty() ? std::string() : lines.back();
}

std::string StepFailureDetail(std::string_view step, std::string_view how, std::string_view output,
                              size_t tail_lines) {
  std::vector<std::string> lines = OutputLines(output);
  std::string detail = std::string(step) + " failed (" + std::string(how) + ")";
  std::string decisive = DecisiveLine(lines);
  if (decisive.empty()) return detail;
  detail += ": " + decisive;
  std::vector<std::string> tail;
  for (auto it = lines.rbegin(); it != lines.rend() && tail.size() < tail_lines; ++it) {
    if (*it != decisive) tail.insert(tail.begin(), *it);
  }
  if (tail.empty()) return detail;
  detail += "; output:";
  for (size_t i = 0; i < tail.size(); ++i) detail += (i == 0 ? " " : " | ") + tail[i];
  return detail;
}

}  // namespace packvisor::envs
