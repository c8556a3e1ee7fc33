// CleanUpAfterCrash (see the header and docs/crash-cleanup.md).
#include "supervisor/executions/crash_cleanup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <set>

#include "envs/environment.h"
#include "envs/safe_fs.h"
#include "sandbox/cgroup.h"
#include "supervisor/executions/environments.h"

namespace packvisor {
namespace {

constexpr char kTempMarker[] = ".tmp-";
constexpr size_t kTempSuffixLength = 16;  // envs::RandomSuffix(): 16 hex digits

// ".{name}.tmp-{16 hex}": envs::WriteFileAtomicAt's temporary file.
bool IsAtomicWriteTemp(const std::string& name) {
  size_t marker = name.rfind(kTempMarker);
  if (name.empty() || name[0] != '.' || marker == std::string::npos || marker == 0) return false;
  std::string suffix = name.substr(marker + sizeof(kTempMarker) - 1);
  return suffix.size() == kTempSuffixLength &&
         std::all_of(suffix.begin(), suffix.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsEnvironmentTree(const std::string& name) {
  return name.rfind(".staging-", 0) == 0 || name.rfind(".old-", 0) == 0;
}

// Removes the stale temporary files directly in `dir_fd`.
void RemoveStaleTemps(int dir_fd, const std::string& dir, CrashCleanup& cleanup) {
  auto names = envs::DirectoryEntriesAt(dir_fd);
  if (!names) return;
  time_t cutoff = time(nullptr) - kStaleTempFileAgeSeconds;
  for (const std::string& name : *names) {
    if (!IsAtomicWriteTemp(name)) continue;
    struct stat st {};
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_mtime > cutoff) {
      continue;
    }
    if (unlinkat(dir_fd, name.c_str(), 0) == 0) {
      cleanup.removed.push_back("temporary file " + dir + "/" + name);
    } else if (errno != ENOENT) {
      cleanup.kept.push_back("temporary file " + dir + "/" + name + ": " + std::strerror(errno));
    }
  }
}

// The staging and replaced trees under every pack directory of runtime_envs_dir, as
// "{pack}/{entry}".
std::set<std::string> EnvironmentTrees(const std::string& runtime_envs_dir) {
  std::set<std::string> trees;
  auto root = envs::OpenDirPath(runtime_envs_dir, false);
  if (!root) return trees;
  auto packs = envs::DirectoryEntriesAt(root->get());
  if (!packs) return trees;
  for (const std::string& pack : *packs) {
    if (pack.empty() || pack[0] == '.') continue;
    auto pack_fd = envs::OpenDirBeneath(root->get(), pack);
    if (!pack_fd) continue;
    auto entries = envs::DirectoryEntriesAt(pack_fd->get());
    if (!entries) continue;
    for (const std::string& entry : *entries) {
      if (IsEnvironmentTree(entry)) trees.insert(pack + "/" + entry);
    }
  }
  return trees;
}

}  // namespace

Result<CrashCleanup> CleanUpAfterCrash(const Config& config) {
  CrashCleanup cleanup;

  // 1. Execution cgroups of dead supervisors, in every hierarchy. Their sandboxes died with the
  //    supervisor (PR_SET_PDEATHSIG on the sandbox's init, whose death ends its pid namespace);
  //    anything still inside is killed first.
  std::vector<sandbox::StaleCgroup> cgroups;
  sandbox::RemoveStaleCgroups(sandbox::CgroupLayout::Probe(), config.sandbox.cgroup_parent,
                              &cgroups);
  for (const sandbox::StaleCgroup& cgroup : cgroups) {
    std::string line = "execution cgroup " + cgroup.path;
    if (cgroup.processes_killed > 0) {
      line += " (" + std::to_string(cgroup.processes_killed) + " processes killed)";
    }
    (cgroup.removed ? cleanup.removed : cleanup.kept).push_back(line);
  }

  // 2. Staging trees of environment builds and replaced trees no execution holds any more (each
  //    is checked against its lock: a live builder's or execution's stays).
  std::set<std::string> before = EnvironmentTrees(config.runtime_envs_dir);
  auto cleaned = envs::EnvironmentManager(EnvironmentSettingsFrom(config)).CleanUpStale();
  std::set<std::string> after = EnvironmentTrees(config.runtime_envs_dir);
  for (const std::string& tree : before) {
    std::string path = config.runtime_envs_dir + "/" + tree;
    bool staging = tree.find("/.staging-") != std::string::npos;
    std::string what = staging ? "environment staging tree " : "replaced environment tree ";
    if (!after.count(tree)) {
      cleanup.removed.push_back(what + path);
    } else if (!cleaned) {
      cleanup.kept.push_back(what + path + ": " + cleaned.error().message());
    }
  }

  // 3. Temporary files of atomic writes: environment markers and failure records in each pack's
  //    directory, the id allocations in state_dir.
  if (auto state = envs::OpenDirPath(config.state_dir, false)) {
    RemoveStaleTemps(state->get(), config.state_dir, cleanup);
  }
  if (auto root = envs::OpenDirPath(config.runtime_envs_dir, false)) {
    if (auto packs = envs::DirectoryEntriesAt(root->get())) {
      for (const std::string& pack : *packs) {
        if (pack.empty() || pack[0] == '.') continue;
        auto pack_fd = envs::OpenDirBeneath(root->get(), pack);
        if (pack_fd) {
          RemoveStaleTemps(pack_fd->get(), config.runtime_envs_dir + "/" + pack, cleanup);
        }
      }
    }
  }
  return cleanup;
}

}  // namespace packvisor
