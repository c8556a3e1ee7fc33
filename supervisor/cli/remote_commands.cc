#include "supervisor/cli/remote_commands.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/cli/daemon_client.h"
#include "supervisor/cli/run_command.h"
#include "supervisor/executions/execution_result.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/request_body.h"

namespace packvisor {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

std::string ErrorText(const HttpResponse& response) { return DaemonErrorText(response.body); }

// "the daemon at S answered 503: draining" (+ Retry-After for 429).
std::string AnswerText(const DaemonClient& client, const std::string& request,
                       const HttpResponse& response) {
  std::string text = request + ": the daemon at " + client.socket_path() + " answered " +
                     std::to_string(response.status) + ": " + ErrorText(response);
  if (auto retry = response.Header("retry-after")) text += " (retry after " + *retry + " s)";
  return text;
}

Result<nlohmann::json> JsonBody(const DaemonClient& client, const HttpResponse& response) {
  auto body = DaemonJsonObject(response.body);
  if (!body) {
    return Failure("read the answer of", "the daemon at " + client.socket_path(),
                   body.error().message());
  }
  return body;
}

// Blocks SIGINT and SIGTERM for its lifetime and makes them readable on fd(): while the client
// follows an execution, a signal becomes a request to cancel it (the kernel queues the signal
// until then, so one that arrives during the submission is not lost). Pending ones are consumed
// before the mask is restored, so that they do not kill the client after it has handled them.
class TerminationSignals {
 public:
  TerminationSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~TerminationSignals() {
    signalfd_siginfo info{};
    while (fd_ && read(fd_.get(), &info, sizeof(info)) == sizeof(info)) {
    }
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;
  int fd() const { return fd_.get(); }

 private:
  sigset_t set_{};
  sigset_t old_{};
  unique_fd fd_;
};

// What following an execution's output stream ends with.
struct Followed {
  ExecutionResult result;
  bool result_is_lines = false;
};

// GET /v1/executions/{id}/output: the stdout/stderr lines go to our stdout/stderr when
// `print_output`, the result line ends it. An Error with err == EINTR: `interrupt_fd` became
// readable first. `*http_status` is the answer's status (0: none).
Result<Followed> FollowOutput(const DaemonClient& client, const std::string& id, bool print_output,
                              int interrupt_fd, int* http_status) {
  *http_status = 0;
  std::optional<Followed> followed;
  LineSplitter lines([&](std::string_view line) -> Result<void> {
    auto parsed = ParseOutputLine(line);
    if (!parsed) return Failure("output stream of", id, parsed.error().message());
    if (!*parsed) return Ok{};
    OutputLine& item = **parsed;
    if (item.kind == OutputLine::Kind::kResult) {
      auto result = ExecutionResultFromJson(item.result);
      if (!result) return Failure("output stream of", id, result.error().message());
      followed = Followed{std::move(*result), item.result_is_lines};
      followed->result.result_is_lines = item.result_is_lines;
      return Ok{};
    }
    if (!print_output) return Ok{};
    if (item.kind == OutputLine::Kind::kStdout) {
      std::cout.flush();
      return os::WriteAll(STDOUT_FILENO, item.data.data(), item.data.size(), "standard output");
    }
    return os::WriteAll(STDERR_FILENO, item.data.data(), item.data.size(), "standard error");
  });
  RequestOptions options;
  options.idle_timeout = std::nullopt;  // the action may be silent for as long as it runs
  options.interrupt_fd = interrupt_fd;
  auto response =
      client.Send("GET", "/v1/executions/" + UrlEncode(id) + "/output", nullptr, options,
                  [&](std::string_view piece) -> Result<void> { return lines.Feed(piece); });
  if (!response) return response.error();
  *http_status = response->status;
  if (response->status != 200)
    return Error{0, AnswerText(client, "output of " + id, *response), ""};
  PV_TRY(lines.Finish());
  if (!followed) {
    return Failure("follow the output of", id, "the stream ended without the result");
  }
  return std::move(*followed);
}

// Which HTTP statuses mean what for the commands that name an execution id.
int StatusExit(int http_status) { return http_status == 404 ? kExitNotFound : kExitOwnError; }

// DELETE /v1/executions/{id}: the final result once the execution has ended; when it had ended
// already (409), the result it ended with.
Result<ExecutionResult> Cancel(const Config& config, const DaemonClient& client,
                               const std::string& id, int* http_status) {
  RequestOptions options;
  // The daemon answers once the sandbox is gone: SIGTERM, the grace period, SIGKILL.
  options.idle_timeout =
      std::chrono::seconds(config.execution.kill_grace_seconds + static_cast<int64_t>(30));
  std::string target = "/v1/executions/" + UrlEncode(id);
  auto response = client.Send("DELETE", target, nullptr, options);
  if (!response) return response.error();
  *http_status = response->status;
  if (response->status == 409) {
    response = client.Send("GET", target, nullptr, {});
    if (!response) return response.error();
    *http_status = response->status;
  }
  if (response->status != 200) {
    return Failure("cancel", id, AnswerText(client, "cancel", *response));
  }
  auto body = JsonBody(client, *response);
  if (!body) return body.error();
  auto result = ExecutionResultFromJson(*body);
  if (!result) return Failure("cancel", id, result.error().message());
  return result;
}

// Follows the execution `id` to its end (human: live output) and prints its result as `print`
// does; a SIGINT/SIGTERM meanwhile cancels it when `signals` is set. Returns the exit status.
// `exec` prints a rejected result (bad options) as one error line, also with --json, as the local
// exec does.
template <typename Print>
int FollowAndPrint(const Config& config, const DaemonClient& client, const std::string& id,
                   bool json, const TerminationSignals* signals, Print print, bool exec = false) {
  int http_status = 0;
  auto followed = FollowOutput(client, id, !json, signals ? signals->fd() : -1, &http_status);
  ExecutionResult result;
  if (followed) {
    result = std::move(followed->result);
  } else if (followed.error().err == EINTR && signals != nullptr) {
    auto cancelled = Cancel(config, client, id, &http_status);
    if (!cancelled) return Fail(cancelled.error().message());
    result = std::move(*cancelled);
  } else {
    Fail(followed.error().message());
    return StatusExit(http_status);
  }
  if (exec && result.status == ExecutionStatus::kRejected) {
    return Fail(result.error.value_or("rejected"));
  }
  if (json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    print(result);
  }
  return result.ExitStatus();
}

// A result of the daemon's refusal of a submission, as the local run would have printed it.
ExecutionResult RejectedResult(const std::string& action_ref, std::string error, int exit_status) {
  ExecutionResult result;
  result.execution_id = NewExecutionId();
  result.action_ref = action_ref;
  result.status = ExecutionStatus::kRejected;
  result.error = std::move(error);
  if (exit_status != kExitOwnError) result.start_failure_exit = exit_status;
  return result;
}

// "2026-12-06T22:41:31.123Z" → Unix epoch milliseconds; nullopt when it is not in that form.
std::optional<int64_t> ParseTime(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &zone) != 8 ||
      zone != 'Z') {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}

std::string DurationText(int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + " ms";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(ms) / 1000.0);
  return text;
}

std::string StringField(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string DaemonSocket(const Config& config, const std::optional<std::string>& server) {
  if (server && !server->empty()) return *server;
  return config.server.socket;
}

int RunRemoteRun(const Config& config, const std::string& socket, RunRequest request, bool json) {
  DaemonClient client(socket);
  // The daemon reads each --param text by its declared type, as the local run does, and refuses
  // a parameter declared secret among those given on the command line (docs/api.md).
  const std::string action_ref = request.action_ref;
  nlohmann::json body = RunRequestBody(std::move(request));  // the secrets moved: wiped below
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  WipeJson(body);

  // From before the submission: a signal during it waits, then cancels what was submitted.
  TerminationSignals signals;
  auto response = client.Send("POST", "/v1/executions", &text, {});
  WipeString(text);
  if (!response) return Fail(response.error().message());
  if (response->status == 400 || response->status == 404) {
    // The checks of the local run, made by the daemon: printed as the local run prints them.
    // The daemon's error names the action ("demo.x: parameter ..."); a result carries it apart.
    std::string error = ErrorText(*response);
    if (error.rfind(action_ref + ": ", 0) == 0) {
      error.erase(0, action_ref.size() + 2);
    }
    ExecutionResult rejected = RejectedResult(
        action_ref, std::move(error), response->status == 404 ? kExitNotFound : kExitOwnError);
    if (json) {
      std::cout << rejected.ToJsonLine() << std::endl;
    } else {
      PrintRunResultHuman(rejected);
    }
    return rejected.ExitStatus();
  }
  if (response->status != 202) {
    return Fail(AnswerText(client, "run " + action_ref, *response));
  }
  auto accepted = JsonBody(client, *response);
  if (!accepted) return Fail(accepted.error().message());
  std::string id = StringField(*accepted, "execution_id");
  if (id.empty()) return Fail("run " + action_ref + ": the daemon gave no execution_id");
  return FollowAndPrint(config, client, id, json, &signals, PrintRunResultHuman);
}

int RunRemoteExec(const Config& config, const ExecOptions& options) {
  DaemonClient client(DaemonSocket(config, options.server));
  RawExecRequest request;
  request.command = options.command;
  request.network = options.network;
  // Relative directories are the client's: the daemon has another working directory.
  for (const auto& [key, dir, out] : {std::tuple<const char*, const std::string&, std::string*>{
                                          "pack_dir", options.pack_dir, &request.pack_dir},
                                      {"env_dir", options.env_dir, &request.env_dir}}) {
    if (dir.empty()) continue;
    std::error_code ec;
    std::string absolute =
        dir[0] == '/' ? dir : std::filesystem::current_path(ec).string() + "/" + dir;
    if (ec)
      return Fail(std::string("--") + key + " " + dir + ": the working directory: " + ec.message());
    *out = absolute;
  }
  request.timeout_seconds = options.timeout_seconds;
  request.memory_mb = options.memory_mb;
  request.pids = options.pids;
  request.cpu_percent = options.cpu_percent;
  std::string text =
      ExecRequestBody(request).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  TerminationSignals signals;
  auto response = client.Send("POST", "/v1/exec", &text, {});
  if (!response) return Fail(response.error().message());
  if (response->status == 400) return Fail(ErrorText(*response));
  if (response->status != 202) return Fail(AnswerText(client, "exec", *response));
  auto accepted = JsonBody(client, *response);
  if (!accepted) return Fail(accepted.error().message());
  std::string id = StringField(*accepted, "execution_id");
  if (id.empty()) return Fail("exec: the daemon gave no execution_id");
  return FollowAndPrint(config, client, id, options.json, &signals, PrintExecResultHuman, true);
}

int RunPsCommand(const Config& config, const RemoteOptions& options) {
  DaemonClient client(DaemonSocket(config, options.server));
  std::string target = "/v1/executions";
  std::string query;
  auto add = [&query](const char* key, const std::string& value) {
    query += (query.empty() ? "?" : "&") + std::string(key) + "=" + UrlEncode(value);
  };
  if (options.status) add("status", *options.status);
  if (options.action) add("action_ref", *options.action);
  if (options.limit) add("limit", std::to_string(*options.limit));
  auto response = client.Send("GET", target + query, nullptr, {});
  if (!response) return Fail(response.error().message());
  if (response->status != 200) return Fail(AnswerText(client, "ps", *response));
  auto body = JsonBody(client, *response);
  if (!body) return Fail(body.error().message());
  auto executions = body->find("executions");
  if (executions == body->end() || !executions->is_array()) {
    return Fail("ps: the daemon's answer has no \"executions\" array");
  }
  if (options.json) {
    std::cout << body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    return 0;
  }
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"ID", "ACTION", "STATUS", "SUBMITTED", "DURATION"});
  for (const nlohmann::json& item : *executions) {
    if (!item.is_object()) continue;
    std::string submitted = StringField(item, "submitted_at");
    std::string duration = "-";
    auto from = ParseTime(submitted);
    auto to = ParseTime(StringField(item, "finished_at"));
    if (from && to && *to >= *from) duration = DurationText(*to - *from);
    std::string action = StringField(item, "action_ref");
    rows.push_back({StringField(item, "execution_id"), action.empty() ? "(exec)" : action,
                    StringField(item, "status"), submitted, duration});
  }
  std::array<size_t, 5> widths{};
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  std::cout.flush();
  return 0;
}

int RunLogsCommand(const Config& config, const RemoteOptions& options) {
  DaemonClient client(DaemonSocket(config, options.server));
  const std::string& id = options.execution_id;
  if (options.follow) {
    int http_status = 0;
    auto followed = FollowOutput(client, id, true, -1, &http_status);
    if (!followed) {
      Fail(followed.error().message());
      return StatusExit(http_status);
    }
    return 0;
  }
  auto response = client.Send("GET", "/v1/executions/" + UrlEncode(id), nullptr, {});
  if (!response) return Fail(response.error().message());
  if (response->status != 200) {
    Fail(AnswerText(client, "logs " + id, *response));
    return StatusExit(response->status);
  }
  auto body = JsonBody(client, *response);
  if (!body) return Fail(body.error().message());
  std::string status = StringField(*body, "status");
  if (status == "queued" || status == "running") {
    // The daemon keeps an execution's output in its result, which exists once it has ended.
    std::fprintf(stderr,
                 "packvisor: %s is %s: its output is kept once it ends (logs --follow %s "
                 "streams it now)\n",
                 id.c_str(), status.c_str(), id.c_str());
    return 0;
  }
  std::string out = StringField(*body, "stdout");
  std::string err = StringField(*body, "stderr");
  if (auto written = os::WriteAll(STDOUT_FILENO, out.data(), out.size(), "standard output");
      !written) {
    return Fail(written.error().message());
  }
  if (auto written = os::WriteAll(STDERR_FILENO, err.data(), err.size(), "standard error");
      !written) {
    return Fail(written.error().message());
  }
  return 0;
}

int RunCancelCommand(const Config& config, const RemoteOptions& options) {
  DaemonClient client(DaemonSocket(config, options.server));
  const std::string& id = options.execution_id;
  RequestOptions request_options;
  request_options.idle_timeout =
      std::chrono::seconds(config.execution.kill_grace_seconds + static_cast<int64_t>(30));
  auto response =
      client.Send("DELETE", "/v1/executions/" + UrlEncode(id), nullptr, request_options);
  if (!response) return Fail(response.error().message());
  if (response->status != 200) {
    Fail(AnswerText(client, "cancel " + id, *response));
    return StatusExit(response->status);
  }
  auto body = JsonBody(client, *response);
  if (!body) return Fail(body.error().message());
  auto result = ExecutionResultFromJson(*body);
  if (!result) return Fail("cancel " + id + ": " + result.error().message());
  if (options.json) {
    std::cout << result->ToJsonLine() << std::endl;
  } else {
    std::string what = result->action_ref.empty() ? "exec" : result->action_ref;
    std::fprintf(stderr, "packvisor: %s %s: %s\n", what.c_str(), id.c_str(),
                 HumanSummary(*result).c_str());
  }
  return 0;
}

int RunResultCommand(const Config& config, const RemoteOptions& options) {
  DaemonClient client(DaemonSocket(config, options.server));
  const std::string& id = options.execution_id;
  auto response = client.Send("GET", "/v1/executions/" + UrlEncode(id), nullptr, {});
  if (!response) return Fail(response.error().message());
  if (response->status != 200) {
    Fail(AnswerText(client, "result " + id, *response));
    return StatusExit(response->status);
  }
  // Printed as `run` prints it, from the output stream: the kept output of a finished execution,
  // or the live output of one still running, then the result; its exit status is the result's.
  return FollowAndPrint(config, client, id, options.json, nullptr, [](const ExecutionResult& r) {
    if (r.action_ref.empty()) {
      PrintExecResultHuman(r);
    } else {
      PrintRunResultHuman(r);
    }
  });
}

}  // namespace packvisor
