// The composition root: the one place that sees every adapter. `serve` goes to the daemon
// (supervisor/server/), `worker` to the queue worker (supervisor/worker/), every other command to
// the command line (supervisor/cli/), which parses argv for all of them.
#include "generated/build_info.h"  // written at build time by cli/build_info.cmake
#include "supervisor/cli/cli.h"
#include "supervisor/server/daemon.h"
#include "supervisor/worker/worker.h"

namespace {

int Serve(const packvisor::ServeArguments& arguments) {
  return packvisor::RunServe(
      packvisor::ServeOptions{arguments.config_path, arguments.socket, arguments.log_level});
}

int Worker(const packvisor::WorkerArguments& arguments) {
  return packvisor::RunWorker(packvisor::WorkerOptions{arguments.config_path, arguments.log_level});
}

}  // namespace

int main(int argc, char** argv) {
  return packvisor::RunCli(argc, argv, {kPackvisorVersion, kPackvisorCommit}, &Serve, &Worker);
}
