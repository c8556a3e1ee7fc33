// The commands of the queue protocol's clients (docs/queue-protocol.md): `keygen` writes the
// workers' sealing key pair. They use supervisor/queue/ and never the worker itself.
#pragma once

#include <optional>
#include <string>

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

}  // namespace packvisor
