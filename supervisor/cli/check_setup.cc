// `packvisor check`, the parts about this supervisor's own set-up rather than the kernel: its
// capabilities and the directories its configuration names.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "envs/pack_disk.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/cli/check.h"

namespace packvisor {

std::optional<uint64_t> ParseCapabilityMask(std::string_view status_text, std::string_view field) {
  size_t at = 0;
  while (at < status_text.size()) {
    size_t end = status_text.find('\n', at);
    if (end == std::string_view::npos) end = status_text.size();
    std::string_view line = status_text.substr(at, end - at);
    at = end + 1;
    if (line.size() <= field.size() || line.substr(0, field.size()) != field ||
        line[field.size()] != ':') {
      continue;
    }
    std::string_view value = line.substr(field.size() + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    if (value.empty() || value.size() > 16) return std::nullopt;
    uint64_t mask = 0;
    for (char c : value) {
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) return std::nullopt;
      mask = mask << 4 | static_cast<uint64_t>(digit);
    }
    return mask;
  }
  return std::nullopt;
}

std::optional<CapabilitySets> ReadOwnCapabilities() {
  auto status = os::ReadFile("/proc/self/status");
  if (!status) return std::nullopt;
  auto effective = ParseCapabilityMask(*status, "CapEff");
  auto bounding = ParseCapabilityMask(*status, "CapBnd");
  if (!effective || !bounding) return std::nullopt;
  return CapabilitySets{*effective, *bounding};
}

const std::vector<NeededCapability>& NeededCapabilities() {
  // Found by dropping each capability in turn (capsh --drop) around exec, run, env setup and
  // env rm; docs/launch-sequence.md lists them with the reason.
  static const std::vector<NeededCapability> needed = {
      {CAP_CHOWN, "CAP_CHOWN", "give a pack's environments to the pack's host id"},
      {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE",
       "replace and remove environment trees the pack's host id owns"},
      {CAP_SETGID, "CAP_SETGID", "own a sandbox's user namespace as the pack's host gid"},
      {CAP_SETUID, "CAP_SETUID", "own a sandbox's user namespace as the pack's host uid"},
      {CAP_SYS_ADMIN, "CAP_SYS_ADMIN",
       "write a sandbox's id maps and mount each pack's environment disk"},
  };
  return needed;
}

namespace {

bool Has(uint64_t mask, int number) { return (mask >> number & 1) != 0; }

}  // namespace

std::string MissingCapabilityNames(const CapabilitySets& sets, const std::vector<int>& numbers) {
  std::string names;
  for (int number : numbers) {
    if (Has(sets.effective, number)) continue;
    const char* name = nullptr;
    for (const NeededCapability& cap : NeededCapabilities()) {
      if (cap.number == number) name = cap.name;
    }
    std::string text = name ? name : "capability " + std::to_string(number);
    names += (names.empty() ? "" : ", ") + text;
  }
  return names;
}

std::vector<CheckRow> JudgeCapabilities(const CapabilitySets& sets) {
  std::vector<CheckRow> rows;
  std::string present;
  for (const NeededCapability& cap : NeededCapabilities()) {
    if (Has(sets.effective, cap.number)) {
      present += (present.empty() ? "" : " ") + std::string(cap.name);
      continue;
    }
    std::string meaning = "not in packvisor's effective capabilities";
    if (!Has(sets.bounding, cap.number)) {
      meaning +=
          " nor its bounding set (dropped by the container runtime or capsh; a process cannot "
          "get it back: start packvisor with it, e.g. docker run --cap-add " +
          std::string(cap.name + 4) + ")";
    }
    meaning += "; needed to " + std::string(cap.used_for);
    rows.push_back({cap.name, CheckStatus::kMissing, meaning, true});
  }
  if (rows.empty()) {
    rows.push_back({"capabilities", CheckStatus::kOk,
                    "packvisor has every capability it uses: " + present +
                        " (and needs neither CAP_SYS_PTRACE nor CAP_SYS_NICE)",
                    false});
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Configured directories.

DirectoryFacts InspectDirectory(const std::string& path, DirectoryUse use) {
  DirectoryFacts facts;
  facts.path = path;
  std::vector<std::string> prefixes = {"/"};
  size_t start = 1;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) prefixes.push_back(path.substr(0, end));
    start = end + 1;
  }
  for (const std::string& prefix : prefixes) {
    PathComponent component;
    component.path = prefix;
    struct stat st {};
    // Root opens the directories it writes without following symlinks; those it reads it opens
    // like anyone else.
    int rc =
        use == DirectoryUse::kRootWrites ? lstat(prefix.c_str(), &st) : stat(prefix.c_str(), &st);
    if (rc != 0) {
      facts.components.push_back(component);
      break;
    }
    component.exists = true;
    component.is_directory = S_ISDIR(st.st_mode);
    component.is_symlink = S_ISLNK(st.st_mode);
    component.owner = st.st_uid;
    component.group = st.st_gid;
    component.mode = st.st_mode & 07777;
    facts.components.push_back(component);
    if (!component.is_directory) break;
  }
  // The directory itself, or where it would be created.
  std::string target = path;
  if (!facts.components.back().exists) {
    target = facts.components.size() >= 2 ? facts.components[facts.components.size() - 2].path
                                          : std::string("/");
  }
  int mode = use == DirectoryUse::kRootWrites ? W_OK | X_OK : R_OK | X_OK;
  if (facts.components.back().is_directory || !facts.components.back().exists) {
    if (faccessat(AT_FDCWD, target.c_str(), mode, AT_EACCESS) != 0) facts.access_errno = errno;
  }
  return facts;
}

namespace {

std::string Octal(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Who other than root may create, rename or remove entries in the directory; "" when nobody.
std::string OtherWriters(const PathComponent& dir) {
  if (dir.owner != 0) return "its owner uid " + std::to_string(dir.owner);
  if ((dir.mode & S_IWGRP) && dir.group != 0) {
    return "group gid " + std::to_string(dir.group) + " (mode " + Octal(dir.mode) + ")";
  }
  if (dir.mode & S_IWOTH) return "every user (mode " + Octal(dir.mode) + ")";
  return "";
}

}  // namespace

CheckRow JudgeDirectory(const std::string& key, DirectoryUse use, const DirectoryFacts& facts) {
  CheckRow row{key, CheckStatus::kOk, "", true};
  const bool writes = use == DirectoryUse::kRootWrites;
  const PathComponent& last = facts.components.back();
  const std::string& path = facts.path.empty() ? last.path : facts.path;
  auto fail = [&](const std::string& meaning) {
    row.status = CheckStatus::kMissing;
    row.meaning = meaning;
    return row;
  };
  for (size_t i = 0; i < facts.components.size(); ++i) {
    const PathComponent& component = facts.components[i];
    bool is_last = i + 1 == facts.components.size();
    if (!component.exists) break;
    if (component.is_symlink) {
      return fail(component.path + " is a symbolic link: packvisor opens " + key +
                  " without following symlinks (configure the real path)");
    }
    if (!component.is_directory) return fail(component.path + " is not a directory");
    if (!writes || (is_last && component.exists)) continue;
    // An ancestor of a directory root writes: nobody else may swap what lies beneath it, except
    // in a sticky directory (like /tmp), where only the entry's owner (checked next) can.
    std::string writers = OtherWriters(component);
    bool sticky = (component.mode & S_ISVTX) && component.owner == 0;
    if (!writers.empty() && !sticky) {
      return fail(component.path + " is writable by " + writers + ", who could replace " + key +
                  " with a directory of their own");
    }
  }
  if (!last.exists) {
    std::string parent =
        facts.components.size() >= 2 ? facts.components[facts.components.size() - 2].path : "/";
    if (!writes) {
      if (key == "packs_base_dir") {
        row.status = CheckStatus::kWarn;
        row.required = false;
        row.meaning = path + " does not exist: there is no pack to run (exec still works)";
        return row;
      }
      return fail(path + " does not exist");
    }
    if (facts.access_errno != 0) {
      return fail(path + " does not exist and cannot be created in " + parent + ": " +
                  std::strerror(facts.access_errno));
    }
    row.meaning = path + " does not exist yet" +
                  (last.path == path ? "" : " (nor does " + last.path + ")") +
                  "; packvisor creates it (root, 0755) at first use";
    return row;
  }
  std::string writers = OtherWriters(last);
  if (facts.access_errno != 0) {
    return fail(path + " is not " + (writes ? "writable" : "readable") +
                " by packvisor: " + std::strerror(facts.access_errno));
  }
  if (!writers.empty()) {
    if (writes) {
      return fail(path + " is writable by " + writers +
                  ": only root may write there (locks, id allocations, environments)");
    }
    row.status = CheckStatus::kWarn;
    row.required = false;
    row.meaning = path + " is writable by " + writers + ": they can change what packvisor runs";
    return row;
  }
  row.meaning = path + ": owner uid " + std::to_string(last.owner) + ", mode " + Octal(last.mode) +
                (writes ? "; root writes there, nobody else can" : "; readable");
  return row;
}

// Per-pack disks (envs.pack_disk_mb): loop devices and mkfs.ext4. Required when configured, since
// no environment can be made without them then; a warning when turned off.
void ProbePackDisks(const Config& config, const CapabilitySets& caps, std::vector<CheckRow>& rows) {
  CheckRow row{"per-pack env disks", CheckStatus::kOk, "", config.envs.pack_disk_mb != 0};
  if (config.envs.pack_disk_mb == 0) {
    row.status = CheckStatus::kWarn;
    row.meaning =
        "envs.pack_disk_mb = 0: no quota on /env; one pack can fill the filesystem "
        "of runtime_envs_dir for every other pack and the host";
    rows.push_back(std::move(row));
    return;
  }
  unique_fd control(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  int control_errno = errno;
  bool mkfs = envs::FindMkfsExt4() != nullptr;
  if (!control) {
    row.status = CheckStatus::kMissing;
    row.meaning = std::string("/dev/loop-control: ") + std::strerror(control_errno) +
                  " (each pack's environments need a loop-mounted disk; or set "
                  "envs.pack_disk_mb = 0)";
  } else if (std::string missing = MissingCapabilityNames(caps, {CAP_SYS_ADMIN});
             !missing.empty()) {
    row.status = CheckStatus::kMissing;
    row.meaning = "packvisor lacks " + missing +
                  ", which attaching a loop device and mounting a pack's disk need (or set "
                  "envs.pack_disk_mb = 0)";
  } else if (!mkfs) {
    row.status = CheckStatus::kMissing;
    row.meaning = "mkfs.ext4 not found (install e2fsprogs; or set envs.pack_disk_mb = 0)";
  } else if (auto loop = envs::ProbeFreeLoopDevice(); !loop) {
    // A container: /dev has no loop nodes (packvisor makes them) and the device cgroup allows
    // only the devices the runtime added.
    row.status = CheckStatus::kMissing;
    const Error& error = loop.error();
    if (error.operation == "mknod" && error.err == EPERM) {
      row.meaning = error.message() +
                    ": packvisor lacks CAP_MKNOD, which making a loop device node needs where /dev "
                    "has none (a container: --cap-add MKNOD; or set envs.pack_disk_mb = 0)";
    } else if (error.operation == "open" && error.err == EPERM) {
      row.meaning = error.message() +
                    ": the device cgroup denies loop devices (a container: --device-cgroup-rule "
                    "'b 7:* rwm'; or set envs.pack_disk_mb = 0)";
    } else {
      row.meaning = error.message() + " (or set envs.pack_disk_mb = 0)";
    }
  } else {
    row.meaning = std::to_string(config.envs.pack_disk_mb) +
                  " MiB ext4 per pack (loop device): /env and builds stop at it";
  }
  rows.push_back(std::move(row));
}

std::vector<CheckRow> CheckConfiguredDirectories(const Config& config) {
  std::vector<std::pair<std::string, std::string>> read = {
      {"packs_base_dir", config.packs_base_dir}};
  if (config.runtimes_dir) read.emplace_back("runtimes_dir", *config.runtimes_dir);
  const std::pair<std::string, std::string> written[] = {
      {"runtime_envs_dir", config.runtime_envs_dir}, {"state_dir", config.state_dir}};
  std::vector<CheckRow> rows;
  for (const auto& [key, path] : read) {
    rows.push_back(
        JudgeDirectory(key, DirectoryUse::kRead, InspectDirectory(path, DirectoryUse::kRead)));
  }
  for (const auto& [key, path] : written) {
    rows.push_back(JudgeDirectory(key, DirectoryUse::kRootWrites,
                                  InspectDirectory(path, DirectoryUse::kRootWrites)));
  }
  return rows;
}

}  // namespace packvisor
