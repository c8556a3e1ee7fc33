/* Opens FILE read-only on descriptor FD (inheritable) and execs PROGRAM ARGS...: lets hyperfine -N
 * (no shell) run `bwrap --seccomp FD` with a fresh file offset on every run.
 *
 *   fd_exec FD FILE PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s FD FILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  int target = atoi(argv[1]);
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    perror(argv[2]);
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
  execv(argv[3], argv + 3);
  perror(argv[3]);
  return 127;
}
