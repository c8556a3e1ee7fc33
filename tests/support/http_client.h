// A minimal HTTP/1.1 client over a Unix socket, for tests only: they need to send exactly the
// bytes they choose (half a request, a stalled read) and to read a chunked NDJSON stream line by
// line as it arrives. Header-only (tests/CMakeLists.txt builds *_test.cc + harness.cc).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"

namespace packvisor::testing {

// A connected Unix stream socket, or an invalid fd (errno set).
inline unique_fd ConnectUnix(const std::string& path) {
  unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return unique_fd();
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return unique_fd();
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// The text of one request (`Connection: close` unless `keep_alive`).
inline std::string RequestText(const std::string& method, const std::string& target,
                               const std::string& body = "", bool keep_alive = false) {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: packvisor\r\n";
  if (!keep_alive) text += "Connection: close\r\n";
  if (!body.empty() || method == "POST") {
    text +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return text + "\r\n" + body;
}

struct HttpResponse {
  int status = 0;                              // 0: no response (connection failed or closed early)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // de-chunked
  nlohmann::json Json() const { return nlohmann::json::parse(body); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Reads a response from `fd` incrementally: the head, then the body, de-chunked, as it arrives.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {}

  // Reads until the head is complete; false when the connection ends first or `timeout_ms`
  // passes.
  bool ReadHead(HttpResponse* response, int timeout_ms = 60000) {
    size_t end;
    while ((end = raw_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(timeout_ms)) return false;
    }
    std::string head = raw_.substr(0, end);
    raw_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    size_t space = status_line.find(' ');
    if (space == std::string::npos) return false;
    response->status = std::atoi(status_line.c_str() + space + 1);
    size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
    while (at < head.size()) {
      size_t next = head.find("\r\n", at);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(at, next - at);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t value = line.find_first_not_of(' ', colon + 1);
        response->headers[name] = value == std::string::npos ? "" : line.substr(value);
      }
      at = next + 2;
    }
    chunked_ = response->Header("transfer-encoding") == "chunked";
    if (!response->Header("content-length").empty()) {
      remaining_ = std::stoull(response->Header("content-length"));
    }
    return true;
  }

  // The next piece of the body (de-chunked); nullopt at the end of the body (or of the
  // connection, or after `timeout_ms`).
  std::optional<std::string> ReadBodyPiece(int timeout_ms = 60000) {
    if (finished_) return std::nullopt;
    if (chunked_) {
      size_t line_end;
      while ((line_end = raw_.find("\r\n")) == std::string::npos) {
        if (!Fill(timeout_ms)) return std::nullopt;
      }
      size_t size = std::stoul(raw_.substr(0, line_end), nullptr, 16);
      while (raw_.size() < line_end + 2 + size + 2) {
        if (!Fill(timeout_ms)) return std::nullopt;
      }
      std::string piece = raw_.substr(line_end + 2, size);
      raw_.erase(0, line_end + 2 + size + 2);
      if (size == 0) {
        finished_ = true;
        return std::nullopt;
      }
      return piece;
    }
    if (remaining_) {
      if (*remaining_ == 0) {
        finished_ = true;
        return std::nullopt;
      }
      if (raw_.empty() && !Fill(timeout_ms)) return std::nullopt;
      std::string piece = raw_.substr(0, std::min<size_t>(raw_.size(), *remaining_));
      raw_.erase(0, piece.size());
      *remaining_ -= piece.size();
      return piece;
    }
    if (raw_.empty() && !Fill(timeout_ms)) {
      finished_ = true;
      return std::nullopt;
    }
    std::string piece = std::move(raw_);
    raw_.clear();
    return piece;
  }

  // The next complete line of the body (without its newline); nullopt at the end.
  std::optional<std::string> ReadLine(int timeout_ms = 60000) {
    size_t newline;
    while ((newline = lines_.find('\n')) == std::string::npos) {
      auto piece = ReadBodyPiece(timeout_ms);
      if (!piece) {
        if (lines_.empty()) return std::nullopt;
        std::string last = std::move(lines_);
        lines_.clear();
        return last;
      }
      lines_ += *piece;
    }
    std::string line = lines_.substr(0, newline);
    lines_.erase(0, newline + 1);
    return line;
  }

 private:
  bool Fill(int timeout_ms) {
    struct pollfd pfd {
      fd_, POLLIN, 0
    };
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready <= 0) return false;
    char buffer[65536];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return false;
    raw_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string raw_;
  std::string lines_;
  bool chunked_ = false;
  bool finished_ = false;
  std::optional<uint64_t> remaining_;
};

// One request on a connection of its own; the whole response (status 0 when none came).
inline HttpResponse HttpRequest(const std::string& socket_path, const std::string& method,
                                const std::string& target, const std::string& body = "",
                                int timeout_ms = 120000) {
  HttpResponse response;
  unique_fd fd = ConnectUnix(socket_path);
  if (!fd || !SendAll(fd.get(), RequestText(method, target, body))) return response;
  ResponseReader reader(fd.get());
  if (!reader.ReadHead(&response, timeout_ms)) return response;
  while (auto piece = reader.ReadBodyPiece(timeout_ms)) response.body += *piece;
  return response;
}

inline HttpResponse HttpGet(const std::string& socket_path, const std::string& target) {
  return HttpRequest(socket_path, "GET", target);
}
inline HttpResponse HttpPost(const std::string& socket_path, const std::string& target,
                             const nlohmann::json& body) {
  return HttpRequest(socket_path, "POST", target, body.dump());
}
inline HttpResponse HttpDelete(const std::string& socket_path, const std::string& target) {
  return HttpRequest(socket_path, "DELETE", target);
}

}  // namespace packvisor::testing
