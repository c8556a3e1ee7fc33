// supervisor/worker/: the queue worker `packvisor worker` (docs/worker.md): a long-lived process
// that consumes execution requests from RabbitMQ (the protocol of docs/queue-protocol.md,
// supervisor/queue/), runs them with the execution service (supervisor/executions/) exactly as
// the CLI and the daemon do, and publishes their results. At-least-once: a request is acked only
// after its result is confirmed by the broker; a request whose execution already finished here is
// answered from the per-worker record instead of being run again. It never includes cli/ or
// server/.
//
// This header: the process's entry point (worker.cc: start-up, the broker thread, signals,
// reconnects, drain) and the threads executions run on (execution_threads.h).
#pragma once

#include <optional>
#include <string>

namespace packvisor {

struct WorkerOptions {
  std::optional<std::string> config_path;  // the global --config
  std::string log_level = "info";          // the global --log-level, when given
};

// Runs until SIGTERM or SIGINT has drained the worker (0), or fails to start (125, the error
// logged as one line): no configuration, no private key (worker.key_file), another worker on the
// same state_dir, a broker that refuses the topology.
int RunWorker(const WorkerOptions& options);

}  // namespace packvisor
