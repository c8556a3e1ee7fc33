#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "envs/safe_fs.h"
#include "supervisor/config/builtin_runtimes.h"

namespace packvisor {

namespace {

constexpr size_t kMaxDefinitionBytes = 1 << 20;

// Owned by root or by us, and writable by no one else: a definition names the interpreter root
// starts every sandbox with.
Result<void> CheckTrusted(const struct stat& st, const std::string& path) {
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return Failure("load runtime definitions", path,
                   "owned by uid " + std::to_string(st.st_uid) +
                       ", not by root: root never loads a definition someone else could write");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Failure("load runtime definitions", path,
                   "writable by group or others (chmod go-w): root never loads a definition "
                   "someone else could write");
  }
  return Ok{};
}

void Overlay(std::vector<envs::RuntimeDefinition>* definitions,
             std::vector<envs::RuntimeDefinition> layer) {
  for (envs::RuntimeDefinition& definition : layer) {
    auto same = std::find_if(definitions->begin(), definitions->end(),
                             [&](const auto& d) { return d.name == definition.name; });
    if (same != definitions->end()) {
      *same = std::move(definition);
    } else {
      definitions->push_back(std::move(definition));
    }
  }
}

}  // namespace

std::string InstalledRuntimesDir() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return {};
  std::string exe(buffer, static_cast<size_t>(n));
  size_t bin = exe.rfind('/');
  if (bin == std::string::npos || bin == 0) return {};
  size_t prefix_end = exe.rfind('/', bin - 1);
  if (prefix_end == std::string::npos) return {};
  return exe.substr(0, prefix_end) + "/share/packvisor/runtimes";
}

Result<std::vector<envs::RuntimeDefinition>> LoadTrustedRuntimeDirectory(const std::string& dir) {
  auto dir_fd = envs::OpenDirPath(dir, false);
  if (!dir_fd) return dir_fd.error();
  struct stat dir_st {};
  if (fstat(dir_fd->get(), &dir_st) != 0) return ErrnoError("stat", dir);
  if (auto trusted = CheckTrusted(dir_st, dir); !trusted) return trusted.error();
  auto entries = envs::DirectoryEntriesAt(dir_fd->get());
  if (!entries) return entries.error();
  std::vector<std::string> names;
  for (const std::string& name : *entries) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".toml") == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<envs::RuntimeDefinition> definitions;
  for (const std::string& name : names) {
    std::string path = dir + "/" + name;
    unique_fd fd(openat(dir_fd->get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) return ErrnoError("open", path);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return ErrnoError("stat", path);
    if (!S_ISREG(st.st_mode)) return Failure("read", path, "not a regular file");
    if (auto trusted = CheckTrusted(st, path); !trusted) return trusted.error();
    if (static_cast<size_t>(st.st_size) > kMaxDefinitionBytes) {
      return Failure("read", path, "larger than " + std::to_string(kMaxDefinitionBytes) + " bytes");
    }
    std::string text;
    char buffer[16384];
    for (;;) {
      ssize_t n = read(fd.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read", path);
      if (n == 0) break;
      text.append(buffer, static_cast<size_t>(n));
      if (text.size() > kMaxDefinitionBytes) {
        return Failure("read", path,
                       "larger than " + std::to_string(kMaxDefinitionBytes) + " bytes");
      }
    }
    auto definition = envs::ParseRuntimeDefinition(text, path);
    if (!definition) return definition.error();
    definitions.push_back(std::move(*definition));
  }
  return definitions;
}

Result<envs::RuntimeRegistry> LoadRuntimeRegistry(const Config& config) {
  std::vector<envs::RuntimeDefinition> definitions;
  for (const BuiltinRuntimeFile& file : BuiltinRuntimeFiles()) {
    auto definition = envs::ParseRuntimeDefinition(file.text, file.source);
    if (!definition) return definition.error();
    definitions.push_back(std::move(*definition));
  }
  // The installed copy: absent in a build tree or for a binary copied alone (built-ins then).
  if (std::string installed = InstalledRuntimesDir(); !installed.empty()) {
    struct stat st {};
    if (lstat(installed.c_str(), &st) == 0) {
      auto layer = LoadTrustedRuntimeDirectory(installed);
      if (!layer) return layer.error();
      Overlay(&definitions, std::move(*layer));
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return ErrnoError("stat", installed);
    }
  }
  if (config.runtimes_dir) {
    auto layer = LoadTrustedRuntimeDirectory(*config.runtimes_dir);
    if (!layer) return layer.error();
    Overlay(&definitions, std::move(*layer));
  }
  return envs::RuntimeRegistry::FromDefinitions(std::move(definitions));
}

}  // namespace packvisor
