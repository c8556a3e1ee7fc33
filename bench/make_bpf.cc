// Writes packvisor's own seccomp policy (SeccompOptions defaults) as a raw classic-BPF program:
// the format bwrap's --seccomp FD reads. Used by bench/exec_bench.sh so that bwrap and packvisor
// run /bin/true under the same filter.
//
//   make_bpf OUTPUT_FILE
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "sandbox/seccomp_policy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_FILE\n", argv[0]);
    return 2;
  }
  auto program = packvisor::sandbox::CompileSeccompPolicy({});
  if (!program) {
    std::fprintf(stderr, "make_bpf: %s\n", program.error().message().c_str());
    return 1;
  }
  packvisor::unique_fd fd(::open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    std::perror(argv[1]);
    return 1;
  }
  const auto& instructions = program->instructions;
  auto written = packvisor::os::WriteAll(fd.get(), instructions.data(),
                                         instructions.size() * sizeof(instructions[0]), argv[1]);
  if (!written) {
    std::fprintf(stderr, "make_bpf: %s\n", written.error().message().c_str());
    return 1;
  }
  std::printf("%zu instructions\n", instructions.size());
  return 0;
}
