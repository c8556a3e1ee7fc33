// The daemon API's request bodies: text to requests and back (request_body.h). Every refusal
// wipes what was parsed so far; nothing here throws (nlohmann is called without exceptions and
// every get<> is behind its type check).
#include "supervisor/executions/request_body.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <utility>

#include "envs/document_limits.h"

namespace packvisor {
namespace {

using nlohmann::json;

Error BadBody(std::string detail) { return Failure("", "", "request body: " + detail); }

// A name the sender wrote, for a message: quoted, '"' and '\' escaped, control bytes and DEL as
// '?', cut after 64 bytes.
std::string QuoteName(std::string_view name) {
  std::string out = "\"";
  for (char c : name.substr(0, 64)) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\';
    out += (byte < 0x20 || byte == 0x7f) ? '?' : c;
  }
  return out + (name.size() > 64 ? "...\"" : "\"");
}

// The body as a JSON object. `optional_body`: an empty body is {}. The depth is checked on the
// text first: nlohmann recurses once per level.
Result<json> ParseBodyObject(std::string_view text, bool optional_body) {
  if (text.empty() && optional_body) return json::object();
  if (JsonNestsDeeperThan(text, kMaxRequestBodyDepth)) {
    return BadBody("JSON nested deeper than " + std::to_string(kMaxRequestBodyDepth) + " levels");
  }
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return BadBody("not valid JSON");
  if (!body.is_object()) {
    WipeJson(body);
    return BadBody("expected a JSON object");
  }
  return body;
}

// The first top-level field of `body` not in `allowed`, named.
std::optional<Error> UnknownField(const json& body,
                                  std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return BadBody("unknown field " + QuoteName(key));
    }
  }
  return std::nullopt;
}

// `body[field]`, or null when absent.
const json* Field(const json& body, const char* field) {
  auto it = body.find(field);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<Error> PositiveNumber(const json& body, const char* field,
                                    std::optional<double>* out) {
  const json* value = Field(body, field);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number() || !(value->get<double>() > 0) || !std::isfinite(value->get<double>())) {
    return BadBody(std::string("\"") + field + "\" must be a number greater than 0");
  }
  *out = value->get<double>();
  return std::nullopt;
}

// nlohmann reads every integer without a sign as number_unsigned: 1 to 2^64-1.
std::optional<Error> PositiveInteger(const json& body, const char* field,
                                     std::optional<uint64_t>* out) {
  const json* value = Field(body, field);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_unsigned() || value->get<uint64_t>() == 0) {
    return BadBody(std::string("\"") + field + "\" must be an integer greater than 0");
  }
  *out = value->get<uint64_t>();
  return std::nullopt;
}

std::optional<Error> OptionalString(const json& body, const char* field, std::string* out) {
  const json* value = Field(body, field);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return BadBody(std::string("\"") + field + "\" must be a string");
  *out = value->get<std::string>();
  return std::nullopt;
}

// The fields of POST /v1/executions; the secrets are moved out of `body`.
std::optional<Error> RunRequestFrom(json& body, RunRequest* request) {
  if (auto unknown = UnknownField(body, {"action_ref", "parameters", "secrets", "timeout_seconds",
                                         "parameter_texts", "parameters_from_argv"})) {
    return unknown;
  }
  // The client's --param texts, read by the declared types once the action is known, and the
  // names its command line gave (docs/api.md, "The client").
  if (const json* texts = Field(body, "parameter_texts")) {
    if (!texts->is_array()) return BadBody("\"parameter_texts\" must be an array");
    for (const json& pair : *texts) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
        return BadBody("\"parameter_texts\" must hold [name, text] pairs of strings");
      }
      request->parameter_texts.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  if (const json* names = Field(body, "parameters_from_argv")) {
    if (!names->is_array()) return BadBody("\"parameters_from_argv\" must be an array");
    for (const json& name : *names) {
      if (!name.is_string()) return BadBody("\"parameters_from_argv\" must hold strings");
      request->parameters_from_argv.insert(name.get<std::string>());
    }
  }
  auto ref = body.find("action_ref");
  if (ref == body.end()) return BadBody("\"action_ref\" is required");
  if (!ref->is_string()) return BadBody("\"action_ref\" must be a string");
  request->action_ref = ref->get<std::string>();
  for (const char* field : {"parameters", "secrets"}) {
    const json* value = Field(body, field);
    if (value != nullptr && !value->is_object()) {
      return BadBody(std::string("\"") + field + "\" must be a JSON object");
    }
  }
  if (auto it = body.find("parameters"); it != body.end() && it->is_object()) {
    request->parameters = std::move(*it);
  }
  if (auto it = body.find("secrets"); it != body.end() && it->is_object()) {
    request->secrets = std::move(*it);
  }
  return PositiveNumber(body, "timeout_seconds", &request->timeout_seconds);
}

std::optional<Error> RawRequestFrom(const json& body, RawExecRequest* request) {
  if (auto unknown = UnknownField(body, {"argv", "pack_dir", "env_dir", "network",
                                         "timeout_seconds", "memory_mb", "pids", "cpu_percent"})) {
    return unknown;
  }
  auto argv = body.find("argv");
  if (argv == body.end()) return BadBody("\"argv\" is required");
  if (!argv->is_array() || argv->empty()) {
    return BadBody("\"argv\" must be a non-empty array of strings");
  }
  for (const json& word : *argv) {
    if (!word.is_string()) return BadBody("\"argv\" must be a non-empty array of strings");
    request->command.push_back(word.get<std::string>());
  }
  if (auto e = OptionalString(body, "pack_dir", &request->pack_dir)) return e;
  if (auto e = OptionalString(body, "env_dir", &request->env_dir)) return e;
  if (auto e = OptionalString(body, "network", &request->network)) return e;
  if (request->network != "none" && request->network != "host") {
    return BadBody("\"network\" must be \"none\" or \"host\"");
  }
  if (auto e = PositiveNumber(body, "timeout_seconds", &request->timeout_seconds)) return e;
  if (auto e = PositiveInteger(body, "memory_mb", &request->memory_mb)) return e;
  if (auto e = PositiveInteger(body, "pids", &request->pids)) return e;
  return PositiveInteger(body, "cpu_percent", &request->cpu_percent);
}

}  // namespace

Result<RunRequest> ParseRunRequestBody(std::string_view text) {
  auto body = ParseBodyObject(text, false);
  if (!body) return body.error();
  RunRequest request;
  std::optional<Error> invalid = RunRequestFrom(*body, &request);
  WipeJson(*body);
  if (invalid) {
    WipeJson(request.secrets);
    WipeJson(request.parameters);
    return *std::move(invalid);
  }
  return request;
}

Result<RawExecRequest> ParseExecRequestBody(std::string_view text) {
  auto body = ParseBodyObject(text, false);
  if (!body) return body.error();
  RawExecRequest request;
  std::optional<Error> invalid = RawRequestFrom(*body, &request);
  if (invalid) return *std::move(invalid);
  return request;
}

Result<EnvBuildRequest> ParseEnvBuildBody(std::string_view text) {
  auto body = ParseBodyObject(text, true);
  if (!body) return body.error();
  if (auto unknown = UnknownField(*body, {"runtime", "force"})) return *std::move(unknown);
  EnvBuildRequest request;
  if (const json* runtime = Field(*body, "runtime")) {
    if (!runtime->is_string()) return BadBody("\"runtime\" must be a string");
    request.runtime = runtime->get<std::string>();
  }
  if (const json* force = Field(*body, "force")) {
    if (!force->is_boolean()) return BadBody("\"force\" must be true or false");
    request.force = force->get<bool>();
  }
  return request;
}

Result<size_t> ParseListLimit(const std::optional<std::string>& text) {
  if (!text) return size_t{100};
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text->c_str(), &end, 10);
  // strtol stops at a NUL: one inside the text (a decoded %00) is not the end.
  if (text->empty() || end != text->c_str() + text->size() || errno == ERANGE || value < 1 ||
      value > 1000) {
    return Failure("", "", "query: \"limit\" must be an integer from 1 to 1000");
  }
  return static_cast<size_t>(value);
}

json RunRequestBody(RunRequest&& request) {
  json body = json::object();
  body["action_ref"] = request.action_ref;
  body["parameters"] = std::move(request.parameters);
  body["secrets"] = std::move(request.secrets);  // moved, not copied: the caller wipes `body`
  if (request.timeout_seconds) body["timeout_seconds"] = *request.timeout_seconds;
  if (!request.parameter_texts.empty()) {
    json texts = json::array();
    for (const auto& [name, text] : request.parameter_texts) texts.push_back({name, text});
    body["parameter_texts"] = std::move(texts);
  }
  if (!request.parameters_from_argv.empty()) {
    body["parameters_from_argv"] = request.parameters_from_argv;
  }
  return body;
}

json ExecRequestBody(const RawExecRequest& request) {
  json body = {{"argv", request.command}, {"network", request.network}};
  if (!request.pack_dir.empty()) body["pack_dir"] = request.pack_dir;
  if (!request.env_dir.empty()) body["env_dir"] = request.env_dir;
  if (request.timeout_seconds) body["timeout_seconds"] = *request.timeout_seconds;
  if (request.memory_mb) body["memory_mb"] = *request.memory_mb;
  if (request.pids) body["pids"] = *request.pids;
  if (request.cpu_percent) body["cpu_percent"] = *request.cpu_percent;
  return body;
}

}  // namespace packvisor
