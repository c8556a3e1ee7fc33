#include "supervisor/packs/pack_checks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>
#include <string_view>

#include "envs/safe_fs.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor {
namespace {

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

size_t SkipSpaces(std::string_view text, size_t i) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return i;
}

// An identifier at `i`; empty when there is none.
std::string_view IdentAt(std::string_view text, size_t i) {
  if (i >= text.size() || !IsIdentStart(text[i])) return {};
  size_t end = i + 1;
  while (end < text.size() && IsIdentChar(text[end])) ++end;
  return text.substr(i, end - i);
}

// A quoted identifier at `i` ("x" or 'x'); empty when there is none.
std::string_view QuotedIdentAt(std::string_view text, size_t i) {
  if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return {};
  std::string_view name = IdentAt(text, i + 1);
  size_t close = i + 1 + name.size();
  if (name.empty() || close >= text.size() || text[close] != text[i]) return {};
  return name;
}

// Every position where one of `roots` stands as a whole word (not after '.' or an identifier
// character), with the position just after it.
template <typename Visit>
void ForEachRoot(std::string_view text, const std::vector<std::string_view>& roots, Visit visit) {
  for (std::string_view root : roots) {
    for (size_t at = text.find(root); at != std::string_view::npos; at = text.find(root, at + 1)) {
      if (at > 0 && (IsIdentChar(text[at - 1]) || text[at - 1] == '.')) continue;
      size_t after = at + root.size();
      if (after < text.size() && IsIdentChar(text[after])) continue;
      visit(at, after);
    }
  }
}

// Opens the regular file `path` (absolute) without following any symlink on the way, so never
// anything outside the directories it names. nullopt when that fails.
std::optional<unique_fd> OpenScript(const std::string& path) {
  std::string::size_type slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  Result<unique_fd> dir = envs::OpenDirPath(path.substr(0, slash), false);
  if (!dir.ok()) return std::nullopt;
  unique_fd fd(::openat(dir->get(), path.c_str() + slash + 1,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return fd;
}

std::string ReadPrefix(int fd, size_t max_bytes) {
  std::string text;
  char buffer[16384];
  while (text.size() < max_bytes) {
    ssize_t n = ::read(fd, buffer, std::min(sizeof buffer, max_bytes - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace

std::vector<ParameterUse> ScanParameterUses(const std::string& runtime, const std::string& text) {
  std::vector<std::pair<size_t, std::string>> found;  // (position, name)
  std::string_view view = text;
  if (runtime == "python") {
    // params.get("x") / params["x"]
    ForEachRoot(view, {"params", "parameters", "inputs", "args"}, [&](size_t at, size_t after) {
      size_t i = SkipSpaces(view, after);
      if (view.substr(i, 5) == ".get(") {
        i = SkipSpaces(view, i + 5);
      } else if (i < view.size() && view[i] == '[') {
        i = SkipSpaces(view, i + 1);
      } else {
        return;
      }
      std::string_view name = QuotedIdentAt(view, i);
      if (!name.empty()) found.emplace_back(at, std::string(name));
    });
  } else if (runtime == "shell") {
    // $PARAM_X / ${PARAM_X}
    for (size_t at = view.find("PARAM_"); at != std::string_view::npos;
         at = view.find("PARAM_", at + 1)) {
      bool dollar = (at >= 1 && view[at - 1] == '$') ||
                    (at >= 2 && view[at - 1] == '{' && view[at - 2] == '$');
      if (!dollar) continue;
      size_t end = at + 6;
      while (end < view.size() && IsIdentChar(view[end])) ++end;
      if (end > at + 6) found.emplace_back(at, std::string(view.substr(at + 6, end - at - 6)));
    }
  } else if (runtime == "node") {
    // args.x / args["x"], not a method call (args.map(...)) and not args.length
    ForEachRoot(view, {"args", "params"}, [&](size_t at, size_t after) {
      if (after < view.size() && view[after] == '.') {
        std::string_view name = IdentAt(view, after + 1);
        size_t next = SkipSpaces(view, after + 1 + name.size());
        if (name.empty() || name == "length" || (next < view.size() && view[next] == '(')) return;
        found.emplace_back(at, std::string(name));
      } else if (after < view.size() && view[after] == '[') {
        std::string_view name = QuotedIdentAt(view, SkipSpaces(view, after + 1));
        if (!name.empty()) found.emplace_back(at, std::string(name));
      }
    });
  }
  std::sort(found.begin(), found.end());
  // Lines counted in one pass over the text (uses are in position order).
  std::vector<ParameterUse> uses;
  size_t counted = 0;
  int line = 1;
  for (const auto& [position, name] : found) {
    line += static_cast<int>(std::count(view.begin() + counted, view.begin() + position, '\n'));
    counted = position;
    uses.push_back({name, line});
  }
  return uses;
}

std::vector<Diagnostic> FindUndeclaredParameters(const Action& action) {
  std::vector<Diagnostic> warnings;
  if (action.entry_path.empty()) return warnings;
  std::optional<unique_fd> fd = OpenScript(action.entry_path);
  if (!fd) return warnings;
  std::string text = ReadPrefix(fd->get(), kMaxScriptScanBytes);
  bool shell = action.runtime == "shell";
  std::set<std::string> declared;
  for (const auto& [name, spec] : action.parameters) declared.insert(shell ? Upper(name) : name);
  std::set<std::string> reported;
  std::string yaml = action.source.substr(action.source.rfind('/') + 1);
  for (const ParameterUse& use : ScanParameterUses(action.runtime, text)) {
    if (declared.count(use.name) || !reported.insert(use.name).second) continue;
    std::string what = shell
                           ? "$PARAM_" + use.name + " (parameter \"" + use.name + "\" in any case)"
                           : "parameter \"" + use.name + "\"";
    warnings.push_back(Diagnostic{Severity::kWarning, action.entry_path, use.line, "",
                                  "reads " + what + ", which " + yaml + " does not declare"});
  }
  return warnings;
}

std::optional<Diagnostic> CheckSandboxCanRead(const Pack& pack, const Action& action,
                                              const SandboxIdRange& ids) {
  const std::string& entry = action.entry_path;
  if (entry.empty() || entry.compare(0, pack.dir.size(), pack.dir) != 0 ||
      entry.size() <= pack.dir.size() + 1 || entry[pack.dir.size()] != '/') {
    return std::nullopt;
  }
  auto in_range = [&](uid_t id) { return id >= ids.first && id <= ids.last; };
  // The bits that may apply to the sandbox user: "other", and owner/group when they could be it.
  auto allowed = [&](const struct stat& st, mode_t other, mode_t group, mode_t owner) {
    return (st.st_mode & other) != 0 || (in_range(st.st_uid) && (st.st_mode & owner) != 0) ||
           (in_range(st.st_gid) && (st.st_mode & group) != 0);
  };
  auto problem = [&](const std::string& path, const struct stat& st, const std::string& need) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Diagnostic{Severity::kError, action.source, action.entry_point_line, "entry_point",
                      "the sandbox user cannot read " + entry + ": " + path + " (mode " + mode +
                          ", owner " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) +
                          ") lacks " + need +
                          " for others (actions run as an unprivileged id that is neither its "
                          "owner nor its group)"};
  };
  // From the pack's root down, one component at a time, never following a symlink.
  std::string path = pack.dir;
  std::string rest = entry.substr(pack.dir.size() + 1);
  Result<unique_fd> dir = envs::OpenDirPath(pack.dir, false);
  if (!dir.ok()) return std::nullopt;
  for (;;) {
    struct stat st {};
    if (::fstat(dir->get(), &st) != 0) return std::nullopt;
    if (!allowed(st, S_IXOTH, S_IXGRP, S_IXUSR)) return problem(path, st, "the search bit (x)");
    std::string::size_type slash = rest.find('/');
    std::string part = rest.substr(0, slash);
    path += "/" + part;
    if (slash == std::string::npos) {
      if (::fstatat(dir->get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
      if (!allowed(st, S_IROTH, S_IRGRP, S_IRUSR)) return problem(path, st, "the read bit (r)");
      return std::nullopt;
    }
    rest = rest.substr(slash + 1);
    unique_fd next(
        ::openat(dir->get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return std::nullopt;
    *dir = std::move(next);
  }
}

}  // namespace packvisor
