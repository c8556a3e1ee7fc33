// The queue protocol, version 1 (docs/queue-protocol.md): names of the broker objects, the request
// message a worker consumes, and the messages it publishes (results, events, dead letters).
// Everything here is pure (no I/O): parsing and building JSON bodies.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace packvisor::queue {

inline constexpr int kProtocolVersion = 1;

inline constexpr char kExecutionsExchange[] = "packvisor.executions";  // topic, durable
inline constexpr char kEventsExchange[] = "packvisor.events";          // topic, durable
inline constexpr char kCancelExchange[] = "packvisor.cancel";          // fanout, durable
inline constexpr char kDeadExchange[] = "packvisor.dead";              // fanout, durable
inline constexpr char kDeadQueue[] = "packvisor.dead";                 // quorum, bound to it

// The routing key of a request for `runtime`: "run.python".
std::string RunRoutingKey(std::string_view runtime);
// The quorum queue that holds the requests for `runtime`: "packvisor.run.python", bound to
// kExecutionsExchange with RunRoutingKey(runtime), x-delivery-limit = worker.delivery_limit,
// dead-lettering to kDeadExchange. One queue per runtime, so that each request goes to exactly
// one queue whatever mix of workers is bound.
std::string RunQueueName(std::string_view runtime);
// The events routing key of an execution: "execution.<id>".
std::string EventRoutingKey(std::string_view execution_id);

// A request as it arrives (the body of a message on a run queue). reply_to and correlation_id
// are AMQP properties, not part of the body.
struct QueueRequest {
  std::string execution_id;  // 1 to 128 of [A-Za-z0-9_-] (it names files in state_dir)
  std::string action_ref;    // "pack.action"
  nlohmann::json parameters = nlohmann::json::object();
  std::optional<std::string> sealed_secrets;  // base64 of crypto_box_seal(JSON object)
  std::optional<double> timeout_seconds;      // > 0
  std::string submitted_at;                   // RFC 3339 UTC, as the submitter wrote it
  bool stream_output = false;  // "stream_output": true asks for output chunks on the events
};

// Why a body is refused, never run: a one-line message naming the field, without any value of a
// secret. execution_id is whatever id could be read ("" when none), for the rejected result.
struct RequestRefusal {
  std::string execution_id;
  std::string action_ref;
  std::string reason;
  bool plain_secrets = false;  // the body carried "secrets" in plain text
};

// Validates a request body: unknown version, malformed JSON, wrong or missing fields, unknown
// top-level fields and a plain "secrets" field are refusals.
std::variant<QueueRequest, RequestRefusal> ParseQueueRequest(std::string_view body);

// The body of a request (what `submit` publishes).
std::string RequestBody(const QueueRequest& request);

// The result message: the SPEC §7 result object plus "attempt" (1 for the first delivery) and
// "redelivered".
std::string ResultBody(const nlohmann::json& result_object, int attempt, bool redelivered);

// A copy of a refused body fit for the dead-letter queue: a plain "secrets" object keeps its
// key names, every value replaced by "<redacted>"; a body that does not parse is kept only as
// its size. Never contains a secret value.
std::string DeadLetterBody(std::string_view body, const RequestRefusal& refusal);
// The header that carries the reason on a dead letter packvisor published itself.
inline constexpr char kDeadLetterReasonHeader[] = "x-packvisor-reason";

// {"execution_id": "..."} on kCancelExchange.
std::string CancelBody(std::string_view execution_id);
std::optional<std::string> ParseCancelBody(std::string_view body);  // nullopt: malformed

// Events on kEventsExchange, routing key EventRoutingKey(id): {"execution_id", "event":
// "running", "attempt", "worker"} ; {"execution_id", "event": "output", "stream":
// "stdout"|"stderr", "data"} ; {"execution_id", "event": "result", "result": {...}}.
std::string RunningEventBody(std::string_view execution_id, int attempt, std::string_view worker);
std::string OutputEventBody(std::string_view execution_id, std::string_view stream,
                            std::string_view data);
std::string ResultEventBody(std::string_view execution_id, const nlohmann::json& result_object);

}  // namespace packvisor::queue
