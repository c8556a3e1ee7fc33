#include "supervisor/queue/broker_settings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sandbox/os/unique_fd.h"

namespace packvisor::queue {
namespace {

Result<std::string> ReadPasswordFile(const std::string& path) {
  const std::string key = "worker.broker_password_file";
  unique_fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    if (errno == ELOOP) return Failure(key, path, "is a symlink");
    return ErrnoError("open " + key, path);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoError("stat " + key, path);
  if (!S_ISREG(st.st_mode)) return Failure(key, path, "is not a regular file");
  if (st.st_uid != geteuid()) {
    return Failure(key, path, "is owned by uid " + std::to_string(st.st_uid) + ", not by us");
  }
  mode_t mode = st.st_mode & 07777;
  if (mode != 0600 && mode != 0400) {
    char text[8];
    std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
    return Failure(key, path + " has mode " + text, "it must be 0600 or 0400");
  }
  std::string password;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      explicit_bzero(password.data(), password.size());
      return ErrnoError("read " + key, path);
    }
    if (n == 0) break;
    password.append(buffer, static_cast<size_t>(n));
    if (password.size() > 65536) {
      explicit_bzero(password.data(), password.size());
      explicit_bzero(buffer, sizeof(buffer));
      return Failure(key, path, "more than 64 KiB");
    }
  }
  explicit_bzero(buffer, sizeof(buffer));
  size_t end = password.find_first_of("\r\n");
  if (end != std::string::npos) {
    explicit_bzero(password.data() + end, password.size() - end);
    password.resize(end);
  }
  if (password.empty()) return Failure(key, path, "its first line is empty");
  return password;
}

}  // namespace

Result<BrokerSettings> BrokerSettingsFromConfig(const Config& config,
                                                const std::optional<std::string>& url_override,
                                                const std::string& connection_name) {
  const WorkerConfig& worker = config.worker;
  auto url = ParseBrokerUrl(url_override ? *url_override : worker.broker_url);
  if (!url) {
    return Failure(url_override ? "--broker" : "worker.broker_url", "", url.error().message());
  }
  BrokerSettings settings;
  settings.url = std::move(*url);
  if (!worker.broker_password_file.empty()) {
    auto password = ReadPasswordFile(worker.broker_password_file);
    if (!password) return password.error();
    explicit_bzero(settings.url.password.data(), settings.url.password.size());
    settings.url.password = std::move(*password);
  }
  settings.options.tls.ca_file = worker.ca_file;
  settings.options.tls.cert_file = worker.cert_file;
  // worker.key_file is the sealing key: a client certificate's key is in the same PEM file as
  // the certificate (tls.key_file "" says so).
  settings.options.heartbeat = std::chrono::seconds(worker.heartbeat_seconds);
  settings.options.connection_name = connection_name;
  return settings;
}

}  // namespace packvisor::queue
