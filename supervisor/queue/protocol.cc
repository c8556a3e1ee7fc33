// The queue protocol's bodies, version 1 (docs/queue-protocol.md). Parsing is strict: a body is
// either a complete, valid request or a refusal naming one field; a refusal never quotes a value
// that could be a secret.
#include "supervisor/queue/protocol.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "envs/document_limits.h"
#include "supervisor/packs/packs.h"

namespace packvisor::queue {
namespace {

using nlohmann::json;

constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxExecutionId = 128;
constexpr size_t kMaxSubmittedAt = 64;
constexpr double kMaxTimeoutSeconds = 365.0 * 24 * 3600;
constexpr size_t kMaxCancelBodyBytes = 4096;
constexpr char kRedacted[] = "<redacted>";

constexpr const char* kRequestFields[] = {"version",      "execution_id",   "action_ref",
                                          "parameters",   "sealed_secrets", "timeout_seconds",
                                          "submitted_at", "stream_output"};

// Never throws: invalid UTF-8 (process output) becomes U+FFFD.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool IsExecutionId(std::string_view id) {
  if (id.empty() || id.size() > kMaxExecutionId) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// RFC 3339 as the submitter wrote it: not parsed, only bounded and printable ASCII (it is
// copied into records and logs).
bool IsSubmittedAt(std::string_view text) {
  if (text.empty() || text.size() > kMaxSubmittedAt) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// A field name for a reason: printable, bounded, quoted.
std::string QuoteName(std::string_view name) {
  std::string out = "\"";
  for (unsigned char c : name.substr(0, 64)) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += '?';
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > 64) out += "...";
  return out + "\"";
}

// What a JSON value is, without its value.
std::string TypeOf(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "something else";
  }
}

// The body as a JSON object, or why not (size, depth, syntax, type). Shared by ParseQueueRequest
// and DeadLetterBody, so that a dead letter never parses what the request parser refused to.
std::variant<json, std::string> ParseObject(std::string_view body) {
  if (body.size() > kMaxBodyBytes) {
    return "body: larger than 1 MiB (" + std::to_string(body.size()) + " bytes)";
  }
  if (JsonNestsDeeperThan(body, kMaxDepth)) {
    return "body: JSON nested deeper than " + std::to_string(kMaxDepth) + " levels";
  }
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::string("body: not valid JSON");
  if (!value.is_object()) return "body: expected a JSON object, got " + TypeOf(value);
  return value;
}

}  // namespace

std::string RunRoutingKey(std::string_view runtime) { return "run." + std::string(runtime); }

std::string RunQueueName(std::string_view runtime) {
  return "packvisor.run." + std::string(runtime);
}

std::string EventRoutingKey(std::string_view execution_id) {
  return "execution." + std::string(execution_id);
}

std::variant<QueueRequest, RequestRefusal> ParseQueueRequest(std::string_view body) {
  RequestRefusal refusal;
  auto parsed = ParseObject(body);
  if (auto* reason = std::get_if<std::string>(&parsed)) {
    refusal.reason = *reason;
    return refusal;
  }
  const json& object = std::get<json>(parsed);

  // What the rejected result can name: only a well-formed id (it may name files downstream).
  if (auto it = object.find("execution_id"); it != object.end() && it->is_string()) {
    if (IsExecutionId(it->get_ref<const std::string&>())) refusal.execution_id = *it;
  }
  if (auto it = object.find("action_ref"); it != object.end() && it->is_string()) {
    if (ParseActionRef(it->get_ref<const std::string&>()).ok()) refusal.action_ref = *it;
  }
  auto refuse = [&](std::string reason) -> std::variant<QueueRequest, RequestRefusal> {
    refusal.reason = std::move(reason);
    return refusal;
  };

  // First: a plain secret is refused (and its dead letter redacted) whatever else is wrong.
  if (object.contains("secrets")) {
    refusal.plain_secrets = true;
    return refuse(
        "secrets: plain-text secrets are refused; seal them to the workers' public key and send "
        "them as sealed_secrets (docs/queue-protocol.md)");
  }

  auto version = object.find("version");
  if (version == object.end()) {
    return refuse("version: missing (this worker speaks " + std::to_string(kProtocolVersion) + ")");
  }
  if (!version->is_number_integer()) {
    return refuse("version: expected an integer, got " + TypeOf(*version) +
                  " (this worker speaks " + std::to_string(kProtocolVersion) + ")");
  }
  if (version->get<int64_t>() != kProtocolVersion) {
    return refuse("version: " + std::to_string(version->get<int64_t>()) +
                  " is not supported (this worker speaks " + std::to_string(kProtocolVersion) +
                  ")");
  }

  for (const auto& [name, value] : object.items()) {
    if (std::find(std::begin(kRequestFields), std::end(kRequestFields), name) ==
        std::end(kRequestFields)) {
      return refuse("unknown field " + QuoteName(name));
    }
  }

  QueueRequest request;
  auto id = object.find("execution_id");
  if (id == object.end()) return refuse("execution_id: missing");
  if (!id->is_string() || !IsExecutionId(id->get_ref<const std::string&>())) {
    return refuse("execution_id: expected 1 to 128 of [A-Za-z0-9_-]" +
                  (id->is_string() ? std::string() : ", got " + TypeOf(*id)));
  }
  request.execution_id = *id;

  auto ref = object.find("action_ref");
  if (ref == object.end()) return refuse("action_ref: missing");
  if (!ref->is_string()) return refuse("action_ref: expected \"pack.action\", got " + TypeOf(*ref));
  if (auto parsed_ref = ParseActionRef(ref->get_ref<const std::string&>()); !parsed_ref.ok()) {
    return refuse("action_ref: " + parsed_ref.error().message());
  }
  request.action_ref = *ref;

  auto parameters = object.find("parameters");
  if (parameters == object.end()) return refuse("parameters: missing (an object, {} for none)");
  if (!parameters->is_object()) {
    return refuse("parameters: expected an object, got " + TypeOf(*parameters));
  }
  request.parameters = *parameters;

  if (auto it = object.find("sealed_secrets"); it != object.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return refuse("sealed_secrets: expected a non-empty string (base64), got " +
                    (it->is_string() ? std::string("\"\"") : TypeOf(*it)));
    }
    request.sealed_secrets = it->get<std::string>();
  }
  if (auto it = object.find("timeout_seconds"); it != object.end()) {
    if (!it->is_number()) {
      return refuse("timeout_seconds: expected a number > 0, got " + TypeOf(*it));
    }
    double seconds = it->get<double>();
    if (!(seconds > 0) || !std::isfinite(seconds) || seconds > kMaxTimeoutSeconds) {
      return refuse("timeout_seconds: expected a number > 0 and at most 31536000 (a year)");
    }
    request.timeout_seconds = seconds;
  }
  auto submitted = object.find("submitted_at");
  if (submitted == object.end()) return refuse("submitted_at: missing (RFC 3339 UTC)");
  if (!submitted->is_string() || !IsSubmittedAt(submitted->get_ref<const std::string&>())) {
    return refuse("submitted_at: expected 1 to " + std::to_string(kMaxSubmittedAt) +
                  " printable characters (RFC 3339 UTC)" +
                  (submitted->is_string() ? std::string() : ", got " + TypeOf(*submitted)));
  }
  request.submitted_at = *submitted;

  if (auto it = object.find("stream_output"); it != object.end()) {
    if (!it->is_boolean()) {
      return refuse("stream_output: expected true or false, got " + TypeOf(*it));
    }
    request.stream_output = *it;
  }
  return request;
}

std::string RequestBody(const QueueRequest& request) {
  json body = {{"version", kProtocolVersion},          {"execution_id", request.execution_id},
               {"action_ref", request.action_ref},     {"parameters", request.parameters},
               {"submitted_at", request.submitted_at}, {"stream_output", request.stream_output}};
  if (request.sealed_secrets) body["sealed_secrets"] = *request.sealed_secrets;
  if (request.timeout_seconds) body["timeout_seconds"] = *request.timeout_seconds;
  return Dump(body);
}

std::string ResultBody(const nlohmann::json& result_object, int attempt, bool redelivered) {
  json body = result_object.is_object() ? result_object : json::object();
  body["attempt"] = attempt;
  body["redelivered"] = redelivered;
  return Dump(body);
}

std::string DeadLetterBody(std::string_view body, const RequestRefusal& refusal) {
  json letter = {{"reason", refusal.reason},
                 {"execution_id", refusal.execution_id},
                 {"action_ref", refusal.action_ref},
                 {"plain_secrets", refusal.plain_secrets}};
  auto parsed = ParseObject(body);
  if (json* object = std::get_if<json>(&parsed)) {
    // Only the top-level "secrets" is a secret by the protocol; every value of it goes, whatever
    // its type, and so does a "secrets" that is not an object.
    if (auto it = object->find("secrets"); it != object->end()) {
      if (it->is_object()) {
        for (auto& [name, value] : it->items()) value = kRedacted;
      } else {
        *it = kRedacted;
      }
    }
    letter["body"] = std::move(*object);
  } else {
    // Not a JSON object (or too large or deep to parse): only its size. Text that does not parse
    // could still hold a secret.
    letter["body_bytes"] = body.size();
  }
  return Dump(letter);
}

std::string CancelBody(std::string_view execution_id) {
  return Dump(json{{"execution_id", std::string(execution_id)}});
}

std::optional<std::string> ParseCancelBody(std::string_view body) {
  if (body.size() > kMaxCancelBodyBytes || JsonNestsDeeperThan(body, 2)) return std::nullopt;
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object() || value.size() != 1) return std::nullopt;
  auto id = value.find("execution_id");
  if (id == value.end() || !id->is_string()) return std::nullopt;
  const std::string& text = id->get_ref<const std::string&>();
  if (!IsExecutionId(text)) return std::nullopt;
  return text;
}

std::string RunningEventBody(std::string_view execution_id, int attempt, std::string_view worker) {
  return Dump(json{{"execution_id", std::string(execution_id)},
                   {"event", "running"},
                   {"attempt", attempt},
                   {"worker", std::string(worker)}});
}

std::string OutputEventBody(std::string_view execution_id, std::string_view stream,
                            std::string_view data) {
  return Dump(json{{"execution_id", std::string(execution_id)},
                   {"event", "output"},
                   {"stream", std::string(stream)},
                   {"data", std::string(data)}});
}

std::string ResultEventBody(std::string_view execution_id, const nlohmann::json& result_object) {
  return Dump(json{
      {"execution_id", std::string(execution_id)}, {"event", "result"}, {"result", result_object}});
}

}  // namespace packvisor::queue
