#include "supervisor/cli/run_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <set>

#include "envs/document_limits.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/cli/remote_commands.h"
#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/output.h"
#include "supervisor/packs/packs.h"

namespace packvisor {
namespace {

constexpr size_t kMaxInputFileBytes = 8u << 20;

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

// Everything readable from `fd` (which may hold secrets: wiped on failure), 8 MiB at most.
Result<std::string> ReadBounded(int fd, const std::string& what) {
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error error = ErrnoError("read", what);
      explicit_bzero(text.data(), text.size());
      return error;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxInputFileBytes) {
      explicit_bzero(text.data(), text.size());
      explicit_bzero(buffer, sizeof(buffer));
      return Failure("read", what, "more than 8 MiB");
    }
  }
  explicit_bzero(buffer, sizeof(buffer));
  return text;
}

// The parameters of --params-json into `request->parameters`, the texts of --param into
// `request->parameter_texts` (read by their declared types once the action is known), and the
// names that were on the command line itself (not read from a file) into
// `request->parameters_from_argv`.
Result<void> CollectParameters(const RunOptions& options, RunRequest* request) {
  std::set<std::string>* from_argv = &request->parameters_from_argv;
  nlohmann::json params = nlohmann::json::object();
  if (options.params_json) {
    const std::string& value = *options.params_json;
    if (!value.empty() && value[0] == '@') {
      auto from_file = ReadObjectFile(value.substr(1), "--params-json file");
      if (!from_file) return from_file.error();
      params = std::move(*from_file);
    } else {
      std::string copy = value;
      auto parsed = ParseObject(copy, "--params-json");
      if (!parsed) return parsed.error();
      params = std::move(*parsed);
      for (const auto& [key, value] : params.items()) from_argv->insert(key);
    }
  }
  for (const std::string& param : options.params) {
    size_t eq = param.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Failure("invalid --param", "\"" + param + "\"", "expected NAME=VALUE");
    }
    std::string key = param.substr(0, eq);
    from_argv->insert(key);
    request->parameter_texts.emplace_back(key, param.substr(eq + 1));
  }
  request->parameters = std::move(params);
  return Ok{};
}

}  // namespace

Result<nlohmann::json> ParseObject(std::string& text, const std::string& what) {
  if (JsonNestsDeeperThan(text, kMaxParameterDepth)) {
    explicit_bzero(text.data(), text.size());
    return Failure("invalid JSON", what,
                   "nested deeper than " + std::to_string(kMaxParameterDepth) + " levels");
  }
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  explicit_bzero(text.data(), text.size());
  if (parsed.is_discarded()) return Failure("invalid JSON", what, "not valid JSON");
  if (!parsed.is_object()) {
    WipeJson(parsed);
    return Failure("invalid JSON", what, "expected a JSON object");
  }
  return parsed;
}

Result<nlohmann::json> ReadObjectFile(const std::string& path, const std::string& what) {
  auto text = os::ReadFile(path);
  if (!text) return Error{text.error().err, "read " + what, path};
  if (text->size() > kMaxInputFileBytes) {
    explicit_bzero(text->data(), text->size());
    return Failure("read " + what, path, "more than 8 MiB");
  }
  return ParseObject(*text, what + " " + path);
}

// The secrets file: opened once and its mode checked on the open descriptor, so the file that is
// checked is the file that is read. Group or others may neither read nor write it.
Result<nlohmann::json> ReadSecretsFile(const std::string& path) {
  unique_fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return ErrnoError("open secrets file", path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoError("stat secrets file", path);
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    bool readable = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
    return Failure("secrets file", path + " has mode " + mode,
                   std::string("it must not be ") + (readable ? "readable" : "accessible") +
                       " by group or others (chmod 600)");
  }
  auto text = ReadBounded(fd.get(), "secrets file " + path);
  if (!text) return text.error();
  return ParseObject(*text, "secrets file " + path);
}

void PrintRunResultHuman(const ExecutionResult& result) {
  if (!result.result.is_null()) {
    auto dump = [](const nlohmann::json& value, int indent) {
      return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    if (result.result_is_lines && result.result.is_array()) {
      for (const nlohmann::json& item : result.result) std::cout << dump(item, -1) << "\n";
    } else {
      std::cout << dump(result.result, 2) << "\n";
    }
  }
  std::cout.flush();
  std::fprintf(stderr, "packvisor: %s: %s\n", result.action_ref.c_str(),
               HumanSummary(result).c_str());
}

int RunRunCommand(const Config& config, const RunOptions& options) {
  RunRequest request;
  if (auto params = CollectParameters(options, &request); !params) {
    return Fail(params.error().message());
  }
  request.action_ref = options.action_ref;
  request.timeout_seconds = options.timeout_seconds;
  if (options.secrets_file && options.secrets_stdin) {
    return Fail("--secrets-file and --secrets-stdin exclude each other");
  }
  if (options.secrets_file) {
    auto secrets = ReadSecretsFile(*options.secrets_file);
    if (!secrets) return Fail(secrets.error().message());
    request.secrets = std::move(*secrets);
  } else if (options.secrets_stdin) {
    auto text = ReadBounded(STDIN_FILENO, "standard input");
    if (!text) return Fail(text.error().message());
    auto secrets = ParseObject(*text, "secrets on standard input");
    if (!secrets) return Fail(secrets.error().message());
    request.secrets = std::move(*secrets);
  }
  if (options.server) {
    return RunRemoteRun(config, DaemonSocket(config, options.server), std::move(request),
                        options.json);
  }
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) {
    WipeJson(request.secrets);
    return Fail(runtimes.error().message());
  }

  // Human mode: the action's output reaches the terminal as it is written (see FdStreamer).
  std::unique_ptr<FdStreamer> streamer;
  if (!options.json) {
    streamer = std::make_unique<FdStreamer>();
    request.live_stdout = streamer->To(STDOUT_FILENO);
    request.live_stderr = streamer->To(STDERR_FILENO);
  }
  ExecutionContext context{config, *runtimes};
  ExecutionResult result = RunExecution(context, std::move(request));
  if (streamer) streamer->Finish();
  if (options.json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    PrintRunResultHuman(result);
  }
  return result.ExitStatus();
}

}  // namespace packvisor
