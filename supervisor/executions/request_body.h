// The request bodies of the daemon's HTTP API (docs/api.md) as text: parsed into requests by the
// daemon's handlers (server/http_api.cc) and built by the client (cli/remote_commands.cc), so
// that both ends and the fuzz target fuzz/daemon_request_fuzz.cc run the same code. Pure: no
// evhttp, no I/O. A refusal is one line naming the field ("request body: ..."); it never quotes
// a value of `secrets`, and quotes a field name only escaped and cut (it is the sender's text).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/os/error.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/raw_exec.h"

namespace packvisor {

// Arrays and objects nested deeper than this are refused before nlohmann-json parses the body
// (it recurses per level). The daemon's own clients send a few levels; parameters nest at will,
// as far as this.
inline constexpr int kMaxRequestBodyDepth = 64;

// POST /v1/executions. Whatever it took from the body is wiped when it refuses (the secrets
// included); the caller wipes `body` itself.
Result<RunRequest> ParseRunRequestBody(std::string_view body);
// POST /v1/exec.
Result<RawExecRequest> ParseExecRequestBody(std::string_view body);

// POST /v1/envs/{pack}: an empty body is {}.
struct EnvBuildRequest {
  std::optional<std::string> runtime;
  bool force = false;
};
Result<EnvBuildRequest> ParseEnvBuildBody(std::string_view body);

// The `limit` query value of GET /v1/executions (as libevent decoded it): 1 to 1000; nullopt
// (absent): 100.
Result<size_t> ParseListLimit(const std::optional<std::string>& text);

// The bodies the client sends for the requests above; ParseRunRequestBody(Dump(...)) gives the
// request back (action_ref, parameters, parameter_texts, parameters_from_argv, secrets,
// timeout_seconds). RunRequestBody moves the parameters and secrets out of `request`.
nlohmann::json RunRequestBody(RunRequest&& request);
nlohmann::json ExecRequestBody(const RawExecRequest& request);

}  // namespace packvisor
