// Broker messages (supervisor/queue/protocol.h) on any text: ParseQueueRequest, the dead letter
// of a refused request (DeadLetterBody) and ParseCancelBody. Invariants: a refusal is one clean
// line; nothing throws; the dead letter is one JSON object that does not depend on the values of
// a plain "secrets" (the same body with every secret string changed gives the same letter, so no
// secret is in it) nor on the sealed_secrets blob; an accepted request re-serialised by
// RequestBody parses back to an equal request; an accepted cancel id survives CancelBody.
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "envs/document_limits.h"
#include "fuzz/fuzz_support.h"
#include "supervisor/queue/protocol.h"

namespace {

using nlohmann::json;
using packvisor::fuzz::ChangeStrings;
using packvisor::fuzz::CheckOneLineMessage;
using packvisor::fuzz::Dump;
using packvisor::queue::QueueRequest;
using packvisor::queue::RequestRefusal;

// ParseQueueRequest's limits (protocol.cc): bodies beyond them are never parsed.
constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr int kMaxDepth = 64;

bool Same(const QueueRequest& a, const QueueRequest& b) {
  return a.execution_id == b.execution_id && a.action_ref == b.action_ref &&
         a.parameters == b.parameters && a.sealed_secrets == b.sealed_secrets &&
         a.timeout_seconds == b.timeout_seconds && a.submitted_at == b.submitted_at &&
         a.stream_output == b.stream_output;
}

// The dead letter of `text` refused as `refusal`: a JSON object; with the secrets changed, the
// same letter.
void CheckDeadLetter(std::string_view text, const RequestRefusal& refusal) {
  std::string letter = packvisor::queue::DeadLetterBody(text, refusal);
  json parsed = json::parse(letter, nullptr, false);
  PV_FUZZ_CHECK(parsed.is_object(), "the dead letter is not a JSON object: " + letter);
  if (text.size() > kMaxBodyBytes / 2 || packvisor::JsonNestsDeeperThan(text, kMaxDepth)) return;
  json body = json::parse(text, nullptr, false);
  if (!body.is_object()) return;
  // A plain secret is what the letter redacts; a sealed blob it may keep, but no reason names it.
  auto secret = body.find(refusal.plain_secrets ? "secrets" : "sealed_secrets");
  if (secret == body.end()) return;
  ChangeStrings(*secret);
  std::string other_text = Dump(body);
  auto other = packvisor::queue::ParseQueueRequest(other_text);
  if (refusal.plain_secrets) {
    const auto* other_refusal = std::get_if<RequestRefusal>(&other);
    PV_FUZZ_CHECK(other_refusal != nullptr, "accepted once the secrets changed: " + letter);
    std::string other_letter = packvisor::queue::DeadLetterBody(other_text, *other_refusal);
    PV_FUZZ_CHECK(other_letter == letter,
                  "the dead letter depends on the secrets: " + letter + " | " + other_letter);
  } else {
    const auto* other_refusal = std::get_if<RequestRefusal>(&other);
    PV_FUZZ_CHECK(other_refusal != nullptr && other_refusal->reason == refusal.reason,
                  "the refusal depends on sealed_secrets: " + refusal.reason);
  }
}

void Request(std::string_view text) {
  auto parsed = packvisor::queue::ParseQueueRequest(text);
  if (const auto* refusal = std::get_if<RequestRefusal>(&parsed)) {
    CheckOneLineMessage(refusal->reason);
    CheckDeadLetter(text, *refusal);
    return;
  }
  const QueueRequest& request = std::get<QueueRequest>(parsed);
  std::string body = packvisor::queue::RequestBody(request);
  auto again = packvisor::queue::ParseQueueRequest(body);
  const auto* back = std::get_if<QueueRequest>(&again);
  PV_FUZZ_CHECK(back != nullptr, "RequestBody of an accepted request is refused: " +
                                     std::get<RequestRefusal>(again).reason + " | " +
                                     body.substr(0, 300));
  PV_FUZZ_CHECK(Same(request, *back), "RequestBody gives another request: " + body.substr(0, 300));
}

void Cancel(std::string_view text) {
  auto id = packvisor::queue::ParseCancelBody(text);
  if (!id) return;
  auto again = packvisor::queue::ParseCancelBody(packvisor::queue::CancelBody(*id));
  PV_FUZZ_CHECK(again && *again == *id, "CancelBody does not parse back: " + *id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseQueueRequest", [&] { Request(text); });
  packvisor::fuzz::NoThrow("ParseCancelBody", [&] { Cancel(text); });
  return 0;
}
