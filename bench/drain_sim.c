/* Mimics packvisor's output path (sandbox/launcher.cc Monitor::Run/Drain +
 * supervisor/executions/output.cc CappedOutput::Consume) outside any sandbox, to measure what the
 * read loop itself costs and what a larger pipe or read buffer would change. Runs PROGRAM with
 * stdout on a pipe and drains it:
 *
 *   drain_sim [-p] [-s PIPE_BYTES] [-b BUF_BYTES] [-c CAP_BYTES] -- PROGRAM [ARGS...]
 *
 *   -p            poll(POLLIN) before every read, as Monitor::Run does (default: blocking reads,
 *                 as cat does)
 *   -s BYTES      F_SETPIPE_SZ on the pipe before the fork (default: the kernel's 64 KiB)
 *   -b BYTES      read buffer size (default 65536, as Monitor::Drain)
 *   -c BYTES      keep at most this many bytes in a growing buffer (like CappedOutput's
 *                 std::string: doubling growth, then count and drop); default 10485760
 *
 * Prints "drain_sim total=N kept=N reads=N pipe=N" on stderr. Used by bench/output_bench.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int use_poll = 0;
  long pipe_size = 0, buf_size = 65536, cap = 10485760;
  int opt;
  while ((opt = getopt(argc, argv, "+ps:b:c:")) != -1) {
    switch (opt) {
      case 'p': use_poll = 1; break;
      case 's': pipe_size = atol(optarg); break;
      case 'b': buf_size = atol(optarg); break;
      case 'c': cap = atol(optarg); break;
      default:
        fprintf(stderr, "usage: %s [-p] [-s PIPE] [-b BUF] [-c CAP] -- PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
  }
  if (optind >= argc) return 2;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) { perror("pipe2"); return 1; }
  if (pipe_size > 0 && fcntl(fds[0], F_SETPIPE_SZ, (int)pipe_size) < 0) {
    perror("F_SETPIPE_SZ");
    return 1;
  }
  int actual_pipe = fcntl(fds[0], F_GETPIPE_SZ);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) {
    dup2(fds[1], 1);
    execvp(argv[optind], argv + optind);
    perror(argv[optind]);
    _exit(127);
  }
  close(fds[1]);
  char* buf = malloc((size_t)buf_size);
  char* kept = NULL;
  size_t kept_len = 0, kept_cap = 0;
  unsigned long long total = 0, reads = 0;
  for (;;) {
    if (use_poll) {
      struct pollfd p = {fds[0], POLLIN, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) { perror("poll"); return 1; }
    }
    ssize_t n = read(fds[0], buf, (size_t)buf_size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ++reads;
    total += (unsigned long long)n;
    size_t room = (size_t)cap - kept_len;
    size_t take = (size_t)n < room ? (size_t)n : room;
    if (take > 0) {
      if (kept_len + take > kept_cap) {
        size_t grown = kept_cap ? kept_cap * 2 : 64;
        while (grown < kept_len + take) grown *= 2;
        char* next = malloc(grown); /* like std::string: new block, copy, free the old one */
        if (kept_len) memcpy(next, kept, kept_len);
        free(kept);
        kept = next;
        kept_cap = grown;
      }
      memcpy(kept + kept_len, buf, take);
      kept_len += take;
    }
  }
  int status;
  waitpid(pid, &status, 0);
  fprintf(stderr, "drain_sim total=%llu kept=%zu reads=%llu pipe=%d\n", total, kept_len, reads,
          actual_pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
