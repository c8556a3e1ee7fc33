// A cgroup parent of the test's own (sandbox.cgroup_parent), so that a test can see exactly which
// cgroup directories its packvisor runs create and leave, in every hierarchy, without being
// confused by other suites (or other people's runs) using the default parent at the same time.
// Header-only: the integration and security test binaries both use it.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/cgroup.h"
#include "tests/support/harness.h"

namespace packvisor::testing {

class ScopedCgroupParent {
 public:
  ScopedCgroupParent() : name_(UniqueMarker("pvtest-cg")) {
    const sandbox::CgroupLayout& layout = sandbox::CgroupLayout::Probe();
    std::vector<std::string> owns;
    if (layout.backend == sandbox::CgroupBackend::kV2) {
      owns.push_back(layout.v2_dir);
    } else if (layout.backend == sandbox::CgroupBackend::kV1) {
      owns = {layout.v1_memory, layout.v1_pids, layout.v1_cpu, layout.v1_cpuacct,
              layout.v1_freezer};
    }
    for (const std::string& own : owns) {
      if (own.empty()) continue;
      std::string dir = own + "/" + name_;
      if (std::find(dirs_.begin(), dirs_.end(), dir) == dirs_.end()) dirs_.push_back(dir);
    }
  }
  ~ScopedCgroupParent() {
    // Whatever a failed test left: kill its members, remove the children, then the parents.
    for (const std::string& child : Children()) {
      for (int attempt = 0; attempt < 100 && rmdir(child.c_str()) != 0 && errno == EBUSY;
           ++attempt) {
        for (const std::string& line : Lines(ReadFileOrEmpty(child + "/cgroup.procs"))) {
          kill(static_cast<pid_t>(std::stol(line)), SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    for (const std::string& dir : dirs_) rmdir(dir.c_str());
  }
  ScopedCgroupParent(const ScopedCgroupParent&) = delete;
  ScopedCgroupParent& operator=(const ScopedCgroupParent&) = delete;

  // The value for sandbox.cgroup_parent.
  const std::string& name() const { return name_; }
  bool usable() const { return !dirs_.empty(); }
  // {own cgroup}/{name} in every hierarchy packvisor uses (v1: memory, pids, cpu, cpuacct,
  // freezer, cpu and cpuacct once when they are one hierarchy; v2: one).
  const std::vector<std::string>& Dirs() const { return dirs_; }

  // Every cgroup directory below the parent, in every hierarchy (absolute paths).
  std::vector<std::string> Children() const {
    std::vector<std::string> children;
    for (const std::string& dir : dirs_) {
      DIR* d = opendir(dir.c_str());
      if (d == nullptr) continue;
      while (struct dirent* entry = readdir(d)) {
        std::string name = entry->d_name;
        if (entry->d_type == DT_DIR && name != "." && name != "..") {
          children.push_back(dir + "/" + name);
        }
      }
      closedir(d);
    }
    std::sort(children.begin(), children.end());
    return children;
  }

  // The pids listed in the cgroup.procs of every child (a process appears once per hierarchy).
  std::vector<pid_t> Members() const {
    std::vector<pid_t> pids;
    for (const std::string& child : Children()) {
      for (const std::string& line : Lines(ReadFileOrEmpty(child + "/cgroup.procs"))) {
        pids.push_back(static_cast<pid_t>(std::stol(line)));
      }
    }
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    return pids;
  }

 private:
  std::string name_;
  std::vector<std::string> dirs_;
};

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += "  " + line + "\n";
  return text;
}

}  // namespace packvisor::testing
