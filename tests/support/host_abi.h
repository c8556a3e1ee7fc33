// What the host kernel itself does with a foreign system call ABI, independent of any filter:
// some kernels run no i386 system calls at all (IA32 emulation disabled at boot, or by default
// in confidential-computing guests), and there `int $0x80` is a SIGSEGV before seccomp sees
// it. Tests that expect the filter to kill an i386 call skip on such a host (nothing reaches the
// filter to be killed). Header-only: unit and security tests use it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

namespace packvisor::testing {

#if defined(__x86_64__)
// True when an unfiltered child's `int $0x80` getpid returns to it (the kernel ran it).
inline bool KernelRunsI386SystemCalls() {
  pid_t child = fork();
  if (child == 0) {
    long ret = 20;  // i386 getpid
    asm volatile("int $0x80" : "+a"(ret) : : "memory");
    _exit(ret > 0 ? 0 : 1);
  }
  if (child < 0) return true;  // cannot tell: let the test run and show what happens
  int status = 0;
  if (waitpid(child, &status, 0) != child) return true;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
#endif

}  // namespace packvisor::testing
