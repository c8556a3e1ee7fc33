// Runs the real packvisor binary for integration tests and captures what it did.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace packvisor::testing {

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string stdout_text;
  std::string stderr_text;
  nlohmann::json Json() const;  // parses stdout (for --json runs); throws on bad JSON
};

// Runs `packvisor args...` (the binary built with the tests, or $PACKVISOR_UNDER_TEST), feeding
// stdin_data. When $PACKVISOR_TEST_CONFIG is set and `args` has no --config, `--config FILE` is
// put first (SpawnPackvisor does the same). `extra_env` ("NAME=value" entries) is added to the
// test process's environment for this run only.
CommandResult RunPackvisor(const std::vector<std::string>& args, const std::string& stdin_data = {},
                           const std::vector<std::string>& extra_env = {});

// Runs `/bin/sh -c command` (the test's own tooling); stdout captured, stderr to the test's own.
CommandResult RunShell(const std::string& command);

// `packvisor exec OPTIONS... -- COMMAND...`.
CommandResult RunExec(const std::vector<std::string>& options,
                      const std::vector<std::string>& command);

// Starts `packvisor args...` in the background with stdin, stdout and stderr on /dev/null.
// Returns its pid (the caller waits for it).
pid_t SpawnPackvisor(const std::vector<std::string>& args);

// Every TempDir is /tmp/<kTestScratchName><random>: "nothing left behind" checks skip these, which
// tests running in parallel create, chown and mount into.
inline constexpr char kTestScratchName[] = "packvisor-test-";

// A directory under /tmp, mode 0755, removed (with everything in it) at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes a file (creating parent directories), with the given mode.
  void Write(const std::string& relative, const std::string& content, int mode = 0644) const;
  // Changes the owner of the directory itself (e.g. to the sandbox's host id for an env dir).
  void Chown(uid_t uid, gid_t gid) const;
  std::string Path(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

// `text` as one word for /bin/sh: in single quotes, each ' written as '\''.
inline std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// $PACKVISOR_UNDER_TEST when set (an installed packvisor), else the binary built with the tests.
std::string PackvisorBinary();
std::string SourceDir();
// $PACKVISOR_TEST_CONFIG when set (the operator's configuration for the installed suite).
std::optional<std::string> TestConfigFromEnvironment();

// A string no other test (or run) uses: for process markers and file names.
std::string UniqueMarker(const std::string& prefix);

// Host pids (other than this process) whose /proc/<pid>/cmdline contains `marker`.
std::vector<pid_t> ProcessesWithMarker(const std::string& marker);

// Polls `condition` every 10 ms until it holds (true) or `timeout_ms` has passed (false).
bool WaitUntil(const std::function<bool()>& condition, int timeout_ms);

// Calls `list` until it returns no pids or `timeout_ms` has passed; returns its last answer.
std::vector<pid_t> WaitForNone(const std::function<std::vector<pid_t>()>& list, int timeout_ms);

// Waits up to `timeout_ms` for ProcessesWithMarker(marker) to become empty; returns what is left.
std::vector<pid_t> WaitForNoProcessesWithMarker(const std::string& marker, int timeout_ms);

// Waits up to `timeout_ms` for `path` to exist.
bool WaitForPath(const std::string& path, int timeout_ms);

// The whole file, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// The host's mount table (/proc/self/mountinfo lines) without the mounts below test scratch
// directories (TempDir): tests running in parallel mount and unmount pack disks there, which a
// "nothing left mounted" check must not mistake for a leak of its own.
std::vector<std::string> HostMountsOutsideTestScratch();

// A canonical description of a directory tree (paths, types, modes, owners, sizes, contents,
// symlink targets, mtimes): equal strings mean an unchanged tree.
std::string TreeFingerprint(const std::string& root);

// Names of the entries of `dir` whose name contains `needle`.
std::vector<std::string> EntriesContaining(const std::string& dir, const std::string& needle);

// Lines of `text` (without the newlines; no trailing empty line).
std::vector<std::string> Lines(const std::string& text);

}  // namespace packvisor::testing
