#include "tests/support/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "sandbox/os/unique_fd.h"

extern char** environ;

namespace packvisor::testing {

std::string PackvisorBinary() { return PACKVISOR_BINARY; }
std::string SourceDir() { return PACKVISOR_SOURCE_DIR; }

nlohmann::json CommandResult::Json() const { return nlohmann::json::parse(stdout_text); }

CommandResult RunPackvisor(const std::vector<std::string>& args, const std::string& stdin_data) {
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
  std::vector<std::string> full = {PackvisorBinary()};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, full[0].c_str(), &actions, nullptr, argv.data(), environ);
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
    if (in_w) { fds[n] = {in_w.get(), POLLOUT, 0}; iw = n++; }
    if (out_r) { fds[n] = {out_r.get(), POLLIN, 0}; io = n++; }
    if (err_r) { fds[n] = {err_r.get(), POLLIN, 0}; ie = n++; }
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
      if (r > 0) sink.append(buf, static_cast<size_t>(r));
      else fd.reset();
    };
    drain(io, out_r, result.stdout_text);
    drain(ie, err_r, result.stderr_text);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

TempDir::TempDir() {
  char pattern[] = "/tmp/packvisor-test-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
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
