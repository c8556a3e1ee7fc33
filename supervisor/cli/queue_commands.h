// The commands of the queue protocol's clients (docs/queue-protocol.md): `keygen` writes the
// workers' sealing key pair; `submit` (submit_command.cc) publishes a request to the queue
// workers and, with --wait, prints its result as `run` does. They use supervisor/queue/ and
// never the worker itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "supervisor/config/config.h"

namespace packvisor {

// `packvisor keygen [--private FILE] [--public FILE]`.
struct KeygenOptions {
  std::optional<std::string> private_path;  // default: worker.key_file
  std::optional<std::string> public_path;   // default: worker.public_key_file
};

// Writes a new pair (never overwriting either file) and prints the public key's path. 0, or
// kExitOwnError with one line on stderr.
int RunKeygenCommand(const Config& config, const KeygenOptions& options);

struct SubmitOptions {
  std::string action_ref;
  std::optional<std::string> broker;        // --broker URL: overrides worker.broker_url
  std::vector<std::string> params;          // NAME=VALUE, read by NAME's declared type
  std::optional<std::string> params_file;   // a JSON object
  std::optional<std::string> secrets_file;  // a JSON object, sealed to worker.public_key_file
  std::optional<std::string> runtime;       // routes a request whose pack is not installed here
  std::optional<double> timeout_seconds;
  bool wait = false;    // wait for the result and print it as `run` does
  bool json = false;    // print JSON
  bool stream = false;  // with --wait: the action's output as it is written (output events)
};

// Exit status: without --wait 0 once the broker has confirmed the request (125 on any error,
// among them a request no worker queue takes); with --wait, run's exit status for the result.
int RunSubmitCommand(const Config& config, const SubmitOptions& options);

}  // namespace packvisor
