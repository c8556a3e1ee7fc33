// The client's side of the daemon protocol (supervisor/cli/daemon_client.h) on any bytes, as a
// confused or compromised peer on the daemon's socket could send them: the HTTP response parser
// (http-parser underneath), the NDJSON output stream (LineSplitter, ParseOutputLine, the result
// object through ExecutionResultFromJson), the error text and JSON bodies of answers. Invariants:
// every refusal and every error text for the terminal is one clean line; nothing throws; the
// response parses the same whole and fed in 7-byte pieces; an accepted result object round-trips
// (ToJson(FromJson(ToJson(r))) == ToJson(r)).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "supervisor/cli/daemon_client.h"
#include "supervisor/executions/execution_result.h"

namespace {

using packvisor::fuzz::CheckOneLineMessage;

// A result object: the client's reading of it is the inverse of ToJson().
void CheckResult(const nlohmann::json& object) {
  auto result = packvisor::ExecutionResultFromJson(object);
  if (!result) {
    CheckOneLineMessage(result.error().message());
    return;
  }
  nlohmann::json once = result->ToJson();
  auto again = packvisor::ExecutionResultFromJson(once);
  PV_FUZZ_CHECK(again.ok(), "ToJson of a read result is refused: " + again.error().message());
  PV_FUZZ_CHECK(again->ToJson() == once, "a result does not round-trip: " + result->ToJsonLine());
}

// One NDJSON line as FollowOutput reads it.
packvisor::Result<void> Line(std::string_view line, std::vector<std::string>* seen) {
  auto parsed = packvisor::ParseOutputLine(line);
  if (!parsed) {
    CheckOneLineMessage(parsed.error().message());
    return parsed.error();
  }
  if (!*parsed) return packvisor::Ok{};
  const packvisor::OutputLine& item = **parsed;
  if (item.kind == packvisor::OutputLine::Kind::kResult) {
    CheckResult(item.result);
    seen->push_back("result");
  } else {
    seen->push_back((item.kind == packvisor::OutputLine::Kind::kStdout ? "1" : "2") + item.data);
  }
  return packvisor::Ok{};
}

struct Outcome {
  bool ok = true;
  bool complete = false;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::string> lines;
};

// The response as DaemonClient::Send reads it, fed in pieces of `piece` bytes (0: at once).
Outcome Parse(std::string_view bytes, size_t piece) {
  Outcome out;
  packvisor::LineSplitter lines([&](std::string_view line) { return Line(line, &out.lines); },
                                1 << 20);
  packvisor::ResponseParser parser([&](std::string_view data) { return lines.Feed(data); },
                                   1 << 20);
  auto fail = [&](const packvisor::Error& error) {
    CheckOneLineMessage(error.message());
    out.ok = false;
    return out;
  };
  for (size_t at = 0; at < bytes.size();) {
    size_t n = piece == 0 ? bytes.size() : std::min(piece, bytes.size() - at);
    if (auto fed = parser.Feed(bytes.substr(at, n)); !fed) return fail(fed.error());
    at += n;
  }
  if (!parser.complete()) {
    if (auto finished = parser.FinishAtEof(); !finished) return fail(finished.error());
  }
  out.complete = true;
  const packvisor::HttpResponse& response = parser.response();
  out.status = response.status;
  out.headers = response.headers;
  out.body = response.body;
  if (response.status / 100 == 2) {
    if (auto finished = lines.Finish(); !finished) return fail(finished.error());
  } else {
    CheckOneLineMessage(packvisor::DaemonErrorText(response.body));
    auto object = packvisor::DaemonJsonObject(response.body);
    if (!object) CheckOneLineMessage(object.error().message());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("the daemon's answers", [&] {
    // The bytes as a body and as output lines, without the HTTP around them.
    CheckOneLineMessage(packvisor::DaemonErrorText(bytes));
    if (auto object = packvisor::DaemonJsonObject(bytes); !object) {
      CheckOneLineMessage(object.error().message());
    } else if (object->contains("status")) {
      CheckResult(*object);
    }
    std::vector<std::string> seen;
    packvisor::LineSplitter lines([&](std::string_view line) {
      (void)Line(line, &seen);
      return packvisor::Result<void>(packvisor::Ok{});
    });
    (void)lines.Feed(bytes);
    (void)lines.Finish();

    // The bytes as a whole response, at once and in pieces.
    Outcome whole = Parse(bytes, 0);
    Outcome pieces = Parse(bytes, 7);
    PV_FUZZ_CHECK(whole.ok == pieces.ok && whole.status == pieces.status &&
                      whole.headers == pieces.headers && whole.body == pieces.body &&
                      whole.lines == pieces.lines,
                  "the response parses differently in pieces");
  });
  return 0;
}
