// An action's stdout (untrusted code wrote it) parsed as its output_format: ParseActionOutput
// for json, jsonl and yaml.
//
// Input: byte 0 picks the format, the rest is stdout. Invariants: nothing throws (yaml-cpp's
// exceptions, nlohmann's type_error); `error` is one clean line of a known form, which never
// quotes the output; `result`, when set, dumps (strictly: valid UTF-8) and parses back to
// itself; json and yaml never set both result and error; jsonl's array holds one item per good
// line and its error counts the other non-blank lines.
#include <regex>
#include <string>

#include "fuzz/fuzz_support.h"
#include "supervisor/executions/result_parsing.h"

namespace {

using nlohmann::json;
using packvisor::OutputFormat;

const std::regex& KnownError() {
  static const std::regex known(
      "output_format json: stdout is not valid JSON( nested at most 64 levels deep)?, nor is its "
      "last line"
      "|output_format jsonl: skipped ([0-9]+) lines? that (is|are) not valid JSON( nested at most "
      "64 levels deep)? \\(the first at line [0-9]+\\)"
      "|output_format yaml: (line [0-9]+: )?(nested deeper than 64 levels|more than [0-9]+ nodes "
      "once aliases are expanded \\(refused\\)|not a valid YAML document|a mapping key is not a "
      "string|a mapping key is not valid UTF-8|a string is not valid UTF-8|too many nodes once "
      "aliases are expanded \\(refused\\))"
      "|output_format yaml: stdout is not a valid YAML document \\(line [0-9]+\\)");
  return known;
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

size_t NonBlankLines(std::string_view text) {
  size_t count = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!Trim(line).empty()) ++count;
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr OutputFormat kFormats[] = {OutputFormat::kJson, OutputFormat::kJsonl,
                                              OutputFormat::kYaml};
  OutputFormat format = kFormats[data[0] % 3];
  std::string stdout_text(packvisor::fuzz::AsText(data + 1, size - 1));
  packvisor::fuzz::NoThrow("ParseActionOutput", [&] {
    packvisor::ParsedOutput parsed = packvisor::ParseActionOutput(stdout_text, format);
    std::smatch match;
    if (parsed.error) {
      packvisor::fuzz::CheckOneLineMessage(*parsed.error);
      PV_FUZZ_CHECK(std::regex_match(*parsed.error, match, KnownError()),
                    "unknown error form: " + *parsed.error);
    }
    if (!parsed.result.is_null()) {
      std::string dumped = parsed.result.dump();  // throws on invalid UTF-8
      PV_FUZZ_CHECK(json::parse(dumped) == parsed.result, "result does not re-parse: " + dumped);
    }
    bool blank = Trim(stdout_text).empty();
    if (blank) PV_FUZZ_CHECK(!parsed.error && parsed.result.is_null(), "blank stdout gave more");
    if (format != OutputFormat::kJsonl && parsed.error) {
      PV_FUZZ_CHECK(parsed.result.is_null(), "both a result and an error");
    }
    if (format == OutputFormat::kJsonl) {
      size_t lines = NonBlankLines(stdout_text);
      size_t good = parsed.result.is_null() ? 0 : parsed.result.size();
      PV_FUZZ_CHECK(parsed.result.is_null() || (parsed.result.is_array() && good > 0),
                    "jsonl: result is not a non-empty array");
      size_t bad = 0;
      if (parsed.error) bad = std::stoul(match[2].str());
      PV_FUZZ_CHECK(good + bad == lines, "jsonl: " + std::to_string(good) + " good + " +
                                             std::to_string(bad) +
                                             " bad != " + std::to_string(lines) + " lines");
    }
  });
  return 0;
}
