#include "sandbox/init.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>

#include "sandbox/report.h"

namespace packvisor::sandbox {

void InitSignalSet(sigset_t* set) {
  sigemptyset(set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(set, sig);
}

void RunInit(pid_t action, int report_fd) {
  sigset_t set;
  InitSignalSet(&set);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      // kill(-1) from PID 1 reaches every other process of the namespace.
      kill(-1, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != action) continue;
      ChildMessage message{MessageKind::kActionExited, SetupStep::kNone, 0, status};
      (void)!write(report_fd, &message, sizeof(message));
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

}  // namespace packvisor::sandbox
