// The seccomp programs compiled at build time by sandbox/seccomp_gen.cc.
#include <linux/filter.h>

#include <iterator>

#include "sandbox/seccomp_policy.h"

namespace packvisor::sandbox {
namespace {
#include "seccomp_programs.inc"
}  // namespace

const SeccompProgram& BuiltinSeccompProgram(const SeccompOptions& options) {
  static const SeccompProgram kDefault{
      std::vector<sock_filter>(std::begin(kPolicyDefault), std::end(kPolicyDefault))};
  static const SeccompProgram kWithIoUring{
      std::vector<sock_filter>(std::begin(kPolicyWithIoUring), std::end(kPolicyWithIoUring))};
  return options.allow_io_uring ? kWithIoUring : kDefault;
}

}  // namespace packvisor::sandbox
