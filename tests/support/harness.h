// Runs the real packvisor binary for integration tests and captures what it did.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace packvisor::testing {

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string stdout_text;
  std::string stderr_text;
  nlohmann::json Json() const;  // parses stdout (for --json runs); throws on bad JSON
};

// Runs `packvisor args...` (the binary built with the tests), feeding stdin_data.
CommandResult RunPackvisor(const std::vector<std::string>& args, const std::string& stdin_data = {});

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

 private:
  std::string path_;
};

std::string PackvisorBinary();
std::string SourceDir();

}  // namespace packvisor::testing
