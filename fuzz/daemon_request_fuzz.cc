// The daemon's request bodies (supervisor/executions/request_body.h, what server/http_api.cc runs
// for POST /v1/executions, POST /v1/exec, POST /v1/envs/{pack}) and the `limit` query value, on
// any text. Invariants: a refusal is one clean line; nothing throws; the refusal does not depend
// on the values of `secrets` (the same body with every secret string changed is refused with
// the same text, so no secret can be in it); an accepted request, re-serialised by the client's
// serialiser, parses back to the same request.
#include <nlohmann/json.hpp>
#include <string>

#include "envs/document_limits.h"
#include "fuzz/fuzz_support.h"
#include "supervisor/executions/request_body.h"

namespace {

using nlohmann::json;
using packvisor::fuzz::ChangeStrings;
using packvisor::fuzz::CheckOneLineMessage;
using packvisor::fuzz::Dump;

bool SameRunRequest(const packvisor::RunRequest& a, const packvisor::RunRequest& b) {
  return a.action_ref == b.action_ref && a.parameters == b.parameters && a.secrets == b.secrets &&
         a.timeout_seconds == b.timeout_seconds && a.parameter_texts == b.parameter_texts &&
         a.parameters_from_argv == b.parameters_from_argv;
}

bool SameExecRequest(const packvisor::RawExecRequest& a, const packvisor::RawExecRequest& b) {
  return a.command == b.command && a.pack_dir == b.pack_dir && a.env_dir == b.env_dir &&
         a.network == b.network && a.timeout_seconds == b.timeout_seconds &&
         a.memory_mb == b.memory_mb && a.pids == b.pids && a.cpu_percent == b.cpu_percent;
}

void RunBody(std::string_view text) {
  auto request = packvisor::ParseRunRequestBody(text);
  if (!request) {
    std::string message = request.error().message();
    CheckOneLineMessage(message);
    // The same body with other secret values: the same refusal.
    if (packvisor::JsonNestsDeeperThan(text, packvisor::kMaxRequestBodyDepth)) return;
    json body = json::parse(text, nullptr, false);
    if (!body.is_object()) return;
    auto secrets = body.find("secrets");
    if (secrets == body.end()) return;
    ChangeStrings(*secrets);
    auto again = packvisor::ParseRunRequestBody(Dump(body));
    PV_FUZZ_CHECK(!again.ok(), "accepted once the secrets changed: " + message);
    PV_FUZZ_CHECK(
        again.error().message() == message,
        "the refusal depends on the secrets: " + message + " | " + again.error().message());
    return;
  }
  packvisor::RunRequest copy;
  copy.action_ref = request->action_ref;
  copy.parameters = request->parameters;
  copy.secrets = request->secrets;
  copy.timeout_seconds = request->timeout_seconds;
  copy.parameter_texts = request->parameter_texts;
  copy.parameters_from_argv = request->parameters_from_argv;
  std::string serialised = Dump(packvisor::RunRequestBody(std::move(copy)));
  auto again = packvisor::ParseRunRequestBody(serialised);
  PV_FUZZ_CHECK(again.ok(), "the re-serialised request is refused: " + again.error().message() +
                                " | " + serialised.substr(0, 300));
  PV_FUZZ_CHECK(SameRunRequest(*request, *again),
                "the re-serialised request differs: " + serialised.substr(0, 300));
}

void ExecBody(std::string_view text) {
  auto request = packvisor::ParseExecRequestBody(text);
  if (!request) {
    CheckOneLineMessage(request.error().message());
    return;
  }
  PV_FUZZ_CHECK(!request->command.empty(), "accepted an empty argv");
  PV_FUZZ_CHECK(request->network == "none" || request->network == "host", request->network);
  std::string serialised = Dump(packvisor::ExecRequestBody(*request));
  auto again = packvisor::ParseExecRequestBody(serialised);
  PV_FUZZ_CHECK(again.ok(), "the re-serialised exec request is refused: " +
                                again.error().message() + " | " + serialised.substr(0, 300));
  PV_FUZZ_CHECK(SameExecRequest(*request, *again),
                "the re-serialised exec request differs: " + serialised.substr(0, 300));
}

void EnvBody(std::string_view text) {
  auto request = packvisor::ParseEnvBuildBody(text);
  if (!request) CheckOneLineMessage(request.error().message());
}

void LimitValue(std::string_view text) {
  if (text.size() > 64) return;
  auto limit = packvisor::ParseListLimit(std::string(text));
  if (!limit) {
    CheckOneLineMessage(limit.error().message());
    return;
  }
  PV_FUZZ_CHECK(*limit >= 1 && *limit <= 1000, std::string(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseRunRequestBody", [&] { RunBody(text); });
  packvisor::fuzz::NoThrow("ParseExecRequestBody", [&] { ExecBody(text); });
  packvisor::fuzz::NoThrow("ParseEnvBuildBody", [&] { EnvBody(text); });
  packvisor::fuzz::NoThrow("ParseListLimit", [&] { LimitValue(text); });
  return 0;
}
