// Helpers shared by the security suites of catalog groups A-D that drive packvisor as a child
// process of their own (fs, secrets, privilege_extra, fail_closed, speculation): running a binary
// with captured output and a deadline, reading the hostile scripts, picking lines out of what a
// probe printed, host canaries, and a packs/envs/state "world" with its own configuration.
// Header-only; each test file uses it with `using namespace probe_suite;`. (The E-H suites have
// their own, security-tests/suite_support.h.)
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/harness.h"

extern char** environ;

namespace packvisor::probe_suite {

using testing::TempDir;

constexpr uid_t kSandboxHostId = 100000;  // first id of the default sandbox.uid_range

struct Outcome {
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  double seconds = 0;
  std::string out;
  std::string err;
  nlohmann::json Json() const {
    try {
      return nlohmann::json::parse(out);
    } catch (const std::exception&) {
      return nlohmann::json::object();
    }
  }
};

// Runs `binary args...` with `extra_env` added and `input` on stdin; kills it after timeout_ms.
// `in_child` runs in the child between fork and exec (system calls only).
inline Outcome RunBinary(const std::string& binary, const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env = {},
                         const std::string& input = {}, int timeout_ms = 15000,
                         const std::function<void()>& in_child = nullptr) {
  std::vector<std::string> argv_s = {binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.push_back(*e);
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2");
  }
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (in_child) in_child();
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  signal(SIGPIPE, SIG_IGN);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  int in_fd = in[1];
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  Outcome outcome;
  auto deadline = start + std::chrono::milliseconds(timeout_ms);
  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&outcome.out, &outcome.err};
  while (fds[0] >= 0 || fds[1] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      outcome.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    if (poll(p, 3, static_cast<int>(left)) < 0) continue;
    if (in_fd >= 0 && p[2].revents != 0) {
      ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || p[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = read(fds[i], buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int fd : {fds[0], fds[1], in_fd}) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
}

inline void RequireRoot() {
  if (geteuid() != 0) GTEST_SKIP() << "security tests need root (packvisor sets up namespaces)";
}

// Catalog 22: whether this kernel lets a task choose its own mitigation for `which`
// (PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH). Where it does not, the mitigation is the same
// for every task (not affected, on for all, or off for all) and no sandbox step can change it.
inline bool PerTaskSpeculationControl(unsigned long which) {
  int state = prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0);
  return state >= 0 && (state & PR_SPEC_PRCTL) != 0;
}

// True when loading any seccomp filter already force-disables `which` (the kernel's "seccomp"
// mitigation mode, the default before Linux 5.16): then the sandbox's own step is not the only
// thing that forces it, and skipping the step alone cannot be seen.
inline bool SeccompForcesSpeculation(unsigned long which) {
  pid_t pid = fork();
  if (pid == 0) {
    sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    sock_fprog program = {1, &allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
      _exit(2);
    }
    int state = prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0);
    _exit(state >= 0 && (state & PR_SPEC_FORCE_DISABLE) != 0 ? 1 : 0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

// Whether skipping the sandbox's speculation step changes what the action gets for `which`.
inline bool SpeculationStepIsVisible(unsigned long which) {
  return PerTaskSpeculationControl(which) && !SeccompForcesSpeculation(which);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::string Script(const std::string& name) {
  return ReadFile(std::string(PACKVISOR_SECURITY_SCRIPTS_DIR) + "/" + name);
}

inline std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  std::string field;
  while (in >> field) fields.push_back(field);
  return fields;
}

// Lines of `text` that start with `prefix` followed by a space, without the prefix.
inline std::vector<std::string> Tagged(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  for (const std::string& line : testing::Lines(text)) {
    if (line.rfind(prefix + " ", 0) == 0) found.push_back(line.substr(prefix.size() + 1));
  }
  return found;
}

inline bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : testing::Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

// A root-owned host file (or directory holding one file) under /var/tmp with random content,
// mode 0600, removed at destruction. State() describes content, owner, mode and mtime.
class Canary {
 public:
  explicit Canary(bool directory = false) : directory_(directory) {
    path_ = "/var/tmp/canary-" + testing::UniqueMarker("c");
    content_ = "CANARY-" + testing::UniqueMarker("content");
    std::string file = path_;
    if (directory_) {
      mkdir(path_.c_str(), 0700);
      file = path_ + "/file";
    }
    std::ofstream(file) << content_;
    chmod(file.c_str(), 0600);
  }
  ~Canary() { std::filesystem::remove_all(path_); }
  Canary(const Canary&) = delete;
  Canary& operator=(const Canary&) = delete;
  const std::string& path() const { return path_; }
  const std::string& content() const { return content_; }
  std::string State() const {
    if (directory_) return testing::TreeFingerprint(path_);
    struct stat st {};
    if (lstat(path_.c_str(), &st) != 0) return "missing";
    std::ostringstream out;
    out << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid << " "
        << st.st_nlink << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " "
        << ReadFile(path_);
    return out.str();
  }

 private:
  bool directory_;
  std::string path_;
  std::string content_;
};

// A packs_base_dir, runtime_envs_dir and state_dir under one temporary directory, and a config
// naming them.
class World {
 public:
  World() {
    dir_.Write("pv.toml", "packs_base_dir = \"" + dir_.Path("packs") + "\"\nruntime_envs_dir = \"" +
                              dir_.Path("envs") + "\"\nstate_dir = \"" + dir_.Path("state") +
                              "\"\n");
  }
  std::string Path(const std::string& relative) const { return dir_.Path(relative); }
  std::string PackDir(const std::string& pack) const { return dir_.Path("packs/" + pack); }
  std::string EnvDir(const std::string& pack, const std::string& runtime = "python") const {
    return dir_.Path("envs/" + pack + "/" + runtime);
  }
  void Write(const std::string& relative, const std::string& content, int mode = 0644) const {
    dir_.Write(relative, content, mode);
  }
  // pack.yaml, actions/NAME.yaml and (if `script_name` is given) actions/SCRIPT_NAME.
  void Action(const std::string& pack, const std::string& name, const std::string& runner,
              const std::string& script_name, const std::string& script,
              const std::string& extra_yaml = "") const {
    dir_.Write("packs/" + pack + "/pack.yaml",
               "ref: " + pack + "\nversion: 1.0.0\ndescription: test\n");
    dir_.Write("packs/" + pack + "/actions/" + name + ".yaml",
               "name: " + name + "\nrunner_type: " + runner + "\nentry_point: " + script_name +
                   "\n" + extra_yaml);
    if (!script.empty()) dir_.Write("packs/" + pack + "/actions/" + script_name, script);
  }
  Outcome Cli(const std::vector<std::string>& args, const std::string& input = {},
              int timeout_ms = 15000) const {
    std::vector<std::string> full = {"--config", dir_.Path("pv.toml")};
    full.insert(full.end(), args.begin(), args.end());
    return RunBinary(testing::PackvisorBinary(), full, {}, input, timeout_ms);
  }

 private:
  TempDir dir_;
};

// The result object of a --json run; a hung packvisor or a missing object is a test failure.
inline nlohmann::json Result(const Outcome& run) {
  nlohmann::json result = run.Json();
  EXPECT_FALSE(run.timed_out) << "packvisor hung: " << run.err;
  EXPECT_TRUE(result.contains("status")) << "no result object: " << run.out << run.err;
  return result;
}

inline std::string Stdout(const nlohmann::json& result) { return result.value("stdout", ""); }

}  // namespace packvisor::probe_suite
