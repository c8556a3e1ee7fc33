// The queue protocol's bodies (supervisor/queue/protocol.cc): every refusal of a request, the
// bodies a worker publishes, and dead letters that never hold a secret value.
#include "supervisor/queue/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

namespace packvisor::queue {
namespace {

using nlohmann::json;

json ValidRequest() {
  return {{"version", 1},
          {"execution_id", "exec-1_A"},
          {"action_ref", "core.echo"},
          {"parameters", {{"message", "hi"}}},
          {"timeout_seconds", 2.5},
          {"submitted_at", "2026-12-07T01:00:00Z"},
          {"stream_output", true},
          {"sealed_secrets", "c2VhbGVk"}};
}

RequestRefusal RefusalOf(std::string_view body) {
  auto parsed = ParseQueueRequest(body);
  if (!std::holds_alternative<RequestRefusal>(parsed)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<RequestRefusal>(parsed);
}

std::string ReasonOf(const json& body) { return RefusalOf(body.dump()).reason; }

TEST(ProtocolTest, Names) {
  EXPECT_EQ(RunRoutingKey("python"), "run.python");
  EXPECT_EQ(RunQueueName("python"), "packvisor.run.python");
  EXPECT_EQ(EventRoutingKey("abc-1"), "execution.abc-1");
}

TEST(ProtocolTest, ParsesAFullRequest) {
  auto parsed = ParseQueueRequest(ValidRequest().dump());
  ASSERT_TRUE(std::holds_alternative<QueueRequest>(parsed)) << std::get<1>(parsed).reason;
  const QueueRequest& r = std::get<QueueRequest>(parsed);
  EXPECT_EQ(r.execution_id, "exec-1_A");
  EXPECT_EQ(r.action_ref, "core.echo");
  EXPECT_EQ(r.parameters, (json{{"message", "hi"}}));
  EXPECT_EQ(r.timeout_seconds, 2.5);
  EXPECT_EQ(r.submitted_at, "2026-12-07T01:00:00Z");
  EXPECT_TRUE(r.stream_output);
  EXPECT_EQ(r.sealed_secrets, "c2VhbGVk");
}

TEST(ProtocolTest, OptionalFieldsTakeTheirDefaults) {
  auto parsed =
      ParseQueueRequest(R"({"version":1,"execution_id":"e","action_ref":"p.a","parameters":{},)"
                        R"("submitted_at":"2026-12-07T00:00:00Z"})");
  ASSERT_TRUE(std::holds_alternative<QueueRequest>(parsed)) << std::get<1>(parsed).reason;
  const QueueRequest& r = std::get<QueueRequest>(parsed);
  EXPECT_EQ(r.parameters, json::object());
  EXPECT_FALSE(r.timeout_seconds.has_value());
  EXPECT_FALSE(r.sealed_secrets.has_value());
  EXPECT_FALSE(r.stream_output);
}

TEST(ProtocolTest, RequestBodyRoundTrips) {
  QueueRequest request;
  request.execution_id = "abc";
  request.action_ref = "pack.act";
  request.parameters = {{"n", 3}, {"nested", {{"x", {1, 2}}}}};
  request.sealed_secrets = "AAAA";
  request.timeout_seconds = 30;
  request.submitted_at = "2026-12-07T00:00:00Z";
  request.stream_output = true;
  std::string body = RequestBody(request);
  EXPECT_EQ(json::parse(body)["version"], 1);
  auto parsed = ParseQueueRequest(body);
  ASSERT_TRUE(std::holds_alternative<QueueRequest>(parsed)) << std::get<1>(parsed).reason;
  const QueueRequest& back = std::get<QueueRequest>(parsed);
  EXPECT_EQ(back.execution_id, request.execution_id);
  EXPECT_EQ(back.action_ref, request.action_ref);
  EXPECT_EQ(back.parameters, request.parameters);
  EXPECT_EQ(back.sealed_secrets, request.sealed_secrets);
  EXPECT_EQ(back.timeout_seconds, request.timeout_seconds);
  EXPECT_EQ(back.submitted_at, request.submitted_at);
  EXPECT_TRUE(back.stream_output);

  QueueRequest minimal;
  minimal.execution_id = "m";
  minimal.action_ref = "p.a";
  minimal.submitted_at = "2026-12-07T00:00:00Z";
  EXPECT_EQ(json::parse(RequestBody(minimal)), (json{{"version", 1},
                                                     {"execution_id", "m"},
                                                     {"action_ref", "p.a"},
                                                     {"parameters", json::object()},
                                                     {"submitted_at", "2026-12-07T00:00:00Z"},
                                                     {"stream_output", false}}));
}

TEST(ProtocolTest, VersionRefusals) {
  json body = ValidRequest();
  body["version"] = 2;
  RequestRefusal refusal = RefusalOf(body.dump());
  EXPECT_EQ(refusal.reason, "version: 2 is not supported (this worker speaks 1)");
  // The id and ref are read for the rejected result.
  EXPECT_EQ(refusal.execution_id, "exec-1_A");
  EXPECT_EQ(refusal.action_ref, "core.echo");
  EXPECT_FALSE(refusal.plain_secrets);

  body["version"] = 0;
  EXPECT_EQ(ReasonOf(body), "version: 0 is not supported (this worker speaks 1)");
  body["version"] = 1.0;
  EXPECT_EQ(ReasonOf(body), "version: expected an integer, got a number (this worker speaks 1)");
  body["version"] = "1";
  EXPECT_EQ(ReasonOf(body), "version: expected an integer, got a string (this worker speaks 1)");
  body.erase("version");
  EXPECT_EQ(ReasonOf(body), "version: missing (this worker speaks 1)");
  // A newer version's new fields: the version is what is refused.
  body["version"] = 2;
  body["priority"] = 5;
  EXPECT_EQ(ReasonOf(body), "version: 2 is not supported (this worker speaks 1)");
}

TEST(ProtocolTest, BodyRefusals) {
  EXPECT_EQ(RefusalOf("").reason, "body: not valid JSON");
  EXPECT_EQ(RefusalOf("{\"version\":1,").reason, "body: not valid JSON");
  EXPECT_EQ(RefusalOf("[1,2]").reason, "body: expected a JSON object, got an array");
  EXPECT_EQ(RefusalOf("\"text\"").reason, "body: expected a JSON object, got a string");
  EXPECT_EQ(RefusalOf("{\"a\":\"\xff\"}").reason, "body: not valid JSON");

  std::string big = ValidRequest().dump();
  big.insert(big.size() - 1, ",\"pad\":\"" + std::string(1 << 20, 'x') + "\"");
  EXPECT_EQ(RefusalOf(big).reason,
            "body: larger than 1 MiB (" + std::to_string(big.size()) + " bytes)");

  // 64 levels are fine, 65 are refused before nlohmann parses; brackets inside strings and
  // escaped quotes do not count.
  auto nested = [](int depth) {
    std::string value = "1";
    for (int i = 1; i < depth; ++i) value = "[" + value + "]";
    return R"({"version":1,"execution_id":"e","action_ref":"p.a","submitted_at":"t",)"
           R"("parameters":{"s":"[[[\"{{{","x":)" +
           value + "}}";
  };
  // The object itself and "parameters" are two levels; the array nesting makes up the rest.
  EXPECT_TRUE(std::holds_alternative<QueueRequest>(ParseQueueRequest(nested(63))));
  EXPECT_EQ(RefusalOf(nested(64)).reason, "body: JSON nested deeper than 64 levels");
  EXPECT_EQ(RefusalOf(std::string(100000, '[')).reason, "body: JSON nested deeper than 64 levels");
}

TEST(ProtocolTest, FieldRefusals) {
  struct Case {
    const char* field;
    json value;  // null-discarded: the field removed
    std::string reason;
  };
  const json kRemove = json::value_t::discarded;
  const std::vector<Case> cases = {
      {"execution_id", kRemove, "execution_id: missing"},
      {"execution_id", "", "execution_id: expected 1 to 128 of [A-Za-z0-9_-]"},
      {"execution_id", "../etc", "execution_id: expected 1 to 128 of [A-Za-z0-9_-]"},
      {"execution_id", "a b", "execution_id: expected 1 to 128 of [A-Za-z0-9_-]"},
      {"execution_id", std::string(129, 'a'), "execution_id: expected 1 to 128 of [A-Za-z0-9_-]"},
      {"execution_id", 12, "execution_id: expected 1 to 128 of [A-Za-z0-9_-], got a number"},
      {"action_ref", kRemove, "action_ref: missing"},
      {"action_ref", "noaction", "action_ref: not of the form pack.action"},
      {"action_ref", "Core.echo",
       "action_ref: pack \"Core\" does not match ^[a-z0-9][a-z0-9_-]{0,63}$"},
      {"action_ref", json::array(), "action_ref: expected \"pack.action\", got an array"},
      {"parameters", kRemove, "parameters: missing (an object, {} for none)"},
      {"parameters", "x=1", "parameters: expected an object, got a string"},
      {"parameters", nullptr, "parameters: expected an object, got null"},
      {"timeout_seconds", "10", "timeout_seconds: expected a number > 0, got a string"},
      {"timeout_seconds", 0,
       "timeout_seconds: expected a number > 0 and at most 31536000 (a year)"},
      {"timeout_seconds", -1.5,
       "timeout_seconds: expected a number > 0 and at most 31536000 (a year)"},
      {"timeout_seconds", 1e300,
       "timeout_seconds: expected a number > 0 and at most 31536000 (a year)"},
      {"submitted_at", kRemove, "submitted_at: missing (RFC 3339 UTC)"},
      {"submitted_at", 1700000000,
       "submitted_at: expected 1 to 64 printable characters (RFC 3339 UTC), got a number"},
      {"submitted_at", std::string(65, '1'),
       "submitted_at: expected 1 to 64 printable characters (RFC 3339 UTC)"},
      {"submitted_at", "", "submitted_at: expected 1 to 64 printable characters (RFC 3339 UTC)"},
      {"submitted_at", "2026-12-07\n01:00",
       "submitted_at: expected 1 to 64 printable characters (RFC 3339 UTC)"},
      {"stream_output", "yes", "stream_output: expected true or false, got a string"},
      {"sealed_secrets", json::object({{"a", 1}}),
       "sealed_secrets: expected a non-empty string (base64), got an object"},
      {"sealed_secrets", "", "sealed_secrets: expected a non-empty string (base64), got \"\""},
      {"callback", "http://x", "unknown field \"callback\""},
      {"bad\nname", 1, "unknown field \"bad?name\""},
  };
  for (const Case& c : cases) {
    json body = ValidRequest();
    if (c.value.is_discarded()) {
      body.erase(c.field);
    } else {
      body[c.field] = c.value;
    }
    RequestRefusal refusal = RefusalOf(body.dump());
    EXPECT_EQ(refusal.reason, c.reason) << c.field;
    EXPECT_FALSE(refusal.plain_secrets);
    EXPECT_EQ(refusal.reason.find('\n'), std::string::npos);
  }
  // A refused id is not handed to the rejected result; a good one is.
  json body = ValidRequest();
  body["execution_id"] = "../etc";
  EXPECT_EQ(RefusalOf(body.dump()).execution_id, "");
  body = ValidRequest();
  body["parameters"] = 1;
  EXPECT_EQ(RefusalOf(body.dump()).execution_id, "exec-1_A");
}

constexpr const char* kSecretValues[] = {"hunter2-password", "sk-live-0123456789", "4242"};

json BodyWithPlainSecrets() {
  json body = ValidRequest();
  body["secrets"] = {{"password", kSecretValues[0]},
                     {"api_key", kSecretValues[1]},
                     {"nested", {{"pin", kSecretValues[2]}}}};
  return body;
}

void ExpectNoSecretValue(const std::string& text) {
  for (const char* value : kSecretValues) {
    EXPECT_EQ(text.find(value), std::string::npos) << value << " in " << text;
  }
}

TEST(ProtocolTest, PlainSecretsAreRefusedWithoutTheirValues) {
  json body = BodyWithPlainSecrets();
  RequestRefusal refusal = RefusalOf(body.dump());
  EXPECT_TRUE(refusal.plain_secrets);
  EXPECT_EQ(refusal.reason,
            "secrets: plain-text secrets are refused; seal them to the workers' public key and "
            "send them as sealed_secrets (docs/queue-protocol.md)");
  EXPECT_EQ(refusal.execution_id, "exec-1_A");
  ExpectNoSecretValue(refusal.reason);
  // Whatever else is wrong, plain secrets are what is reported (so the dead letter is redacted).
  body["version"] = 7;
  body["execution_id"] = 5;
  body["whatever"] = true;
  EXPECT_TRUE(RefusalOf(body.dump()).plain_secrets);
  // Secrets that are not an object, too.
  body = ValidRequest();
  body["secrets"] = kSecretValues[0];
  EXPECT_TRUE(RefusalOf(body.dump()).plain_secrets);
}

TEST(ProtocolTest, DeadLetterBodyNeverHoldsASecretValue) {
  std::string raw = BodyWithPlainSecrets().dump();
  RequestRefusal refusal = RefusalOf(raw);
  std::string letter = DeadLetterBody(raw, refusal);
  ExpectNoSecretValue(letter);
  json parsed = json::parse(letter);
  EXPECT_EQ(parsed["reason"], refusal.reason);
  EXPECT_EQ(parsed["execution_id"], "exec-1_A");
  EXPECT_EQ(parsed["action_ref"], "core.echo");
  EXPECT_EQ(parsed["plain_secrets"], true);
  // Key names stay, values go.
  EXPECT_EQ(
      parsed["body"]["secrets"],
      (json{{"password", "<redacted>"}, {"api_key", "<redacted>"}, {"nested", "<redacted>"}}));
  EXPECT_EQ(parsed["body"]["parameters"], (json{{"message", "hi"}}));

  // A secrets string, a secrets array.
  for (const json& secrets : {json(kSecretValues[0]), json::array({kSecretValues[1]})}) {
    json body = ValidRequest();
    body["secrets"] = secrets;
    std::string text = body.dump();
    std::string dead = DeadLetterBody(text, RefusalOf(text));
    ExpectNoSecretValue(dead);
    EXPECT_EQ(json::parse(dead)["body"]["secrets"], "<redacted>");
  }

  // A body that does not parse is kept only as its size, even with a secret in it.
  std::string broken = "{\"secrets\": {\"password\": \"" + std::string(kSecretValues[0]) + "\"";
  std::string dead = DeadLetterBody(broken, RefusalOf(broken));
  ExpectNoSecretValue(dead);
  EXPECT_EQ(json::parse(dead)["body_bytes"], broken.size());
  EXPECT_FALSE(json::parse(dead).contains("body"));

  // Too deep to parse: only the size too.
  std::string deep = "{\"secrets\":{\"p\":\"" + std::string(kSecretValues[1]) +
                     "\"},\"x\":" + std::string(70, '[') + std::string(70, ']') + "}";
  dead = DeadLetterBody(deep, RefusalOf(deep));
  ExpectNoSecretValue(dead);
  EXPECT_EQ(json::parse(dead)["body_bytes"], deep.size());
}

TEST(ProtocolTest, DeadLetterBodyOfAnUnknownVersionKeepsTheBody) {
  json body = ValidRequest();
  body["version"] = 2;
  std::string raw = body.dump();
  json dead = json::parse(DeadLetterBody(raw, RefusalOf(raw)));
  EXPECT_EQ(dead["reason"], "version: 2 is not supported (this worker speaks 1)");
  EXPECT_EQ(dead["body"], body);
  EXPECT_EQ(dead["plain_secrets"], false);
}

TEST(ProtocolTest, ResultBodyAddsAttemptAndRedelivered) {
  json result = {{"execution_id", "e"}, {"status", "succeeded"}, {"exit_code", 0}};
  json body = json::parse(ResultBody(result, 2, true));
  EXPECT_EQ(body["status"], "succeeded");
  EXPECT_EQ(body["attempt"], 2);
  EXPECT_EQ(body["redelivered"], true);
  EXPECT_EQ(json::parse(ResultBody(result, 1, false))["redelivered"], false);
}

TEST(ProtocolTest, CancelBodies) {
  EXPECT_EQ(json::parse(CancelBody("abc")), (json{{"execution_id", "abc"}}));
  EXPECT_EQ(ParseCancelBody(CancelBody("abc-1_X")), "abc-1_X");
  EXPECT_EQ(ParseCancelBody("{\"execution_id\":\"../x\"}"), std::nullopt);
  EXPECT_EQ(ParseCancelBody("{\"execution_id\":1}"), std::nullopt);
  EXPECT_EQ(ParseCancelBody("{\"execution_id\":\"a\",\"more\":1}"), std::nullopt);
  EXPECT_EQ(ParseCancelBody("{}"), std::nullopt);
  EXPECT_EQ(ParseCancelBody("not json"), std::nullopt);
  EXPECT_EQ(ParseCancelBody("[\"a\"]"), std::nullopt);
  EXPECT_EQ(ParseCancelBody(std::string(10000, '[')), std::nullopt);
}

TEST(ProtocolTest, EventBodies) {
  EXPECT_EQ(json::parse(RunningEventBody("e1", 2, "w1")),
            (json{{"execution_id", "e1"}, {"event", "running"}, {"attempt", 2}, {"worker", "w1"}}));
  EXPECT_EQ(
      json::parse(OutputEventBody("e1", "stderr", "line\n")),
      (json{
          {"execution_id", "e1"}, {"event", "output"}, {"stream", "stderr"}, {"data", "line\n"}}));
  // Output that is not UTF-8 is still a valid body (U+FFFD for the bad bytes).
  json bad = json::parse(OutputEventBody("e1", "stdout",
                                         "a\xff"
                                         "b"));
  EXPECT_EQ(bad["data"],
            "a\xef\xbf\xbd"
            "b");
  json result = {{"status", "failed"}};
  EXPECT_EQ(json::parse(ResultEventBody("e1", result)),
            (json{{"execution_id", "e1"}, {"event", "result"}, {"result", result}}));
}

}  // namespace
}  // namespace packvisor::queue
