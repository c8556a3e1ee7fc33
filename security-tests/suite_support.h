// Helpers shared by the security suites of catalog groups E-H (lifetime, network, resources,
// supervisor): locating the scripts and binaries under test, running packvisor and reading its
// result object, and the host canaries every test checks. Header-only; each test file uses it with
// `using namespace security_suite;`.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "supervisor/config/config.h"
#include "tests/support/harness.h"

namespace packvisor::security_suite {

using testing::CommandResult;
using testing::RunPackvisor;
using testing::TempDir;

// Scripts of the hostile actions: $PACKVISOR_SECURITY_SCRIPTS_DIR, else scripts/ next to the
// test binary (the installed layout), else the source tree.
inline std::string ScriptsDir() {
  const char* dir = std::getenv("PACKVISOR_SECURITY_SCRIPTS_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && std::filesystem::is_directory(exe.parent_path() / "scripts")) {
    return (exe.parent_path() / "scripts").string();
  }
  return PACKVISOR_SECURITY_SCRIPTS_DIR;
}

inline std::string Script(const std::string& name) {
  std::string text = testing::ReadFileOrEmpty(ScriptsDir() + "/" + name);
  if (text.empty()) ADD_FAILURE() << "missing script " << ScriptsDir() << "/" << name;
  return text;
}

// The configuration the packvisor under test loads when given no --config of the test's own.
inline Config EffectiveConfig() {
  auto config = LoadConfig(testing::TestConfigFromEnvironment());
  if (!config) throw std::runtime_error("config: " + config.error().message());
  return *config;
}

inline nlohmann::json ParseResult(const CommandResult& run) {
  try {
    return run.Json();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "no JSON result: " << e.what()
                  << "\nstdout: " << run.stdout_text.substr(0, 2000)
                  << "\nstderr: " << run.stderr_text.substr(0, 2000);
    return nlohmann::json::object();
  }
}

inline std::string Field(const nlohmann::json& result, const char* key) {
  return result.contains(key) && result[key].is_string() ? result[key].get<std::string>() : "";
}

// Canaries (catalog section 0): a root-owned 0600 host file with random content, a victim pack
// and env with a token, and the packvisor binary. ExpectUnchanged() checks none of them moved and
// that no output shows the secrets.
class HostGuard {
 public:
  HostGuard()
      : canary_("/var/tmp/canary-" + testing::UniqueMarker("pv")),
        canary_content_(testing::UniqueMarker("canary-content")),
        token_(testing::UniqueMarker("victim-token")) {
    int fd = open(canary_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + canary_);
    (void)!write(fd, canary_content_.data(), canary_content_.size());
    fchmod(fd, 0600);
    close(fd);
    victim_.Write("pack/pack.yaml", "ref: victim\nversion: 1.0.0\ndescription: victim\n");
    victim_.Write("pack/actions/run.sh", "echo " + token_ + "\n");
    victim_.Write("env/marker", token_ + "\n", 0600);
    canary_before_ = DescribeCanary();
    victim_before_ = testing::TreeFingerprint(victim_.path());
    binary_before_ = DescribeBinary();
  }
  ~HostGuard() { unlink(canary_.c_str()); }
  HostGuard(const HostGuard&) = delete;
  HostGuard& operator=(const HostGuard&) = delete;

  void ExpectUnchanged(const std::vector<std::string>& outputs = {}) const {
    EXPECT_EQ(DescribeCanary(), canary_before_) << "host canary changed";
    EXPECT_EQ(testing::TreeFingerprint(victim_.path()), victim_before_) << "victim changed";
    EXPECT_EQ(DescribeBinary(), binary_before_) << "the packvisor binary changed";
    for (const std::string& out : outputs) {
      EXPECT_EQ(out.find(canary_content_), std::string::npos) << "canary content leaked";
      EXPECT_EQ(out.find(token_), std::string::npos) << "victim token leaked";
    }
  }

 private:
  std::string DescribeCanary() const {
    struct stat st {};
    if (lstat(canary_.c_str(), &st) != 0) return "missing";
    std::ostringstream out;
    out << st.st_uid << ":" << st.st_gid << " " << std::oct << st.st_mode << std::dec << " "
        << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " "
        << testing::ReadFileOrEmpty(canary_);
    return out.str();
  }
  static std::string DescribeBinary() {
    std::string path = testing::PackvisorBinary();
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return "missing";
    std::string content = testing::ReadFileOrEmpty(path);
    std::ostringstream out;
    out << st.st_uid << " " << std::oct << st.st_mode << std::dec << " " << st.st_size << " "
        << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " "
        << std::hash<std::string>{}(content);
    return out.str();
  }

  std::string canary_;
  std::string canary_content_;
  std::string token_;
  TempDir victim_;
  std::string canary_before_, victim_before_, binary_before_;
};

// Sets environment variables of this process for one scope (the tests run one at a time).
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name.c_str())) old_ = old;
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

inline std::string TestHooksBinary() {
  const char* path = PACKVISOR_TEST_HOOKS_BINARY;
  return access(path, X_OK) == 0 ? path : "";
}

// "KEY rest..." lines of an action's stdout: the first line for each KEY.
inline std::map<std::string, std::string> Said(const std::string& out) {
  std::map<std::string, std::string> said;
  for (const std::string& line : testing::Lines(out)) {
    size_t space = line.find(' ');
    std::string key = line.substr(0, space);
    if (!said.count(key)) said[key] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  return said;
}

}  // namespace packvisor::security_suite
