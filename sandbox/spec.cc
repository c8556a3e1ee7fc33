#include "sandbox/spec.h"

#include <sys/stat.h>

#include <algorithm>

namespace packvisor::sandbox {
namespace {

bool IsNormalizedAbsolute(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  if (path.find("//") != std::string::npos) return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Result<void> CheckHostPath(const std::string& what, const std::string& path, bool must_be_dir) {
  if (!IsNormalizedAbsolute(path)) {
    return Failure("invalid " + what, path, "must be an absolute path without '.', '..' or '//'");
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return ErrnoError("invalid " + what, path);
  if (S_ISLNK(st.st_mode)) return Failure("invalid " + what, path, "is a symbolic link");
  if (must_be_dir && !S_ISDIR(st.st_mode))
    return Failure("invalid " + what, path, "not a directory");
  return Ok{};
}

}  // namespace

std::string SandboxPath(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

Result<void> SandboxSpec::Validate() const {
  if (argv.empty() || argv[0].empty()) return Failure("invalid command", "", "argv is empty");
  for (const std::string& arg : argv) {
    if (arg.find('\0') != std::string::npos) return Failure("invalid command", "", "NUL in argv");
  }
  for (const std::string& entry : env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || entry.find('\0') != std::string::npos) {
      return Failure("invalid environment entry", entry.substr(0, entry.find('=')),
                     "expected NAME=value");
    }
  }
  if (!pack_dir.empty()) PV_TRY(CheckHostPath("pack dir", pack_dir, true));
  if (!env_dir.empty()) PV_TRY(CheckHostPath("env dir", env_dir, true));
  for (const std::string& bind : extra_ro_binds) {
    PV_TRY(CheckHostPath("extra read-only bind", bind, false));
    static constexpr const char* kReserved[] = {"/", "/pack", "/env", "/tmp", "/proc", "/dev"};
    for (const char* reserved : kReserved) {
      std::string r = reserved;
      if (bind == r || (r != "/" && bind.rfind(r + "/", 0) == 0)) {
        return Failure("invalid extra read-only bind", bind, "overlaps a sandbox mount point");
      }
    }
  }
  for (const SandboxFile& file : files) {
    std::string name = file.path.rfind("/tmp/", 0) == 0 ? file.path.substr(5) : std::string();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      return Failure("invalid sandbox file", file.path, "must be /tmp/<name>");
    }
    if ((file.mode & ~0777u) != 0) return Failure("invalid sandbox file", file.path, "bad mode");
  }
  if (ids.host_uid == 0 || ids.host_gid == 0) {
    return Failure("invalid id mapping", "", "host uid/gid 0 would make the sandbox root");
  }
  if (ids.inside_uid == 0 || ids.inside_gid == 0) {
    return Failure("invalid id mapping", "", "inside uid/gid must not be 0");
  }
  if (timeout <= std::chrono::milliseconds::zero()) {
    return Failure("invalid timeout", std::to_string(timeout.count()) + "ms", "must be positive");
  }
  if (kill_grace < std::chrono::milliseconds::zero()) {
    return Failure("invalid kill grace", std::to_string(kill_grace.count()) + "ms",
                   "must not be negative");
  }
  if (limits.nofile < 3 || limits.nproc < 1 || limits.tmp_size_bytes < 4096) {
    return Failure("invalid resource limits", "", "nofile >= 3, nproc >= 1, tmp size >= 4 KiB");
  }
  if (hostname.empty() || hostname.size() > 64) {
    return Failure("invalid hostname", hostname, "1 to 64 characters");
  }
  if (!IsNormalizedAbsolute(working_dir)) {
    return Failure("invalid working directory", working_dir, "must be absolute and normalized");
  }
  return Ok{};
}

}  // namespace packvisor::sandbox
