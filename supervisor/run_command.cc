#include "supervisor/run_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>

#include "sandbox/os/syscalls.h"
#include "supervisor/builtin_runtimes.h"
#include "supervisor/cli.h"
#include "supervisor/execution.h"
#include "supervisor/packs.h"

namespace packvisor {
namespace {

constexpr size_t kMaxInputFileBytes = 8u << 20;

int Fail(const std::string& message) {
  std::fprintf(stderr, "packvisor: error: %s\n", message.c_str());
  return kExitOwnError;
}

Result<std::string> ReadAllStdin() {
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(0, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", "standard input");
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxInputFileBytes) {
      explicit_bzero(text.data(), text.size());
      return Failure("read", "standard input", "more than 8 MiB");
    }
  }
  explicit_bzero(buffer, sizeof(buffer));
  return text;
}

// Parses a JSON object from `text` (which may hold secrets: errors never quote it). `what` names
// the source in messages; `text` is wiped.
Result<nlohmann::json> ParseObject(std::string& text, const std::string& what) {
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

// The parameters of --params-json and --param; `from_argv` gets the names that were on the
// command line itself (not read from a file).
Result<nlohmann::json> CollectParameters(const RunOptions& options,
                                         std::set<std::string>* from_argv) {
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
      return Failure("invalid --param", param.substr(0, eq), "expected KEY=VALUE");
    }
    std::string key = param.substr(0, eq);
    std::string value = param.substr(eq + 1);
    from_argv->insert(key);
    auto parsed = nlohmann::json::parse(value, nullptr, false);
    params[key] = parsed.is_discarded() ? nlohmann::json(value) : parsed;
  }
  return params;
}

void PrintHuman(const ExecutionResult& result) {
  std::fwrite(result.stdout_text.data(), 1, result.stdout_text.size(), stdout);
  if (!result.result.is_null()) std::cout << result.result.dump(2) << "\n";
  std::cout.flush();
  std::fwrite(result.stderr_text.data(), 1, result.stderr_text.size(), stderr);
  std::string line = result.action_ref + ": " + ExecutionStatusName(result.status);
  if (result.exit_code) line += " (exit " + std::to_string(*result.exit_code) + ")";
  if (result.signal) line += " (signal " + std::to_string(*result.signal) + ")";
  line += " in " + std::to_string(result.duration_ms) + " ms";
  if (result.env_build_ms > 0) {
    line += " (environment build " + std::to_string(result.env_build_ms) + " ms)";
  }
  if (result.error) line += ": " + *result.error;
  std::fprintf(stderr, "packvisor: %s\n", line.c_str());
}

}  // namespace

int RunRunCommand(const Config& config, const RunOptions& options) {
  auto runtimes = LoadRuntimeRegistry(config);
  if (!runtimes) return Fail(runtimes.error().message());
  RunRequest request;
  auto params = CollectParameters(options, &request.parameters_from_argv);
  if (!params) return Fail(params.error().message());

  request.action_ref = options.action_ref;
  request.parameters = std::move(*params);
  request.timeout_seconds = options.timeout_seconds;
  if (options.secrets_file && options.secrets_stdin) {
    return Fail("--secrets-file and --secrets-stdin exclude each other");
  }
  if (options.secrets_file) {
    auto secrets = ReadObjectFile(*options.secrets_file, "secrets file");
    if (!secrets) return Fail(secrets.error().message());
    request.secrets = std::move(*secrets);
  } else if (options.secrets_stdin) {
    auto text = ReadAllStdin();
    if (!text) return Fail(text.error().message());
    auto secrets = ParseObject(*text, "secrets on standard input");
    if (!secrets) return Fail(secrets.error().message());
    request.secrets = std::move(*secrets);
  }

  ExecutionContext context{config, *runtimes};
  ExecutionResult result = RunExecution(context, std::move(request));
  if (options.json) {
    std::cout << result.ToJsonLine() << std::endl;
  } else {
    PrintHuman(result);
  }
  return result.ExitStatus();
}

}  // namespace packvisor
