#include "supervisor/cli/daemon_client.h"

#include <fcntl.h>
#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cctype>
#include <cstring>

#include "envs/document_limits.h"
#include "sandbox/os/unique_fd.h"

namespace packvisor {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int PollTimeout(const std::optional<std::chrono::milliseconds>& timeout) {
  return timeout ? static_cast<int>(timeout->count()) : -1;
}

// A fault of the answer itself: Send() names the daemon in front of it.
Error Malformed(std::string detail) { return Error{0, "", std::move(detail)}; }

// The error of reading the answer, naming the daemon unless it names its own subject.
Error NameTheDaemon(Error error, const std::string& where) {
  if (!error.operation.empty()) return error;
  return Failure("read the answer of", where, error.subject);
}

std::string Seconds(std::chrono::milliseconds timeout) {
  return std::to_string((timeout.count() + 999) / 1000) + " s";
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  std::string wanted = Lower(name);
  for (const auto& [key, value] : headers) {
    if (key == wanted) return value;
  }
  return std::nullopt;
}

struct ResponseParser::State {
  http_parser parser{};
  http_parser_settings settings{};
  BodyCallback on_body;
  size_t max_body_bytes = 0;
  HttpResponse response;
  bool in_value = false;  // the last header callback was a value: a field starts a new header
  bool complete = false;
  std::optional<Error> callback_error;

  static State* Of(http_parser* parser) { return static_cast<State*>(parser->data); }
};

ResponseParser::ResponseParser(BodyCallback on_body, size_t max_body_bytes)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.on_body = std::move(on_body);
  s.max_body_bytes = max_body_bytes;
  http_parser_init(&s.parser, HTTP_RESPONSE);
  s.parser.data = &s;
  http_parser_settings_init(&s.settings);
  // http-parser calls these with pieces: a header's name or value may come in several calls when
  // it spans two reads.
  s.settings.on_header_field = [](http_parser* p, const char* at, size_t length) {
    State* st = State::Of(p);
    if (st->in_value || st->response.headers.empty()) {
      st->response.headers.emplace_back();
      st->in_value = false;
    }
    st->response.headers.back().first += Lower(std::string_view(at, length));
    return 0;
  };
  s.settings.on_header_value = [](http_parser* p, const char* at, size_t length) {
    State* st = State::Of(p);
    st->in_value = true;
    st->response.headers.back().second.append(at, length);
    return 0;
  };
  s.settings.on_headers_complete = [](http_parser* p) {
    State::Of(p)->response.status = static_cast<int>(p->status_code);
    return 0;
  };
  s.settings.on_body = [](http_parser* p, const char* at, size_t length) {
    State* st = State::Of(p);
    if (st->on_body && st->response.status / 100 == 2) {
      Result<void> taken = st->on_body(std::string_view(at, length));
      if (!taken) {
        st->callback_error = taken.error();
        return 1;
      }
      return 0;
    }
    if (st->response.body.size() + length > st->max_body_bytes) {
      st->callback_error =
          Malformed("a body larger than " + std::to_string(st->max_body_bytes >> 20) + " MiB");
      return 1;
    }
    st->response.body.append(at, length);
    return 0;
  };
  // A second message on the connection: http-parser would read it into the same response (its
  // headers after ours, its body into the callback) when it came in the same read as the end of
  // the first, and Feed() refused it when it came later. Refused here, however it arrives.
  s.settings.on_message_begin = [](http_parser* p) {
    State* st = State::Of(p);
    if (!st->complete) return 0;
    st->callback_error = Malformed("bytes after the end of the response");
    return 1;
  };
  s.settings.on_message_complete = [](http_parser* p) {
    State::Of(p)->complete = true;
    return 0;
  };
}

ResponseParser::~ResponseParser() = default;

Result<void> ResponseParser::Feed(std::string_view data) {
  State& s = *state_;
  // After the end, the parser still reads what comes (line ends between messages are allowed; the
  // start of another message is refused by on_message_begin, anything else is malformed), so that
  // the outcome does not depend on how the bytes were split into reads.
  if (data.empty()) return Ok{};
  size_t parsed = http_parser_execute(&s.parser, &s.settings, data.data(), data.size());
  if (s.callback_error) return *s.callback_error;
  auto err = static_cast<http_errno>(s.parser.http_errno);
  if (err != HPE_OK) {
    return Malformed(std::string("malformed HTTP response: ") + http_errno_description(err));
  }
  if (parsed != data.size() && !s.complete) {
    return Malformed("malformed HTTP response");
  }
  if (s.complete && parsed != data.size()) {
    return Malformed("bytes after the end of the response");
  }
  return Ok{};
}

Result<void> ResponseParser::FinishAtEof() {
  State& s = *state_;
  if (s.complete) return Ok{};
  // A zero-length execute tells http-parser the connection ended (a body without a length).
  http_parser_execute(&s.parser, &s.settings, nullptr, 0);
  if (s.callback_error) return *s.callback_error;
  if (!s.complete) {
    return Malformed("the connection closed before the response ended");
  }
  return Ok{};
}

bool ResponseParser::complete() const { return state_->complete; }

HttpResponse& ResponseParser::response() { return state_->response; }

Result<void> LineSplitter::Feed(std::string_view data) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      if (pending_.size() + data.size() > max_line_bytes_) {
        return Malformed("a line longer than " + std::to_string(max_line_bytes_) + " bytes");
      }
      pending_.append(data);
      return Ok{};
    }
    if (pending_.empty()) {
      PV_TRY(on_line_(data.substr(0, newline)));
    } else {
      pending_.append(data.substr(0, newline));
      std::string line = std::move(pending_);
      pending_.clear();
      PV_TRY(on_line_(line));
    }
    data.remove_prefix(newline + 1);
  }
  return Ok{};
}

Result<void> LineSplitter::Finish() {
  if (pending_.empty()) return Ok{};
  std::string line = std::move(pending_);
  pending_.clear();
  return on_line_(line);
}

Result<HttpResponse> DaemonClient::Send(std::string_view method, std::string_view target,
                                        const std::string* body, const RequestOptions& options,
                                        BodyCallback on_body) const {
  const std::string where = "the daemon at " + socket_path_;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.empty() || socket_path_.size() >= sizeof(address.sun_path)) {
    return Failure(
        "connect to", where,
        "a socket path must have 1 to " + std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());

  unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket for", where);
  // A blocking connect to a Unix socket waits while the listener's backlog is full, bounded by
  // SO_SNDTIMEO (the kernel's unix_stream_connect); the exchange itself is non-blocking + poll.
  if (options.idle_timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(options.idle_timeout->count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((options.idle_timeout->count() % 1000) * 1000);
    if (setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
      return ErrnoError("set the send timeout of the socket to", where);
    }
  }
  for (;;) {
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return Failure("connect to", where,
                     "no room in its backlog within " + Seconds(*options.idle_timeout));
    }
    return ErrnoError("connect to", where);
  }
  if (fcntl(fd.get(), F_SETFL, O_NONBLOCK) != 0) return ErrnoError("fcntl O_NONBLOCK", where);

  std::string request;
  request.reserve(256);
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  request += "Host: localhost\r\nUser-Agent: packvisor\r\nConnection: close\r\n";
  request += "Accept: application/json, application/x-ndjson\r\n";
  if (body != nullptr) {
    request += "Content-Type: " + options.content_type + "\r\n";
    request += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  }
  request += "\r\n";

  // Writes `data` within the idle timeout per wait. The body goes out from the caller's string,
  // never copied (it may hold secrets).
  auto write_all = [&](std::string_view data) -> Result<void> {
    while (!data.empty()) {
      ssize_t n = send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return ErrnoError("send the request to", where);
      }
      pollfd p{fd.get(), POLLOUT, 0};
      int ready = poll(&p, 1, PollTimeout(options.idle_timeout));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return ErrnoError("poll", where);
      if (ready == 0) {
        return Failure("send the request to", where,
                       "it read nothing for " + Seconds(*options.idle_timeout));
      }
    }
    return Ok{};
  };
  PV_TRY(write_all(request));
  if (body != nullptr) PV_TRY(write_all(*body));

  ResponseParser parser(std::move(on_body));
  char buffer[65536];
  while (!parser.complete()) {
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {options.interrupt_fd, POLLIN, 0}};
    int ready = poll(fds, options.interrupt_fd >= 0 ? 2 : 1, PollTimeout(options.idle_timeout));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoError("poll", where);
    if (ready == 0) {
      return Failure("wait for", where, "no answer for " + Seconds(*options.idle_timeout));
    }
    if (options.interrupt_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
      return Error{EINTR, "wait for", where};
    }
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) return ErrnoError("read the answer of", where);
    if (n == 0) {
      if (auto finished = parser.FinishAtEof(); !finished) {
        return NameTheDaemon(finished.error(), where);
      }
      break;
    }
    if (auto fed = parser.Feed(std::string_view(buffer, static_cast<size_t>(n))); !fed) {
      return NameTheDaemon(fed.error(), where);
    }
  }
  return std::move(parser.response());
}

std::string DaemonErrorText(std::string_view body) {
  std::string text;
  if (!JsonNestsDeeperThan(body, kMaxAnswerDepth)) {
    auto object = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (auto error = object.is_object() ? object.find("error") : object.end();
        object.is_object() && error != object.end() && error->is_string()) {
      text = error->get<std::string>();
    }
  }
  if (text.empty()) text = body.substr(0, body.find('\n'));
  if (text.empty()) return "no error text";
  constexpr size_t kMaxBytes = 1000;
  bool cut = text.size() > kMaxBytes;
  if (cut) text.resize(kMaxBytes);
  for (char& c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return cut ? text + "..." : text;
}

Result<nlohmann::json> DaemonJsonObject(std::string_view body) {
  if (JsonNestsDeeperThan(body, kMaxAnswerDepth)) {
    return Malformed("JSON nested deeper than " + std::to_string(kMaxAnswerDepth) + " levels");
  }
  auto object = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return Malformed("not a JSON object");
  return object;
}

Result<std::optional<OutputLine>> ParseOutputLine(std::string_view line) {
  if (line.empty()) return std::optional<OutputLine>();
  auto item = DaemonJsonObject(line);
  if (!item) return Malformed("a line: " + item.error().message());
  OutputLine out;
  if (auto result = item->find("result"); result != item->end()) {
    out.kind = OutputLine::Kind::kResult;
    out.result = std::move(*result);
    // Not part of the result object: how the local run prints a jsonl result (docs/api.md).
    if (auto lines = item->find("result_is_lines"); lines != item->end() && lines->is_boolean()) {
      out.result_is_lines = lines->get<bool>();
    }
    return std::optional<OutputLine>(std::move(out));
  }
  auto stream = item->find("stream");
  auto data = item->find("data");
  if (stream == item->end() || data == item->end() || !stream->is_string() || !data->is_string()) {
    return Malformed("a line with neither stream/data nor result");
  }
  if (*stream == "stdout") {
    out.kind = OutputLine::Kind::kStdout;
  } else if (*stream == "stderr") {
    out.kind = OutputLine::Kind::kStderr;
  } else {
    return Malformed("unknown stream (neither stdout nor stderr)");
  }
  out.data = std::move(data->get_ref<std::string&>());
  return std::optional<OutputLine>(std::move(out));
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

}  // namespace packvisor
