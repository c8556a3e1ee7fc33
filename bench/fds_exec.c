/* Opens each FILE read-only on descriptor FD (inheritable) and execs PROGRAM ARGS...: lets
 * hyperfine -N (no shell) run `bwrap --seccomp FD --file FD DEST ...` with fresh file offsets on
 * every run. A generalisation of fd_exec.c to several descriptors (used by bench/run_bench.sh).
 *
 *   fds_exec FD=FILE [FD=FILE ...] -- PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {
    char* eq = strchr(argv[i], '=');
    if (eq == NULL) {
      fprintf(stderr, "fds_exec: expected FD=FILE, got %s\n", argv[i]);
      return 2;
    }
    int target = atoi(argv[i]);
    if (target < 3) {
      fprintf(stderr, "fds_exec: refusing descriptor %d\n", target);
      return 2;
    }
    int fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      perror(eq + 1);
      return 1;
    }
    if (fd != target) {
      if (dup2(fd, target) < 0) { /* dup2 clears O_CLOEXEC on the new descriptor */
        perror("dup2");
        return 1;
      }
      close(fd);
    } else if (fcntl(fd, F_SETFD, 0) < 0) {
      perror("fcntl");
      return 1;
    }
  }
  if (i + 1 >= argc) {
    fprintf(stderr, "usage: %s FD=FILE [FD=FILE ...] -- PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  execv(argv[i + 1], argv + i + 1);
  perror(argv[i + 1]);
  return 127;
}
