#include "tests/support/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "sandbox/os/unique_fd.h"

extern char** environ;

namespace packvisor::testing {

std::string PackvisorBinary() {
  // The installed security-test runner points the suite at an installed packvisor.
  const char* under_test = std::getenv("PACKVISOR_UNDER_TEST");
  if (under_test != nullptr && *under_test != '\0') return under_test;
#ifdef PACKVISOR_TEST_HOOKS_BINARY
  // The security suite's pooled run (security-tests/CMakeLists.txt): only the test-hooks binary
  // reads PACKVISOR_TEST_WARM_POOL.
  const char* pooled = std::getenv("PACKVISOR_TEST_WARM_POOL");
  if (pooled != nullptr && std::string(pooled) == "1") return PACKVISOR_TEST_HOOKS_BINARY;
#endif
  return PACKVISOR_BINARY;
}
std::string SourceDir() { return PACKVISOR_SOURCE_DIR; }

std::optional<std::string> TestConfigFromEnvironment() {
  const char* config = std::getenv("PACKVISOR_TEST_CONFIG");
  if (config == nullptr || *config == '\0') return std::nullopt;
  return std::string(config);
}

nlohmann::json CommandResult::Json() const { return nlohmann::json::parse(stdout_text); }

namespace {

std::vector<std::string> EnvironmentWith(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// `packvisor args...`, with `--config $PACKVISOR_TEST_CONFIG` first when that is set and the
// arguments do not name a config of their own. With $PACKVISOR_TEST_VIA_SERVER (a daemon's
// socket, started by the ctest fixture of the daemon-path pass) an `exec` or `run` that names
// no config of its own goes through that daemon: `--server=SOCKET` follows the command word.
std::vector<std::string> CommandLine(const std::vector<std::string>& args) {
  std::vector<std::string> full = {PackvisorBinary()};
  std::optional<std::string> config = TestConfigFromEnvironment();
  bool has_config = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--config" || a.rfind("--config=", 0) == 0;
  });
  if (config && !has_config) {
    full.push_back("--config");
    full.push_back(*config);
  }
  const char* via_server = std::getenv("PACKVISOR_TEST_VIA_SERVER");
  bool routed = false;
  for (const std::string& arg : args) {
    full.push_back(arg);
    if (!routed && !has_config && via_server != nullptr && *via_server != '\0' &&
        (arg == "exec" || arg == "run")) {
      full.push_back(std::string("--server=") + via_server);
      routed = true;
    }
  }
  return full;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

CommandResult RunPackvisor(const std::vector<std::string>& args, const std::string& stdin_data,
                           const std::vector<std::string>& extra_env) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe2 failed");
  }
  unique_fd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  std::vector<std::string> full = CommandLine(args);
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = EnvironmentWith(extra_env);
  std::vector<char*> envp = Pointers(env);
  pid_t pid;
  int rc = posix_spawn(&pid, full[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  in_r.reset();
  out_w.reset();
  err_w.reset();
  signal(SIGPIPE, SIG_IGN);
  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (stdin_data.empty()) in_w.reset();
  CommandResult result;
  while (out_r || err_r) {
    pollfd fds[3];
    int n = 0;
    int iw = -1, io = -1, ie = -1;
    if (in_w) {
      fds[n] = {in_w.get(), POLLOUT, 0};
      iw = n++;
    }
    if (out_r) {
      fds[n] = {out_r.get(), POLLIN, 0};
      io = n++;
    }
    if (err_r) {
      fds[n] = {err_r.get(), POLLIN, 0};
      ie = n++;
    }
    if (poll(fds, n, -1) < 0) continue;
    if (iw >= 0 && fds[iw].revents) {
      ssize_t w = write(in_w.get(), stdin_data.data() + written, stdin_data.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 || written == stdin_data.size()) in_w.reset();
    }
    char buf[65536];
    auto drain = [&](int idx, unique_fd& fd, std::string& sink) {
      if (idx < 0 || !fds[idx].revents) return;
      ssize_t r = read(fd.get(), buf, sizeof(buf));
      if (r > 0)
        sink.append(buf, static_cast<size_t>(r));
      else
        fd.reset();
    };
    drain(io, out_r, result.stdout_text);
    drain(ie, err_r, result.stderr_text);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.stdout_text.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult RunExec(const std::vector<std::string>& options,
                      const std::vector<std::string>& command) {
  std::vector<std::string> args = {"exec"};
  args.insert(args.end(), options.begin(), options.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return RunPackvisor(args);
}

pid_t SpawnPackvisor(const std::vector<std::string>& args) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> full = CommandLine(args);
  std::vector<char*> argv = Pointers(full);
  pid_t pid;
  int rc = posix_spawn(&pid, full[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  return pid;
}

std::string UniqueMarker(const std::string& prefix) {
  unsigned char bytes[8];
  if (getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    throw std::runtime_error("getrandom failed");
  }
  std::string text = prefix + "-" + std::to_string(getpid()) + "-";
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    text += kHex[b >> 4];
    text += kHex[b & 15];
  }
  return text;
}

std::vector<pid_t> ProcessesWithMarker(const std::string& marker) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) continue;
    std::string cmdline = ReadFileOrEmpty("/proc/" + name + "/cmdline");
    if (cmdline.find(marker) != std::string::npos) found.push_back(pid);
  }
  return found;
}

bool WaitUntil(const std::function<bool()>& condition, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::vector<pid_t> WaitForNone(const std::function<std::vector<pid_t>()>& list, int timeout_ms) {
  std::vector<pid_t> left;
  WaitUntil(
      [&] {
        left = list();
        return left.empty();
      },
      timeout_ms);
  return left;
}

std::vector<pid_t> WaitForNoProcessesWithMarker(const std::string& marker, int timeout_ms) {
  return WaitForNone([&] { return ProcessesWithMarker(marker); }, timeout_ms);
}

bool WaitForPath(const std::string& path, int timeout_ms) {
  return WaitUntil([&] { return access(path.c_str(), F_OK) == 0; }, timeout_ms);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string TreeFingerprint(const std::string& root) {
  std::vector<std::string> entries;
  std::error_code ec;
  auto describe = [&](const std::filesystem::path& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return std::string("? ") + path.string();
    std::string line = path.lexically_relative(root).string() +
                       " mode=" + std::to_string(st.st_mode) + " uid=" + std::to_string(st.st_uid) +
                       " gid=" + std::to_string(st.st_gid) + " size=" + std::to_string(st.st_size) +
                       " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." +
                       std::to_string(st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) line += " content=" + ReadFileOrEmpty(path.string());
    if (S_ISLNK(st.st_mode)) line += " target=" + std::filesystem::read_symlink(path, ec).string();
    return line;
  };
  entries.push_back(describe(root));
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    entries.push_back(describe(it->path()));
  }
  std::sort(entries.begin(), entries.end());
  std::string text;
  for (const auto& e : entries) text += e + "\n";
  return text;
}

std::vector<std::string> EntriesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.find(needle) != std::string::npos) found.push_back(name);
  }
  return found;
}

std::vector<std::string> HostMountsOutsideTestScratch() {
  std::vector<std::string> kept;
  for (const std::string& line : Lines(ReadFileOrEmpty("/proc/self/mountinfo"))) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    if (mount_point.rfind(std::string("/tmp/") + kTestScratchName, 0) == 0) continue;
    kept.push_back(line);
  }
  return kept;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void TempDir::Chown(uid_t uid, gid_t gid) const {
  if (chown(path_.c_str(), uid, gid) != 0) throw std::runtime_error("chown " + path_ + " failed");
}

TempDir::TempDir() {
  std::string pattern = std::string("/tmp/") + kTestScratchName + "XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  // Pack disks (envs/pack_disk.h) mounted below this directory: detach them first (their loop
  // devices clear themselves), deepest first, so that nothing is left mounted or half-removed.
  std::vector<std::string> mounts;
  std::istringstream mountinfo(ReadFileOrEmpty("/proc/self/mountinfo"));
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, numbers, root, mount_point;
    fields >> id >> parent >> numbers >> root >> mount_point;
    if (mount_point.rfind(path_ + "/", 0) == 0) mounts.push_back(mount_point);
  }
  std::sort(mounts.rbegin(), mounts.rend());
  for (const std::string& mount_point : mounts) umount2(mount_point.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::Write(const std::string& relative, const std::string& content, int mode) const {
  std::filesystem::path full = std::filesystem::path(path_) / relative;
  std::filesystem::create_directories(full.parent_path());
  for (auto p = full.parent_path(); p.string().size() > path_.size(); p = p.parent_path()) {
    chmod(p.c_str(), 0755);
  }
  std::ofstream(full, std::ios::binary) << content;
  chmod(full.c_str(), static_cast<mode_t>(mode));
}

}  // namespace packvisor::testing
