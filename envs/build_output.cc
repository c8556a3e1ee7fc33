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

// The length of the UTF-8 character at the start of `text` (RFC 3629: no overlong forms, no
// surrogates, at most U+10FFFF), or 0 when it does not start with one.
size_t Utf8Length(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = lead >= 0xc2 && lead <= 0xdf   ? 2
                  : lead >= 0xe0 && lead <= 0xef ? 3
                  : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                 : 0;
  if (length == 0 || text.size() < length) return 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead == 0xe0) low = 0xa0;
  if (lead == 0xed) high = 0x9f;
  if (lead == 0xf0) low = 0x90;
  if (lead == 0xf4) high = 0x8f;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

// One line of a build's output as it may appear in an error and a failure record: a tab becomes a
// space, other control characters (terminal escapes included) and bytes that are not UTF-8 '?',
// and the line is
// cut after kMaxLineChars bytes without splitting a character.
std::string CleanLine(std::string_view raw) {
  std::string line;
  for (size_t i = 0; i < raw.size() && line.size() < kMaxLineChars;) {
    size_t length = Utf8Length(raw.substr(i));
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (length == 0 || (length == 1 && (c < 0x20 || c == 0x7f))) {
      line += c == '\t' ? ' ' : '?';
      ++i;
      continue;
    }
    if (line.size() + length > kMaxLineChars) break;
    line.append(raw.substr(i, length));
    i += length;
  }
  return line;
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
    std::string_view raw = text.substr(start, end - start);
    while (!raw.empty() && (raw.back() == '\r' || raw.back() == ' ')) raw.remove_suffix(1);
    if (!raw.empty()) lines.push_back(CleanLine(raw));
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
