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
  static const SeccompProgram kAllowList{
      std::vector<sock_filter>(std::begin(kPolicyAllowList), std::end(kPolicyAllowList))};
  // The allow list has no io_uring call, so an io_uring opt-in changes nothing in allow mode.
  if (options.mode == SeccompMode::kAllow) return kAllowList;
  return options.allow_io_uring ? kWithIoUring : kDefault;
}

}  // namespace packvisor::sandbox
