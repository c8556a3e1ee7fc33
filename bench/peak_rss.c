/* Runs PROGRAM ARGS... and reports two peak-RSS figures on stderr, one line:
 *
 *   peak_rss self_kb=N tree_kb=M status=S
 *
 * self_kb: the program's own VmHWM, read from /proc/PID/status at its PTRACE_EVENT_EXIT stop (the
 *          last moment its address space still exists). Only that process: the sandbox processes
 *          it clones are not traced and not counted.
 * tree_kb: ru_maxrss from wait4 on the program: the largest of the program and every descendant
 *          it (transitively) reaped. This is what GNU time -v prints as "Maximum resident set
 *          size".
 * The program's stdin/stdout/stderr are inherited. Exit status: the program's (128+N on signal N).
 * Needs CAP_SYS_PTRACE for a program that makes itself non-dumpable (packvisor does): run as root.
 *
 *   peak_rss PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static long read_hwm_kb(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 125;
  }
  if (pid == 0) {
    raise(SIGSTOP); /* wait until the parent has attached */
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, WSTOPPED) < 0) {
    perror("waitpid");
    return 125;
  }
  if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL) != 0) {
    perror("ptrace(PTRACE_SEIZE)");
    kill(pid, SIGKILL);
    return 125;
  }
  kill(pid, SIGCONT);
  long self_kb = -1;
  struct rusage usage;
  for (;;) {
    memset(&usage, 0, sizeof(usage));
    pid_t r = wait4(pid, &status, __WALL, &usage);
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("wait4");
      return 125;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    int event = (status >> 16) & 0xff;
    if (sig == SIGTRAP && event == PTRACE_EVENT_EXIT) {
      self_kb = read_hwm_kb(pid);
      ptrace(PTRACE_CONT, pid, 0, 0);
    } else if (event == PTRACE_EVENT_STOP) {
      /* group-stop under PTRACE_SEIZE: resume without a signal */
      ptrace(PTRACE_CONT, pid, 0, 0);
    } else {
      /* signal-delivery-stop: deliver the signal (SIGCONT from us included) */
      ptrace(PTRACE_CONT, pid, 0, sig == SIGSTOP ? 0 : sig);
    }
  }
  fprintf(stderr, "peak_rss self_kb=%ld tree_kb=%ld status=%d\n", self_kb, usage.ru_maxrss,
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
