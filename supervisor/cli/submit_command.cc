// `packvisor submit`: one request published to the queue workers (docs/queue-protocol.md), and with
// --wait its result printed as `run` prints it.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include "supervisor/cli/queue_commands.h"
#include "supervisor/cli/run_command.h"
#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/execution_result.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/parameter_document.h"
#include "supervisor/packs/packs.h"
#include "supervisor/queue/amqp.h"
#include "supervisor/queue/broker_settings.h"
#include "supervisor/queue/protocol.h"
#include "supervisor/queue/sealed_secrets.h"

namespace packvisor {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

std::string NowRfc3339() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000000));
  return text;
}

// Prints a result as `run` does, and returns run's exit status for it.
int PrintResult(const ExecutionResult& result, bool json, bool output_already_shown) {
  if (json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    if (!output_already_shown) {
      std::fwrite(result.stdout_text.data(), 1, result.stdout_text.size(), stdout);
      std::fflush(stdout);
      std::fwrite(result.stderr_text.data(), 1, result.stderr_text.size(), stderr);
    }
    PrintRunResultHuman(result);
  }
  return result.ExitStatus();
}

// A refusal made here, before anything is published, printed as the local run prints it.
int PrintRefusal(const std::string& action_ref, const std::string& error, int exit_status,
                 bool json) {
  ExecutionResult result;
  result.execution_id = NewExecutionId();
  result.action_ref = action_ref;
  result.status = ExecutionStatus::kRejected;
  result.error = error;
  if (exit_status != kExitOwnError) result.start_failure_exit = exit_status;
  return PrintResult(result, json, true);
}

}  // namespace

int RunSubmitCommand(const Config& config, const SubmitOptions& options) {
  if (options.stream && !options.wait) return Fail("--stream needs --wait");
  // The inputs, as `run` collects them.
  nlohmann::json parameters = nlohmann::json::object();
  if (options.params_file) {
    auto read = ReadObjectFile(*options.params_file, "--params-file");
    if (!read) return Fail(read.error().message());
    parameters = std::move(*read);
  }
  std::vector<std::pair<std::string, std::string>> texts;
  std::set<std::string> from_argv;
  for (const std::string& param : options.params) {
    size_t eq = param.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail("invalid --param \"" + param + "\": expected NAME=VALUE");
    }
    texts.emplace_back(param.substr(0, eq), param.substr(eq + 1));
    from_argv.insert(param.substr(0, eq));
  }
  nlohmann::json secrets = nlohmann::json::object();
  if (options.secrets_file) {
    auto read = ReadSecretsFile(*options.secrets_file);
    if (!read) return Fail(read.error().message());
    secrets = std::move(*read);
  }
  struct WipeSecrets {
    nlohmann::json& secrets;
    ~WipeSecrets() { WipeJson(secrets); }
  } wipe_secrets{secrets};

  // The action resolved here, when its pack is installed: its runtime routes the request, and
  // its parameters are read and checked exactly as `run` would.
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  std::string runtime;
  auto resolved = ResolveAction(config.packs_base_dir, options.action_ref, &*runtimes);
  if (resolved) {
    auto chosen = ChooseRuntime(resolved->action, *runtimes);
    if (!chosen)
      return PrintRefusal(options.action_ref, chosen.error().message(), kExitOwnError,
                          options.json);
    runtime = (*chosen)->name;
    RunRequest check;
    check.action_ref = options.action_ref;
    check.parameters = parameters;
    check.parameter_texts = texts;
    check.secrets = secrets;
    check.timeout_seconds = options.timeout_seconds;
    check.parameters_from_argv = from_argv;
    ExecutionContext context{config, *runtimes};
    RequestCheck checked = CheckRunRequest(context, check);
    WipeJson(check.secrets);
    if (checked.problem != RequestProblem::kNone) {
      return PrintRefusal(
          options.action_ref, checked.message,
          checked.problem == RequestProblem::kUnknownAction ? kExitNotFound : kExitOwnError,
          options.json);
    }
    for (const auto& [name, text] : texts) {
      auto declared = resolved->action.parameters.find(name);
      parameters[name] = ParameterValueFromText(
          declared == resolved->action.parameters.end() ? std::nullopt : declared->second.type,
          text);
    }
  } else if (resolved.error().err == ENOENT && options.runtime) {
    // Not installed here: routed by --runtime, the texts read as JSON when they parse; the worker
    // checks the rest.
    for (const auto& [name, text] : texts)
      parameters[name] = ParameterValueFromText(std::nullopt, text);
  } else if (resolved.error().err == ENOENT) {
    return PrintRefusal(
        options.action_ref,
        resolved.error().subject + " (not installed here: give --runtime NAME to route it anyway)",
        kExitNotFound, options.json);
  } else {
    return PrintRefusal(options.action_ref, resolved.error().message(), kExitOwnError,
                        options.json);
  }
  if (options.runtime) {
    auto found = runtimes->Find(*options.runtime);
    if (!found) return Fail("--runtime: " + found.error().message());
    runtime = (*found)->name;
  }

  queue::QueueRequest request;
  request.execution_id = NewExecutionId();
  request.action_ref = options.action_ref;
  request.parameters = std::move(parameters);
  request.timeout_seconds = options.timeout_seconds;
  request.submitted_at = NowRfc3339();
  request.stream_output = options.stream;
  if (!secrets.empty()) {
    auto key = queue::LoadPublicKey(config.worker.public_key_file);
    if (!key) {
      return Fail("worker.public_key_file: " + key.error().message() +
                  " (secrets are sealed to the workers' public key)");
    }
    auto sealed = queue::SealSecrets(secrets, *key);
    if (!sealed) return Fail(sealed.error().message());
    request.sealed_secrets = std::move(*sealed);
  }
  WipeJson(secrets);

  auto broker = queue::BrokerSettingsFromConfig(config, options.broker, "packvisor submit");
  if (!broker) return Fail(broker.error().message());
  broker->options.heartbeat = std::chrono::seconds(options.wait ? 30 : 0);
  auto publisher = queue::AmqpConnection::Open(broker->url, broker->options);
  if (!publisher) return Fail(publisher.error().message());
  if (auto confirms = (*publisher)->EnableConfirms(); !confirms) {
    return Fail(confirms.error().message());
  }
  // With --wait, the reply queue (and the events queue) exist before the request does.
  std::unique_ptr<queue::AmqpConnection> listener;
  std::string reply_queue;
  std::string events_tag;
  if (options.wait) {
    auto opened = queue::AmqpConnection::Open(broker->url, broker->options);
    if (!opened) return Fail(opened.error().message());
    listener = std::move(*opened);
    queue::QueueOptions own;
    own.durable = false;
    own.exclusive = true;
    own.auto_delete = true;
    auto declared = listener->DeclareQueue("", own);
    if (!declared) return Fail(declared.error().message());
    reply_queue = *declared;
    if (auto tag = listener->Consume(reply_queue); !tag) return Fail(tag.error().message());
    if (options.stream) {
      auto events = listener->DeclareQueue("", own);
      if (!events) return Fail(events.error().message());
      if (auto bound = listener->BindQueue(*events, queue::kEventsExchange,
                                           queue::EventRoutingKey(request.execution_id));
          !bound) {
        return Fail(bound.error().message());
      }
      auto tag = listener->Consume(*events);
      if (!tag) return Fail(tag.error().message());
      events_tag = *tag;
    }
  }

  queue::Message message;
  message.body = queue::RequestBody(request);
  if (request.sealed_secrets) WipeString(*request.sealed_secrets);
  message.correlation_id = request.execution_id;
  message.message_id = request.execution_id;
  message.reply_to = reply_queue;
  auto published = (*publisher)
                       ->Publish(queue::kExecutionsExchange, queue::RunRoutingKey(runtime), message,
                                 /*mandatory=*/true);
  if (!published) {
    if (published.error().err == EHOSTUNREACH) {
      return Fail("no worker queue takes run." + runtime + " requests on " +
                  queue::RedactedBrokerUrl(broker->url) + " (is a worker for runtime " + runtime +
                  " set up?)");
    }
    return Fail(published.error().message());
  }
  publisher->reset();

  if (!options.wait) {
    if (options.json) {
      std::cout
          << nlohmann::json{{"execution_id", request.execution_id}, {"status", "queued"}}.dump()
          << std::endl;
    } else {
      std::cout << request.execution_id << std::endl;
    }
    return 0;
  }

  // With --stream the output events and the result come on two queues: the result is printed
  // once the events' own "result" event (after every output event) has arrived too.
  bool result_event_seen = events_tag.empty();
  std::optional<nlohmann::json> answer;
  while (!answer || !result_event_seen) {
    auto delivery = listener->NextDelivery(std::chrono::milliseconds(1000));
    if (!delivery) return Fail("waiting for the result: " + delivery.error().message());
    if (!*delivery) continue;
    (void)listener->Ack((*delivery)->delivery_tag);
    nlohmann::json body = nlohmann::json::parse((*delivery)->message.body, nullptr, false);
    if (!body.is_object()) continue;
    if (!events_tag.empty() && (*delivery)->consumer_tag == events_tag) {
      std::string event = body.value("event", "");
      if (event == "result") result_event_seen = true;
      if (event == "output" && !options.json) {
        std::string data = body.value("data", "");
        FILE* to = body.value("stream", "") == "stderr" ? stderr : stdout;
        std::fwrite(data.data(), 1, data.size(), to);
        std::fflush(to);
      }
      continue;
    }
    if ((*delivery)->message.correlation_id == request.execution_id) answer = std::move(body);
  }
  auto result = ExecutionResultFromJson(*answer);
  if (!result) return Fail("the worker's result: " + result.error().message());
  if (options.json) {
    // The result object of `run --json`, plus the queue's "attempt" and "redelivered".
    nlohmann::json printed = result->ToJson();
    printed["attempt"] = answer->value("attempt", 1);
    printed["redelivered"] = answer->value("redelivered", false);
    std::cout << printed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
    return result->ExitStatus();
  }
  return PrintResult(*result, false, options.stream);
}

}  // namespace packvisor
