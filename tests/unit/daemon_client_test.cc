// The daemon client's HTTP side (supervisor/cli/daemon_client.h): canned responses through the
// parser, fed whole and byte by byte; NDJSON line splitting; a real Unix socket whose server end
// is this test (a canned answer; no daemon).
#include "supervisor/cli/daemon_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/os/unique_fd.h"

namespace packvisor {
namespace {

constexpr std::string_view kChunked =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/x-ndjson\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "1f\r\n{\"stream\":\"stdout\",\"data\":\"a\"}\n\r\n"
    "10\r\n{\"result\":{\"x\":1\r\n"
    "3\r\n}}\n\r\n"
    "0\r\n\r\n";

// Feeds `text` to a parser in pieces of `step` bytes.
Result<void> FeedInSteps(ResponseParser& parser, std::string_view text, size_t step) {
  while (!text.empty()) {
    size_t n = std::min(step, text.size());
    PV_TRY(parser.Feed(text.substr(0, n)));
    text.remove_prefix(n);
  }
  return Ok{};
}

TEST(ResponseParser, ReadsStatusHeadersAndALengthDelimitedBody) {
  for (size_t step : {size_t{1}, size_t{7}, size_t{4096}}) {
    ResponseParser parser;
    std::string text =
        "HTTP/1.1 202 Accepted\r\nLocation: /v1/executions/abc\r\nContent-Length: 5\r\n"
        "X-Long-Header-Name: some value\r\n\r\nhello";
    ASSERT_TRUE(FeedInSteps(parser, text, step));
    EXPECT_TRUE(parser.complete());
    EXPECT_EQ(parser.response().status, 202);
    EXPECT_EQ(parser.response().Header("location"), "/v1/executions/abc");
    EXPECT_EQ(parser.response().Header("X-LONG-header-name"), "some value");
    EXPECT_EQ(parser.response().Header("retry-after"), std::nullopt);
    EXPECT_EQ(parser.response().body, "hello");
  }
}

TEST(ResponseParser, DechunksAStreamedBodyIntoTheCallback) {
  for (size_t step : {size_t{1}, size_t{3}, size_t{4096}}) {
    std::string received;
    ResponseParser parser([&](std::string_view piece) -> Result<void> {
      received.append(piece);
      return Ok{};
    });
    ASSERT_TRUE(FeedInSteps(parser, kChunked, step));
    EXPECT_TRUE(parser.complete());
    EXPECT_EQ(parser.response().body, "");
    EXPECT_EQ(received, "{\"stream\":\"stdout\",\"data\":\"a\"}\n{\"result\":{\"x\":1}}\n");
  }
}

TEST(ResponseParser, ABodyUntilTheEndOfTheConnection) {
  ResponseParser parser;
  ASSERT_TRUE(parser.Feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial "));
  ASSERT_TRUE(parser.Feed("body"));
  EXPECT_FALSE(parser.complete());
  ASSERT_TRUE(parser.FinishAtEof());
  EXPECT_TRUE(parser.complete());
  EXPECT_EQ(parser.response().body, "partial body");
}

TEST(ResponseParser, RefusesMalformedAndTruncatedResponses) {
  ResponseParser garbage;
  auto fed = garbage.Feed("SMTP ready\r\n\r\n");
  ASSERT_FALSE(fed);
  EXPECT_NE(fed.error().message().find("malformed HTTP response"), std::string::npos);

  ResponseParser truncated;
  ASSERT_TRUE(truncated.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  auto finished = truncated.FinishAtEof();
  ASSERT_FALSE(finished);
  EXPECT_EQ(finished.error().message(), "the connection closed before the response ended");

  ResponseParser too_big(nullptr, 4);
  EXPECT_FALSE(too_big.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"));
}

// Found writing fuzz_daemon_response (its whole-vs-pieces invariant; reproducer
// fuzz/corpus/daemon_response/crash-second-response): a second response in the same read as
// the end of the first was read into the first (its headers and body appended), while one that
// came in a later read was refused. Refused however it arrives; line ends after the end are not a
// message and are ignored both ways.
TEST(ResponseParser, ASecondResponseIsRefusedHoweverTheBytesArrive) {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t step : {size_t{1}, size_t{7}, first.size(), size_t{4096}}) {
    ResponseParser parser;
    auto fed = FeedInSteps(parser, first + second, step);
    ASSERT_FALSE(fed) << "step " << step;
    EXPECT_EQ(fed.error().message(), "bytes after the end of the response") << "step " << step;
    EXPECT_EQ(parser.response().body, "hello");
    EXPECT_EQ(parser.response().Header("x-injected"), std::nullopt);

    ResponseParser crlf;
    ASSERT_TRUE(FeedInSteps(crlf, first + "\r\n", step)) << "step " << step;
    EXPECT_TRUE(crlf.complete());
  }
}

TEST(ResponseParser, ACallbackErrorStopsTheParse) {
  ResponseParser parser(
      [](std::string_view) -> Result<void> { return Failure("print", "stdout", "broken"); });
  auto fed = parser.Feed(kChunked);
  ASSERT_FALSE(fed);
  EXPECT_EQ(fed.error().message(), "print stdout: broken");
}

TEST(LineSplitter, SplitsAcrossPiecesAndPassesALastLineWithoutNewline) {
  std::vector<std::string> lines;
  LineSplitter splitter([&](std::string_view line) -> Result<void> {
    lines.emplace_back(line);
    return Ok{};
  });
  ASSERT_TRUE(splitter.Feed("one\ntw"));
  ASSERT_TRUE(splitter.Feed("o"));
  ASSERT_TRUE(splitter.Feed("\n\nthree\nfo"));
  ASSERT_TRUE(splitter.Finish());
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "", "three", "fo"}));
}

TEST(LineSplitter, RefusesALineOverItsLimit) {
  LineSplitter splitter([](std::string_view) -> Result<void> { return Ok{}; }, 4);
  ASSERT_TRUE(splitter.Feed("abc\n"));
  EXPECT_FALSE(splitter.Feed("abcdef"));
}

// A confused or compromised peer on the daemon's socket: its JSON is depth-checked before
// nlohmann parses it, and its error text reaches the terminal as one printable line.
TEST(DaemonAnswers, AHundredThousandDeepAnswerIsRefusedBeforeParsing) {
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  auto object = DaemonJsonObject(deep);
  ASSERT_FALSE(object.ok());
  EXPECT_EQ(object.error().message(), "JSON nested deeper than 64 levels");
  std::string deep_result = R"({"result": )" + deep + "}";
  auto line = ParseOutputLine(deep_result);
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.error().message(), "a line: JSON nested deeper than 64 levels");
  std::string text = DaemonErrorText(R"({"error": )" + deep + "}");
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_LE(text.size(), 1003u);
}

TEST(DaemonAnswers, TheErrorTextIsOnePrintableLine) {
  EXPECT_EQ(DaemonErrorText(R"({"error": "draining"})"), "draining");
  EXPECT_EQ(DaemonErrorText(R"({"error": "a\nb\u001b[2Jc\u007f"})"), "a?b?[2Jc?");
  EXPECT_EQ(DaemonErrorText("plain text\nsecond line"), "plain text");
  EXPECT_EQ(DaemonErrorText(""), "no error text");
  EXPECT_EQ(DaemonErrorText(R"({"error": ")" + std::string(5000, 'e') + "\"}"),
            std::string(1000, 'e') + "...");
}

TEST(DaemonAnswers, OutputLines) {
  auto line = ParseOutputLine(R"({"stream": "stderr", "data": "x\n"})");
  ASSERT_TRUE(line.ok() && line->has_value());
  EXPECT_EQ((*line)->kind, OutputLine::Kind::kStderr);
  EXPECT_EQ((*line)->data, "x\n");
  line = ParseOutputLine(R"({"result": {"status": "succeeded"}, "result_is_lines": true})");
  ASSERT_TRUE(line.ok() && line->has_value());
  EXPECT_EQ((*line)->kind, OutputLine::Kind::kResult);
  EXPECT_TRUE((*line)->result_is_lines);
  EXPECT_EQ((*line)->result, nlohmann::json({{"status", "succeeded"}}));
  EXPECT_FALSE(ParseOutputLine("").value().has_value());
  EXPECT_EQ(ParseOutputLine("nope").error().message(), "a line: not a JSON object");
  EXPECT_EQ(ParseOutputLine(R"({"stream": "stdin", "data": ""})").error().message(),
            "unknown stream (neither stdout nor stderr)");
  EXPECT_EQ(ParseOutputLine(R"({"data": ""})").error().message(),
            "a line with neither stream/data nor result");
}

TEST(UrlEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(UrlEncode("demo.hello_world-1~"), "demo.hello_world-1~");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

// A socket path under a fresh directory of /tmp (sun_path is short).
class SocketDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/pv-client-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    path_ = dir_ + "/s";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  unique_fd Listen() {
    unique_fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.data(), path_.size());
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(fd.get(), 4), 0);
    return fd;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(SocketDir, NoDaemonIsAnErrorNamingTheSocket) {
  DaemonClient client(path_);
  auto missing = client.Send("GET", "/v1/health", nullptr, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err, ENOENT);
  EXPECT_EQ(missing.error().message(),
            "connect to the daemon at " + path_ + ": No such file or directory");

  // A socket file nobody listens on any more.
  { unique_fd listener = Listen(); }
  auto refused = client.Send("GET", "/v1/health", nullptr, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().err, ECONNREFUSED);
  EXPECT_NE(refused.error().message().find(path_), std::string::npos);
}

TEST_F(SocketDir, SendsTheRequestAndReadsTheAnswer) {
  unique_fd listener = Listen();
  std::string request;
  std::thread server([&] {
    unique_fd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buffer[4096];
    // Until the end of the body: the client sends Content-Length.
    while (request.find("\r\n\r\n") == std::string::npos ||
           request.size() < request.find("\r\n\r\n") + 4 + 13) {
      ssize_t n = read(conn.get(), buffer, sizeof(buffer));
      if (n <= 0) break;
      request.append(buffer, static_cast<size_t>(n));
    }
    std::string answer(kChunked);
    ASSERT_EQ(write(conn.get(), answer.data(), answer.size()), static_cast<ssize_t>(answer.size()));
  });
  DaemonClient client(path_);
  std::string body = R"({"argv":[1]})";
  body += "\n";
  std::vector<std::string> lines;
  LineSplitter splitter([&](std::string_view line) -> Result<void> {
    lines.emplace_back(line);
    return Ok{};
  });
  auto response =
      client.Send("POST", "/v1/exec", &body, {},
                  [&](std::string_view piece) -> Result<void> { return splitter.Feed(piece); });
  server.join();
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(request.rfind("POST /v1/exec HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nContent-Length: 13\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nConnection: close\r\n"), std::string::npos) << request;
  EXPECT_EQ(request.substr(request.size() - 13), body);
}

TEST_F(SocketDir, AnInterruptFdStopsTheWait) {
  unique_fd listener = Listen();
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  unique_fd read_end(pipe_fds[0]);
  unique_fd write_end(pipe_fds[1]);
  ASSERT_EQ(write(write_end.get(), "x", 1), 1);
  DaemonClient client(path_);
  RequestOptions options;
  options.idle_timeout = std::nullopt;
  options.interrupt_fd = read_end.get();
  // The listener accepts nothing and answers nothing: only the interrupt ends the wait.
  auto interrupted = client.Send("GET", "/v1/executions/x/output", nullptr, options);
  ASSERT_FALSE(interrupted);
  EXPECT_EQ(interrupted.error().err, EINTR);
}

}  // namespace
}  // namespace packvisor
