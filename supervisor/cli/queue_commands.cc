#include "supervisor/cli/queue_commands.h"

#include <cstdio>
#include <string>

#include "supervisor/executions/exit_status.h"
#include "supervisor/queue/sealed_secrets.h"

namespace packvisor {

int RunKeygenCommand(const Config& config, const KeygenOptions& options) {
  const std::string private_path = options.private_path.value_or(config.worker.key_file);
  const std::string public_path = options.public_path.value_or(config.worker.public_key_file);
  if (auto written = queue::WriteKeyPair(private_path, public_path); !written) {
    std::fprintf(stderr, "packvisor: error: %s\n", written.error().message().c_str());
    return kExitOwnError;
  }
  std::printf("%s\n", public_path.c_str());
  return 0;
}

}  // namespace packvisor
