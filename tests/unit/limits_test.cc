// Per-runtime and per-action cgroup limits within the configuration's ceilings
// (supervisor/config/sandbox_defaults.h).
#include <gtest/gtest.h>

#include "supervisor/config/sandbox_defaults.h"

namespace packvisor {
namespace {

Config WithCeilings() {
  Config config;
  config.source = "/etc/packvisor/packvisor.toml";
  config.sandbox.memory_max_mb = 256;
  config.sandbox.pids_max = 64;
  config.sandbox.cpu_max_percent = 100;
  config.sandbox.memory_ceiling_mb = 1024;
  config.sandbox.pids_ceiling = 64;
  config.sandbox.cpu_ceiling_percent = 200;
  return config;
}

TEST(ResolveLimits, ActionOverRuntimeOverConfiguration) {
  envs::LimitRequest runtime{.memory_mb = 512, .pids = 32, .cpu_percent = std::nullopt};
  envs::LimitRequest action{.memory_mb = 768, .pids = std::nullopt, .cpu_percent = std::nullopt};
  auto limits = ResolveLimits(WithCeilings(), runtime, "runtime r", action, "a.yaml");
  ASSERT_TRUE(limits.ok()) << limits.error().message();
  EXPECT_EQ(limits->memory_mb, 768u);
  EXPECT_EQ(limits->pids, 32u);
  EXPECT_EQ(limits->cpu_percent, 100u);
  auto defaults = ResolveLimits(WithCeilings(), {}, "runtime r", {}, "a.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->memory_mb, 256u);
  EXPECT_EQ(defaults->pids, 64u);
}

TEST(ResolveLimits, RequestAboveTheCeilingNamesFileKeyAndCeiling) {
  envs::LimitRequest action{.memory_mb = 2048, .pids = std::nullopt, .cpu_percent = std::nullopt};
  auto limits = ResolveLimits(WithCeilings(), {}, "runtime r", action, "/packs/p/actions/a.yaml");
  ASSERT_FALSE(limits.ok());
  EXPECT_EQ(limits.error().message(),
            "/packs/p/actions/a.yaml: limits.memory_mb: 2048 exceeds sandbox.memory_ceiling_mb "
            "1024 (/etc/packvisor/packvisor.toml)");
  envs::LimitRequest runtime{.memory_mb = std::nullopt, .pids = 65, .cpu_percent = std::nullopt};
  auto from_runtime = ResolveLimits(WithCeilings(), runtime, "runtime r (r.toml)", {}, "a.yaml");
  ASSERT_FALSE(from_runtime.ok());
  EXPECT_EQ(from_runtime.error().message(),
            "runtime r (r.toml): limits.pids: 65 exceeds sandbox.pids_ceiling 64 "
            "(/etc/packvisor/packvisor.toml)");
  // An action may lower what its runtime raised.
  envs::LimitRequest lower{.memory_mb = std::nullopt, .pids = 8, .cpu_percent = std::nullopt};
  EXPECT_TRUE(ResolveLimits(WithCeilings(), runtime, "runtime r", lower, "a.yaml").ok());
}

TEST(ApplyLimits, SetsTheCgroupAndTheNprocRlimit) {
  sandbox::SandboxSpec spec;
  spec.cgroup = sandbox::CgroupLimits{};
  ApplyLimits({.memory_mb = 100, .pids = 12, .cpu_percent = 150}, &spec);
  EXPECT_EQ(spec.cgroup->memory_max_bytes, 100ull << 20);
  EXPECT_EQ(spec.cgroup->pids_max, 12u);
  EXPECT_EQ(spec.cgroup->cpu_max_percent, 150u);
  EXPECT_EQ(spec.limits.nproc, 12u);
  sandbox::SandboxSpec rlimits_only;
  ApplyLimits({.memory_mb = 100, .pids = 12, .cpu_percent = 150}, &rlimits_only);
  EXPECT_FALSE(rlimits_only.cgroup.has_value());
  EXPECT_EQ(rlimits_only.limits.nproc, 12u);
}

}  // namespace
}  // namespace packvisor
