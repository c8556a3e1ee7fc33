// Fixtures for the environment integration tests (SPEC §5): a temporary world with its own
// packs_base_dir, runtime_envs_dir, state_dir and (optionally) runtimes_dir, an offline config
// (install network off, pip and npm pointed at files inside the pack), offline dependency
// artifacts built by the test itself (a wheel, an npm tarball), and helpers to inspect the
// environments on disk. Every packvisor call made through EnvWorld::Cli checks that the pack tree
// is unchanged by it ("The pack directory is never written").
//
// Header-only on purpose: tests/CMakeLists.txt builds the integration tests from
// tests/integration/*_test.cc plus tests/support/harness.cc only.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

namespace packvisor::testing {

// Runs /bin/sh -c `script` (the test's own tooling, not packvisor); throws when it fails.
inline void HostShell(const std::string& script) {
  int status = std::system(script.c_str());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("host command failed: " + script);
  }
}

// lstat identity of a path (no symlink followed); nullopt when missing.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
  bool operator==(const FileIdentity& other) const {
    return dev == other.dev && ino == other.ino && uid == other.uid && gid == other.gid &&
           mode == other.mode;
  }
};

inline std::optional<FileIdentity> Identity(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{st.st_dev, st.st_ino, st.st_uid, st.st_gid, st.st_mode};
}

inline bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Creates (or truncates) a file without touching the modes of its parent directories.
inline void Touch(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot create " + path);
}

// Counts the lines of `text` that contain `needle`.
// `packvisor args...` run `runs` times at once (one thread each); the results in start order.
inline std::vector<CommandResult> RunConcurrently(const std::vector<std::string>& args, int runs) {
  std::vector<CommandResult> results(static_cast<size_t>(runs));
  std::vector<std::thread> threads;
  for (int i = 0; i < runs; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = RunPackvisor(args); });
  }
  for (std::thread& thread : threads) thread.join();
  return results;
}

inline int CountLinesContaining(const std::string& text, const std::string& needle) {
  int count = 0;
  for (const std::string& line : Lines(text)) count += line.find(needle) != std::string::npos;
  return count;
}

class EnvWorld {
 public:
  EnvWorld() = default;
  EnvWorld(const EnvWorld&) = delete;
  EnvWorld& operator=(const EnvWorld&) = delete;

  const std::string& root() const { return dir_.path(); }
  std::string PacksDir() const { return dir_.Path("packs"); }
  std::string PackDir(const std::string& pack) const { return PacksDir() + "/" + pack; }
  std::string EnvsDir() const { return dir_.Path("envs"); }
  std::string StateDir() const { return dir_.Path("state"); }
  std::string RuntimesDir() const { return dir_.Path("runtimes"); }
  std::string ConfigPath() const { return dir_.Path("packvisor.toml"); }
  std::string Path(const std::string& relative) const { return dir_.Path(relative); }

  std::string EnvDir(const std::string& pack, const std::string& runtime) const {
    return EnvsDir() + "/" + pack + "/" + runtime;
  }
  std::string MarkerPath(const std::string& pack, const std::string& runtime) const {
    return EnvsDir() + "/" + pack + "/." + runtime + ".ready";
  }
  // The ready marker's text ("" when there is none).
  std::string MarkerText(const std::string& pack, const std::string& runtime) const {
    return ReadFileOrEmpty(MarkerPath(pack, runtime));
  }
  nlohmann::json Marker(const std::string& pack, const std::string& runtime) const {
    return nlohmann::json::parse(MarkerText(pack, runtime));
  }
  // Entries of {envs}/{pack} whose name contains `needle` (".staging-", ".old-").
  std::vector<std::string> PackEnvEntries(const std::string& pack,
                                          const std::string& needle) const {
    return EntriesContaining(EnvsDir() + "/" + pack, needle);
  }

  // pack.yaml with `ref: pack`.
  void WritePack(const std::string& pack) const {
    dir_.Write("packs/" + pack + "/pack.yaml",
               "ref: " + pack + "\nversion: 1.0.0\ndescription: env test pack\n");
    std::filesystem::create_directories(PackDir(pack) + "/actions");
    chmod((PackDir(pack) + "/actions").c_str(), 0755);
  }

  // actions/<name>.yaml: `runner_type` (omitted when empty), `entry_point`, extra YAML lines,
  // and the script itself.
  void WriteAction(const std::string& pack, const std::string& name, const std::string& runner_type,
                   const std::string& script_name, const std::string& script,
                   const std::string& extra_yaml = "") const {
    if (!Exists(PackDir(pack) + "/pack.yaml")) WritePack(pack);
    std::string yaml = "name: " + name + "\n";
    if (!runner_type.empty()) yaml += "runner_type: " + runner_type + "\n";
    yaml += "entry_point: " + script_name + "\n" + extra_yaml;
    dir_.Write("packs/" + pack + "/actions/" + name + ".yaml", yaml);
    dir_.Write("packs/" + pack + "/actions/" + script_name, script);
  }

  // A file below the pack (e.g. requirements.txt), world-readable.
  void WritePackFile(const std::string& pack, const std::string& relative,
                     const std::string& content) const {
    dir_.Write("packs/" + pack + "/" + relative, content);
  }

  // Any file below the world's root.
  void WriteFile(const std::string& relative, const std::string& content, int mode = 0644) const {
    dir_.Write(relative, content, mode);
  }

  // runtimes/<name>.toml (a runtime definition; the config then names runtimes_dir).
  void WriteRuntime(const std::string& name, const std::string& toml) {
    dir_.Write("runtimes/" + name + ".toml", toml);
    has_runtimes_ = true;
  }

  // A pure-Python wheel packs/<pack>/wheels/demo_pkg-<version>-py3-none-any.whl whose module
  // demo_pkg has VALUE = `value` and VERSION = `version`, built with the system Python's zipfile.
  void WriteDemoWheel(const std::string& pack, const std::string& version = "1.0",
                      const std::string& value = "42") const {
    std::string wheels = PackDir(pack) + "/wheels";
    std::filesystem::create_directories(wheels);
    chmod(wheels.c_str(), 0755);
    const char* kBuilder = R"PY(
import sys, zipfile
out, version, value = sys.argv[1], sys.argv[2], sys.argv[3]
info = 'demo_pkg-%s.dist-info' % version
with zipfile.ZipFile(out, 'w') as z:
    z.writestr('demo_pkg/__init__.py', 'VALUE = %s\nVERSION = %r\n' % (value, version))
    z.writestr(info + '/METADATA', 'Metadata-Version: 2.1\nName: demo-pkg\nVersion: %s\n' % version)
    z.writestr(info + '/WHEEL', 'Wheel-Version: 1.0\nGenerator: packvisor-tests\n'
               'Root-Is-Purelib: true\nTag: py3-none-any\n')
    z.writestr(info + '/RECORD', '')
)PY";
    dir_.Write("tools/make_wheel.py", kBuilder);
    std::string wheel = wheels + "/demo_pkg-" + version + "-py3-none-any.whl";
    HostShell("/usr/bin/python3 " + ShellQuote(dir_.Path("tools/make_wheel.py")) + " " +
              ShellQuote(wheel) + " " + ShellQuote(version) + " " + ShellQuote(value));
    chmod(wheel.c_str(), 0644);
  }

  // An npm package tarball packs/<pack>/vendor/<name>-1.0.0.tgz (the layout `npm pack` makes:
  // package/package.json, package/index.js) exporting {value: `value`}. Returns its path inside
  // the sandbox (/pack/vendor/...).
  std::string WriteNodeTarball(const std::string& pack, const std::string& name,
                               const std::string& value) const {
    std::string work = dir_.Path("tools/npm-" + name);
    dir_.Write("tools/npm-" + name + "/package/package.json",
               "{\"name\": \"" + name + "\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n");
    dir_.Write("tools/npm-" + name + "/package/index.js",
               "module.exports = {value: " + value + "};\n");
    std::string vendor = PackDir(pack) + "/vendor";
    std::filesystem::create_directories(vendor);
    chmod(vendor.c_str(), 0755);
    std::string tarball = vendor + "/" + name + "-1.0.0.tgz";
    HostShell("/bin/tar -C " + ShellQuote(work) + " -czf " + ShellQuote(tarball) + " package");
    chmod(tarball.c_str(), 0644);
    return "/pack/vendor/" + name + "-1.0.0.tgz";
  }

  // packvisor.toml: packs, envs and state below the root, runtimes_dir when a runtime was
  // written, [sandbox] install_network = false, and [envs] install_env pointing pip at
  // /pack/wheels (no index) and npm offline, plus `more_install_env` and `envs_extra` lines
  // (e.g. "build_timeout_seconds = 5\n"), then `extra_tables`.
  std::string WriteConfig(const std::map<std::string, std::string>& more_install_env = {},
                          const std::string& envs_extra = "",
                          const std::string& extra_tables = "") const {
    std::map<std::string, std::string> install_env = {
        {"PIP_NO_INDEX", "1"}, {"PIP_FIND_LINKS", "/pack/wheels"}, {"npm_config_offline", "true"}};
    for (const auto& [name, value] : more_install_env) install_env[name] = value;
    std::string text = "packs_base_dir = \"" + PacksDir() + "\"\nruntime_envs_dir = \"" +
                       EnvsDir() + "\"\nstate_dir = \"" + StateDir() + "\"\n";
    if (has_runtimes_) text += "runtimes_dir = \"" + RuntimesDir() + "\"\n";
    text += "\n[execution]\ndefault_timeout_seconds = 60\nkill_grace_seconds = 1\n";
    text += "\n[sandbox]\ninstall_network = false\n";
    text += "\n[envs]\ninstall_env = {";
    bool first = true;
    for (const auto& [name, value] : install_env) {
      text += std::string(first ? " " : ", ") + name + " = \"" + value + "\"";
      first = false;
    }
    text += " }\n" + envs_extra + "\n" + extra_tables;
    dir_.Write("packvisor.toml", text, 0644);
    return ConfigPath();
  }

  // Everything under packs/.
  std::string PacksFingerprint() const { return TreeFingerprint(PacksDir()); }

  // The arguments for `packvisor --config C --log-level info ARGS...` (the config written first
  // when there is none).
  std::vector<std::string> Args(const std::vector<std::string>& args) const {
    if (!Exists(ConfigPath())) WriteConfig();
    std::vector<std::string> full = {"--config", ConfigPath(), "--log-level", "info"};
    full.insert(full.end(), args.begin(), args.end());
    return full;
  }

  // Runs packvisor (with --log-level info, so that build steps are logged on stderr) and checks
  // that the pack tree is unchanged by the run.
  CommandResult Cli(const std::vector<std::string>& args,
                    const std::string& stdin_data = {}) const {
    std::vector<std::string> full = Args(args);
    std::string before = PacksFingerprint();
    CommandResult result = RunPackvisor(full, stdin_data);
    EXPECT_EQ(PacksFingerprint(), before) << "packvisor wrote into the pack directory";
    return result;
  }

  // `run ACTION --json`: the result object (a failed parse fails the test and gives null).
  nlohmann::json RunJson(const std::string& action_ref, CommandResult* raw = nullptr) const {
    CommandResult result = Cli({"run", action_ref, "--json"});
    if (raw != nullptr) *raw = result;
    try {
      return result.Json();
    } catch (const std::exception&) {
      ADD_FAILURE() << "run " << action_ref << ": no JSON result (exit " << result.exit_code
                    << ")\nstdout: " << result.stdout_text << "\nstderr: " << result.stderr_text;
      return nullptr;
    }
  }

 private:
  TempDir dir_;
  bool has_runtimes_ = false;
};

// A Python action printing, as JSON, what the environment tests look at: the interpreter, the
// prefixes, the working directory, /env's inode, and demo_pkg's VALUE (null when it cannot be
// imported) and file.
constexpr const char* kPythonProbe = R"PY(import json, os, sys
try:
    import demo_pkg
    value, where = demo_pkg.VALUE, demo_pkg.__file__
except ImportError:
    value, where = None, None
print(json.dumps({"executable": sys.executable, "prefix": sys.prefix,
                  "base_prefix": sys.base_prefix, "cwd": os.getcwd(),
                  "env_ino": os.stat("/env").st_ino, "value": value, "module": where}))
)PY";

// Describes a CommandResult for failure messages.
inline std::string Describe(const CommandResult& result) {
  return "exit " + std::to_string(result.exit_code) + "\nstdout: " + result.stdout_text +
         "\nstderr: " + result.stderr_text;
}

}  // namespace packvisor::testing
