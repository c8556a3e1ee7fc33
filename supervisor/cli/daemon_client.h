// The client side of the daemon's HTTP API (docs/api.md): one HTTP/1.1 request per connection to
// the daemon's Unix socket, blocking I/O with deadlines (poll), the response parsed by
// http-parser (Debian's libhttp-parser-dev; docs/cli.md says why that library). The commands that
// talk to the daemon (remote_commands.h) are built on it.
//
// Secrets: a request body may hold secrets; Send() never logs or quotes a body, and the caller
// wipes its copy after the call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/os/error.h"

namespace packvisor {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;  // empty when the body went to a BodyCallback

  // The first header named `name` (any case).
  std::optional<std::string> Header(std::string_view name) const;
};

// Receives the body of a 2xx answer as it arrives, de-chunked, in pieces of any size (the body of
// any other answer, an error, is kept in HttpResponse::body). An Error stops the exchange and is
// what Send() returns.
using BodyCallback = std::function<Result<void>(std::string_view)>;

// An incremental HTTP/1.1 response parser (http-parser underneath). Exposed for unit tests.
class ResponseParser {
 public:
  // Without `on_body`, the body is kept in response().body, at most `max_body_bytes`.
  explicit ResponseParser(BodyCallback on_body = nullptr, size_t max_body_bytes = 256u << 20);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Feeds the next bytes read from the connection. Bytes after the end of the message are an
  // error (we send `Connection: close`; the daemon sends one response).
  Result<void> Feed(std::string_view data);
  // The connection reached its end: completes a body delimited by the end of the connection;
  // an error when the message is incomplete.
  Result<void> FinishAtEof();
  bool complete() const;
  HttpResponse& response();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Splits a byte stream into lines (NDJSON): `on_line` gets each line without its '\n'. A line
// longer than `max_line_bytes` is an error (the daemon's lines are bounded by the output caps).
class LineSplitter {
 public:
  using LineCallback = std::function<Result<void>(std::string_view)>;
  explicit LineSplitter(LineCallback on_line, size_t max_line_bytes = 256u << 20)
      : on_line_(std::move(on_line)), max_line_bytes_(max_line_bytes) {}
  Result<void> Feed(std::string_view data);
  // The end of the stream: a last line without '\n' is passed on.
  Result<void> Finish();

 private:
  LineCallback on_line_;
  size_t max_line_bytes_;
  std::string pending_;
};

struct RequestOptions {
  // The longest wait for the connection, for writing, and between two reads of the answer.
  // nullopt: no limit while reading (a live output stream may be silent for as long as the
  // action is).
  std::optional<std::chrono::milliseconds> idle_timeout = std::chrono::seconds(30);
  // When this fd becomes readable (a signalfd) while waiting for the answer, Send() returns an
  // Error with err == EINTR. -1: none.
  int interrupt_fd = -1;
  std::string content_type = "application/json";
};

class DaemonClient {
 public:
  explicit DaemonClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}
  const std::string& socket_path() const { return socket_path_; }

  // One request on a new connection (`Connection: close`). `target` is the path and query
  // ("/v1/executions?limit=5"). The body is sent only when non-null. Errors name the socket: a
  // daemon that is not running is "connect to the daemon at SOCKET: Connection refused" (or
  // "No such file or directory"), with that errno.
  Result<HttpResponse> Send(std::string_view method, std::string_view target,
                            const std::string* body, const RequestOptions& options,
                            BodyCallback on_body = nullptr) const;

 private:
  std::string socket_path_;
};

// What the client reads from an answer's body. The daemon's socket peer is trusted no more than
// any other input (a confused or compromised peer): JSON deeper than kMaxAnswerDepth is refused
// before nlohmann-json parses it, and text that reaches the terminal as an error is one line of
// printable characters.
inline constexpr int kMaxAnswerDepth = 64;

// The daemon's one-line error (`{"error": ...}`), else the start of the body; control
// characters as '?', cut after 1000 bytes.
std::string DaemonErrorText(std::string_view body);
// The body as a JSON object ("not a JSON object" otherwise).
Result<nlohmann::json> DaemonJsonObject(std::string_view body);

// One line of GET /v1/executions/{id}/output (docs/api.md): a chunk of a stream, or the result
// (its object and the "result_is_lines" flag beside it).
struct OutputLine {
  enum class Kind { kStdout, kStderr, kResult };
  Kind kind = Kind::kStdout;
  std::string data;       // kStdout, kStderr
  nlohmann::json result;  // kResult: the result object, not yet checked
  bool result_is_lines = false;
};
// An empty line is nullopt (skipped). A refusal names what is wrong, never quoting the line.
Result<std::optional<OutputLine>> ParseOutputLine(std::string_view line);

// "a%20b": `text` percent-encoded for a query value (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view text);

}  // namespace packvisor
