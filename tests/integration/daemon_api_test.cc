// The daemon's HTTP API against a real `packvisor serve` on a real Unix socket (issue 12, "Done
// when"): 50 executions from 10 concurrent clients, the live output stream, 400/404/413/429, 403
// for a uid that is not allowed, slow clients that must not delay a fast one.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/cgroup_fixtures.h"
#include "tests/support/daemon_fixture.h"

namespace packvisor::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A shell action that waits for /pack/gate-NAME (a file the test creates in the pack directory,
// which the sandbox sees through its read-only bind), printing `before` first and `after` last.
constexpr char kGatedScript[] =
    "echo before\n"
    "gate=/pack/gate-$(cat | sed -n 's/.*\"gate\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
    "while [ ! -e \"$gate\" ]; do sleep 0.02; done\n"
    "echo after\n";

class DaemonApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_.WriteSimpleAction("api", "echo", "shell", "echo.sh", "cat\n",
                             "parameters:\n  n: {type: integer, required: true}\n"
                             "output_format: json\n");
    world_.WriteSimpleAction("api", "gated", "shell", "gated.sh", kGatedScript,
                             "parameters:\n  gate: {type: string, required: true}\n");
    world_.WriteSimpleAction("api", "big", "shell", "big.sh",
                             "head -c 4000000 /dev/zero | tr '\\0' x\n");
  }
  std::string Toml(const std::string& server) const {
    return "[execution]\nkill_grace_seconds = 1\n[sandbox]\ncgroup_parent = \"" + cgroup_.name() +
           "\"\n[server]\n" + server;
  }
  void OpenGate(const std::string& gate) const { world_.WriteFile("packs/api/gate-" + gate, ""); }
  RunWorld world_;
  ScopedCgroupParent cgroup_;
};

TEST_F(DaemonApiTest, FiftyExecutionsFromTenClientsAllCorrectNoneLost) {
  DaemonUnderTest daemon(world_, Toml("max_concurrent = 4\nmax_queued = 64\n"));
  std::mutex mutex;
  std::map<int, nlohmann::json> results;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int client = 0; client < 10; ++client) {
    clients.emplace_back([&, client] {
      for (int i = 0; i < 5; ++i) {
        int n = client * 5 + i;
        HttpResponse r = SubmitAction(daemon.socket(), "api.echo", {{"n", n}}, true);
        std::lock_guard lock(mutex);
        if (r.status != 200) {
          failures.push_back(std::to_string(n) + ": " + std::to_string(r.status) + " " + r.body);
          continue;
        }
        results[n] = r.Json();
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_THAT(failures, ::testing::IsEmpty());
  ASSERT_EQ(results.size(), 50u);
  std::set<std::string> ids;
  for (const auto& [n, result] : results) {
    EXPECT_EQ(result["status"], "succeeded") << result.dump();
    EXPECT_EQ(result["result"]["n"], n) << result.dump();
    ids.insert(result["execution_id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 50u);
  // None lost: every one is listed, final.
  HttpResponse list = HttpGet(daemon.socket(), "/v1/executions?limit=1000");
  ASSERT_EQ(list.status, 200) << list.body;
  std::set<std::string> listed;
  nlohmann::json listing = list.Json();
  for (const nlohmann::json& row : listing["executions"]) {
    EXPECT_EQ(row["status"], "succeeded") << row.dump();
    EXPECT_TRUE(row.contains("finished_at")) << row.dump();
    listed.insert(row["execution_id"].get<std::string>());
  }
  EXPECT_EQ(listed, ids) << list.body.substr(0, 2000);
  HttpResponse metrics = HttpGet(daemon.socket(), "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("packvisor_executions_total{status=\"succeeded\"} 50\n"));
}

TEST_F(DaemonApiTest, OutputStreamsLiveInOrderAndEndsWithTheResult) {
  DaemonUnderTest daemon(world_, Toml(""));
  HttpResponse accepted = SubmitAction(daemon.socket(), "api.gated", {{"gate", "live"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  std::string id = accepted.Json()["execution_id"];
  EXPECT_EQ(accepted.Header("location"), "/v1/executions/" + id);
  EXPECT_EQ(accepted.Json()["status"], "queued");

  unique_fd fd = ConnectUnix(daemon.socket());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), RequestText("GET", "/v1/executions/" + id + "/output")));
  ResponseReader reader(fd.get());
  HttpResponse head;
  ASSERT_TRUE(reader.ReadHead(&head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-type"), "application/x-ndjson");
  // "before" arrives while the action is still blocked on its gate: the stream is live.
  auto first = reader.ReadLine();
  ASSERT_TRUE(first);
  EXPECT_EQ(nlohmann::json::parse(*first),
            nlohmann::json({{"stream", "stdout"}, {"data", "before\n"}}));
  HttpResponse running = HttpGet(daemon.socket(), "/v1/executions/" + id);
  EXPECT_EQ(running.Json()["status"], "running") << running.body;
  EXPECT_TRUE(running.Json().contains("started_at")) << running.body;
  OpenGate("live");
  auto second = reader.ReadLine();
  ASSERT_TRUE(second);
  EXPECT_EQ(nlohmann::json::parse(*second),
            nlohmann::json({{"stream", "stdout"}, {"data", "after\n"}}));
  auto last = reader.ReadLine();
  ASSERT_TRUE(last);
  nlohmann::json result = nlohmann::json::parse(*last);
  EXPECT_EQ(result["result"]["status"], "succeeded") << *last;
  EXPECT_EQ(result["result"]["stdout"], "before\nafter\n");
  EXPECT_FALSE(reader.ReadLine()) << "nothing after the result line";

  // Finished: stdout, stderr, then the result, at once.
  HttpResponse replay = HttpGet(daemon.socket(), "/v1/executions/" + id + "/output");
  ASSERT_EQ(replay.status, 200);
  std::vector<std::string> lines = Lines(replay.body);
  ASSERT_EQ(lines.size(), 3u) << replay.body;
  EXPECT_EQ(nlohmann::json::parse(lines[0])["data"], "before\nafter\n");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["stream"], "stderr");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["result"]["execution_id"], id);
}

// A stream stays open while the action prints nothing for longer than the connection deadlines
// (the test has to outwait them: what it checks is that no deadline fires).
TEST_F(DaemonApiTest, QuietStreamOutlivesTheDeadlines) {
  DaemonUnderTest daemon(world_, Toml("read_timeout_seconds = 1\nwrite_timeout_seconds = 1\n"));
  HttpResponse accepted = SubmitAction(daemon.socket(), "api.gated", {{"gate", "quiet"}});
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  std::string id = accepted.Json()["execution_id"];
  unique_fd fd = ConnectUnix(daemon.socket());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), RequestText("GET", "/v1/executions/" + id + "/output")));
  ResponseReader reader(fd.get());
  HttpResponse head;
  ASSERT_TRUE(reader.ReadHead(&head));
  ASSERT_TRUE(reader.ReadLine());  // "before"
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  OpenGate("quiet");
  auto after = reader.ReadLine();
  ASSERT_TRUE(after) << "the stream was cut";
  EXPECT_EQ(nlohmann::json::parse(*after)["data"], "after\n");
  auto last = reader.ReadLine();
  ASSERT_TRUE(last);
  EXPECT_EQ(nlohmann::json::parse(*last)["result"]["status"], "succeeded");
}

TEST_F(DaemonApiTest, BadRequestsGet400WithTheField) {
  DaemonUnderTest daemon(world_, Toml(""));
  auto post = [&](const std::string& body) {
    return HttpRequest(daemon.socket(), "POST", "/v1/executions", body);
  };
  HttpResponse r = post("{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("not valid JSON"));
  r = post("[1]");
  EXPECT_EQ(r.status, 400);
  r = post(R"({"action_ref": 3})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"action_ref\""));
  r = post(R"({"action_ref": "api.echo", "parameters": {"n": 1}, "colour": "red"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"colour\""));
  r = post(R"({"action_ref": "api.echo", "parameters": {"n": 1}, "timeout_seconds": -1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"timeout_seconds\""));
  r = post(R"({"action_ref": "api.echo", "parameters": []})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"parameters\""));
  // What `run` rejects: the same message, before anything is accepted.
  r = post(R"({"action_ref": "api.echo", "parameters": {"n": "three"}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"n\""));
  r = post(R"({"action_ref": "api.echo"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("n"));
  HttpResponse list = HttpGet(daemon.socket(), "/v1/executions?limit=5000");
  EXPECT_EQ(list.status, 400);
  EXPECT_THAT(list.Json()["error"].get<std::string>(), HasSubstr("limit"));
  // Nothing was accepted.
  list = HttpGet(daemon.socket(), "/v1/executions");
  EXPECT_EQ(list.Json()["executions"].size(), 0u) << list.body;
}

// nlohmann-json's copies, comparisons and dumps recurse per level, and so did WipeJson over every
// parsed body: a body of 500,000 nested arrays, under the default max_body_bytes (1 MiB),
// crashed the daemon (SIGSEGV, stack overflow in WipeJson). The depth is now checked on the text
// before anything parses it, for every endpoint with a body, and the daemon goes on serving.
TEST_F(DaemonApiTest, AHundredThousandDeepBodyIs400NotACrash) {
  DaemonUnderTest daemon(world_, Toml(""));
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  std::string in_parameters = R"({"action_ref": "api.echo", "parameters": {"n": )" + deep + "}}";
  std::string megabyte_argv =
      R"({"argv": )" + std::string(500'000, '[') + std::string(500'000, ']') + "}";
  for (const auto& [target, body] :
       std::vector<std::pair<std::string, std::string>>{{"/v1/executions", in_parameters},
                                                        {"/v1/exec", deep},
                                                        {"/v1/exec", megabyte_argv},
                                                        {"/v1/envs/api", deep}}) {
    HttpResponse r = HttpRequest(daemon.socket(), "POST", target, body);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_EQ(r.body, "{\"error\":\"request body: JSON nested deeper than 64 levels\"}\n");
  }
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").status, 200);
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/executions").Json()["executions"].size(), 0u);
}

TEST_F(DaemonApiTest, UnknownActionOrExecutionIs404) {
  DaemonUnderTest daemon(world_, Toml(""));
  HttpResponse r = SubmitAction(daemon.socket(), "api.nope");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("nope"));
  r = SubmitAction(daemon.socket(), "nopack.echo");
  EXPECT_EQ(r.status, 404) << r.body;
  const std::string unknown = "/v1/executions/00000000-0000-4000-8000-000000000000";
  EXPECT_EQ(HttpGet(daemon.socket(), unknown).status, 404);
  EXPECT_EQ(HttpGet(daemon.socket(), unknown + "/output").status, 404);
  EXPECT_EQ(HttpDelete(daemon.socket(), unknown).status, 404);
  EXPECT_EQ(HttpPost(daemon.socket(), "/v1/envs/nopack", nlohmann::json::object()).status, 404);
  EXPECT_EQ(HttpGet(daemon.socket(), "/v2/anything").status, 404);
}

// A body over server.max_body_bytes: 413 with the one-line JSON error, decided from its
// Content-Length (or, chunked, from what arrived), counted in /metrics like every refusal.
TEST_F(DaemonApiTest, BodyOverMaxBodyBytesIs413) {
  DaemonUnderTest daemon(world_, Toml("max_body_bytes = 1024\n"));
  auto too_large = [&] {
    std::string metrics = HttpGet(daemon.socket(), "/metrics").body;
    std::smatch m;
    std::regex line("packvisor_requests_rejected_total\\{reason=\"too_large\"\\} ([0-9]+)");
    return std::regex_search(metrics, m, line) ? std::stoi(m[1].str()) : -1;
  };
  EXPECT_EQ(too_large(), 0);
  std::string text = nlohmann::json({{"action_ref", "api.echo"},
                                     {"parameters", {{"n", 1}, {"pad", std::string(1500, 'x')}}}})
                         .dump();
  HttpResponse r = HttpRequest(daemon.socket(), "POST", "/v1/executions", text);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_THAT(r.Header("content-type"), HasSubstr("application/json"));
  ASSERT_NO_THROW(r.Json()) << r.body;
  EXPECT_EQ(r.Json(),
            nlohmann::json({{"error", "request body: " + std::to_string(text.size()) +
                                          " bytes is over server.max_body_bytes (1024)"}}));
  EXPECT_EQ(r.body.find('\n'), r.body.size() - 1) << "one line: " << r.body;
  EXPECT_EQ(too_large(), 1);

  // Chunked: no Content-Length, the chunks grow past the limit.
  unique_fd fd = ConnectUnix(daemon.socket());
  ASSERT_TRUE(fd);
  std::string chunked =
      "POST /v1/executions HTTP/1.1\r\nHost: packvisor\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(0x200, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(SendAll(fd.get(), chunked));
  ResponseReader reader(fd.get());
  HttpResponse c;
  ASSERT_TRUE(reader.ReadHead(&c));
  while (auto piece = reader.ReadBodyPiece()) c.body += *piece;
  EXPECT_EQ(c.status, 413) << c.body;
  EXPECT_EQ(c.Json()["error"], "request body: 1536 bytes is over server.max_body_bytes (1024)");
  EXPECT_EQ(too_large(), 2);

  // At the limit it is read (and refused for what it says, not for its size).
  std::string at_limit(1024, ' ');
  at_limit.replace(0, 2, "[]");
  r = HttpRequest(daemon.socket(), "POST", "/v1/executions", at_limit);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(too_large(), 2);
  // Still serving.
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").status, 200);
}

TEST_F(DaemonApiTest, FullQueueIs429WithRetryAfter) {
  DaemonUnderTest daemon(world_, Toml("max_concurrent = 1\nmax_queued = 1\n"));
  HttpResponse running = SubmitAction(daemon.socket(), "api.gated", {{"gate", "q"}});
  ASSERT_EQ(running.status, 202) << running.body;
  HttpResponse queued = SubmitAction(daemon.socket(), "api.gated", {{"gate", "q"}});
  ASSERT_EQ(queued.status, 202) << queued.body;
  HttpResponse refused = SubmitAction(daemon.socket(), "api.gated", {{"gate", "q"}});
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_FALSE(refused.Header("retry-after").empty());
  EXPECT_THAT(refused.Json()["error"].get<std::string>(), HasSubstr("max_queued"));
  HttpResponse health = HttpGet(daemon.socket(), "/v1/health");
  EXPECT_EQ(health.Json(), nlohmann::json({{"status", "ok"}, {"running", 1}, {"queued", 1}}));
  OpenGate("q");
  for (const HttpResponse* accepted : {&running, &queued}) {
    std::string id = accepted->Json()["execution_id"];
    HttpResponse output = HttpGet(daemon.socket(), "/v1/executions/" + id + "/output");
    std::vector<std::string> lines = Lines(output.body);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(nlohmann::json::parse(lines.back())["result"]["status"], "succeeded");
  }
  EXPECT_THAT(HttpGet(daemon.socket(), "/metrics").body,
              HasSubstr("packvisor_requests_rejected_total{reason=\"queue_full\"} 1\n"));
}

// Connects as uid/gid 65534 (a forked child that drops to it) and returns the status of
// GET /v1/health, or -errno when it could not connect.
int StatusAsNobody(const std::string& socket, const std::string& method,
                   const std::string& target) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    int status = -1;
    if (setgroups(0, nullptr) == 0 && setgid(65534) == 0 && setuid(65534) == 0) {
      unique_fd fd = ConnectUnix(socket);
      if (!fd) {
        status = -errno;
      } else if (SendAll(fd.get(), RequestText(method, target, method == "POST" ? "{}" : ""))) {
        ResponseReader reader(fd.get());
        HttpResponse response;
        status = reader.ReadHead(&response) ? response.status : 0;
      }
    }
    ssize_t written = write(pipe_fds[1], &status, sizeof(status));
    _exit(written == sizeof(status) ? 0 : 1);
  }
  close(pipe_fds[1]);
  int status = -1;
  ssize_t got = read(pipe_fds[0], &status, sizeof(status));
  close(pipe_fds[0]);
  waitpid(child, nullptr, 0);
  return got == sizeof(status) ? status : -1;
}

TEST_F(DaemonApiTest, UidNotAllowedGets403AndIsLogged) {
  // The socket's group lets 65534 connect; only the allow lists decide.
  DaemonUnderTest daemon(world_, Toml("socket_group = \"65534\"\n"));
  EXPECT_EQ(StatusAsNobody(daemon.socket(), "GET", "/v1/health"), 403);
  EXPECT_EQ(StatusAsNobody(daemon.socket(), "POST", "/v1/executions"), 403);
  EXPECT_THAT(daemon.Log(), HasSubstr("uid 65534"));
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").status, 200) << "root is always allowed";
}

TEST_F(DaemonApiTest, AllowedUidIsServedButNeverRawExec) {
  DaemonUnderTest daemon(world_, Toml("socket_group = \"65534\"\nallowed_uids = [65534]\n"));
  EXPECT_EQ(StatusAsNobody(daemon.socket(), "GET", "/v1/health"), 200);
  EXPECT_EQ(StatusAsNobody(daemon.socket(), "POST", "/v1/exec"), 403);
}

TEST_F(DaemonApiTest, SocketIsGroupOnlyAndOthersCannotConnect) {
  DaemonUnderTest daemon(world_, Toml(""));
  struct stat st {};
  ASSERT_EQ(lstat(daemon.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(StatusAsNobody(daemon.socket(), "GET", "/v1/health"), -EACCES);
}

TEST_F(DaemonApiTest, SlowClientsDoNotDelayAFastOne) {
  DaemonUnderTest daemon(world_, Toml(""));
  // A finished execution with a 4 MB output, for the client that never reads.
  HttpResponse big = SubmitAction(daemon.socket(), "api.big", nlohmann::json::object(), true);
  ASSERT_EQ(big.status, 200);
  std::string big_id = big.Json()["execution_id"];

  // Slow client 1: half a request, then silence.
  unique_fd half = ConnectUnix(daemon.socket());
  ASSERT_TRUE(half);
  ASSERT_TRUE(SendAll(half.get(),
                      "POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  // Slow client 2: asks for the large output and never reads it.
  unique_fd never_reads = ConnectUnix(daemon.socket());
  ASSERT_TRUE(never_reads);
  int small = 4096;
  setsockopt(never_reads.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ASSERT_TRUE(
      SendAll(never_reads.get(), RequestText("GET", "/v1/executions/" + big_id + "/output")));

  // The fast client is served completely, execution included, while both are still stalled.
  HttpResponse fast = SubmitAction(daemon.socket(), "api.echo", {{"n", 7}}, true);
  ASSERT_EQ(fast.status, 200) << fast.body;
  EXPECT_EQ(fast.Json()["result"]["n"], 7);
  EXPECT_EQ(HttpGet(daemon.socket(), "/v1/health").status, 200);

  char byte;
  EXPECT_EQ(recv(half.get(), &byte, 1, MSG_DONTWAIT), -1) << "the half request got an answer";
  EXPECT_EQ(errno, EAGAIN);
  // The large answer is stuck in the socket buffers: most of it has not left the daemon.
  int pending = 0;
  ASSERT_EQ(ioctl(never_reads.get(), FIONREAD, &pending), 0);
  EXPECT_LT(pending, 4000000);
}

TEST_F(DaemonApiTest, ConnectionsBeyondMaxConnectionsAreShutDown) {
  DaemonUnderTest daemon(world_, Toml("max_connections = 2\n"));
  unique_fd first = ConnectUnix(daemon.socket());
  unique_fd second = ConnectUnix(daemon.socket());
  ASSERT_TRUE(first && second);
  // Both idle connections are counted once the daemon has accepted them: a third is refused.
  unique_fd third = ConnectUnix(daemon.socket());
  ASSERT_TRUE(third);
  ASSERT_TRUE(SendAll(third.get(), RequestText("GET", "/v1/health")) || errno == EPIPE);
  ResponseReader reader(third.get());
  HttpResponse refused;
  EXPECT_FALSE(reader.ReadHead(&refused)) << "got " << refused.status;
  // The first two are still served.
  ASSERT_TRUE(SendAll(first.get(), RequestText("GET", "/v1/health")));
  ResponseReader first_reader(first.get());
  HttpResponse served;
  ASSERT_TRUE(first_reader.ReadHead(&served));
  EXPECT_EQ(served.status, 200);
  // Closed connections free their slots.
  first.reset();
  second.reset();
  third.reset();
  ASSERT_TRUE(
      WaitUntil([&] { return HttpGet(daemon.socket(), "/v1/health").status == 200; }, 30000));
  EXPECT_THAT(HttpGet(daemon.socket(), "/metrics").body,
              HasSubstr("packvisor_requests_rejected_total{reason=\"too_many_connections\"} "));
  EXPECT_THAT(HttpGet(daemon.socket(), "/metrics").body,
              Not(HasSubstr("{reason=\"too_many_connections\"} 0\n")));
}

TEST_F(DaemonApiTest, RawExecIsRootOnlyAndRuns) {
  DaemonUnderTest daemon(world_, Toml(""));
  HttpResponse r =
      HttpPost(daemon.socket(), "/v1/exec?wait=true", {{"argv", {"/bin/sh", "-c", "echo raw"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["status"], "succeeded") << r.body;
  EXPECT_EQ(r.Json()["stdout"], "raw\n");
  r = HttpPost(daemon.socket(), "/v1/exec", {{"argv", nlohmann::json::array()}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"argv\""));
  r = HttpPost(daemon.socket(), "/v1/exec", {{"argv", {"/bin/true"}}, {"network", "wifi"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.Json()["error"].get<std::string>(), HasSubstr("\"network\""));
}

TEST_F(DaemonApiTest, HealthAndMetricsAreWellFormed) {
  DaemonUnderTest daemon(world_, Toml(""));
  HttpResponse health = HttpGet(daemon.socket(), "/v1/health");
  EXPECT_EQ(health.Json(), nlohmann::json({{"status", "ok"}, {"running", 0}, {"queued", 0}}));
  HttpResponse metrics = HttpGet(daemon.socket(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.Header("content-type"), HasSubstr("text/plain"));
  for (const char* name :
       {"packvisor_executions_total{status=\"succeeded\"} 0", "packvisor_queue_depth 0",
        "packvisor_executions_running 0", "packvisor_launch_latency_seconds_bucket{le=\"+Inf\"} 0",
        "packvisor_launch_latency_seconds_count 0",
        "packvisor_env_builds_total{result=\"built\"} 0",
        "packvisor_requests_rejected_total{reason=\"forbidden\"} 0",
        "packvisor_requests_rejected_total{reason=\"too_large\"} 0",
        "packvisor_warm_pool_claims_total{result=\"hit\"} 0",
        "packvisor_warm_pool_claims_total{result=\"miss\"} 0"}) {
    EXPECT_THAT(metrics.body, HasSubstr(std::string(name) + "\n"));
  }
}

// The value of the metric line `name` (with its labels) in /metrics; -1 when absent.
double MetricValue(const std::string& socket, const std::string& name) {
  std::string body = HttpGet(socket, "/metrics").body;
  std::string prefix = name + " ";
  for (const std::string& line : Lines(body)) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  }
  return -1;
}

// POST /v1/exec's spec has the exec template's key: with the pool refilled, a raw /bin/true runs
// in a prepared sandbox (a hit). Every launch through the pool is counted once, hit or miss, and
// the launch latency (accept -> the action's release) is observed once per released action.
TEST_F(DaemonApiTest, RawExecClaimsAPreparedSandboxAndEveryLaunchIsCounted) {
  DaemonUnderTest daemon(world_, Toml("warm_sandboxes = 1\n"));
  const std::string hits = "packvisor_warm_pool_claims_total{result=\"hit\"}";
  const std::string misses = "packvisor_warm_pool_claims_total{result=\"miss\"}";
  int launches = 0;
  // The pool fills in the background after start: a request may find it empty (a miss) until then.
  EXPECT_TRUE(WaitUntil(
      [&] {
        HttpResponse r = HttpPost(daemon.socket(), "/v1/exec?wait=true", {{"argv", {"/bin/true"}}});
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.Json().value("status", ""), "succeeded") << r.body;
        ++launches;
        return MetricValue(daemon.socket(), hits) >= 1;
      },
      60000))
      << "no POST /v1/exec ever claimed a prepared sandbox; daemon log:\n"
      << daemon.Log();
  EXPECT_EQ(MetricValue(daemon.socket(), hits) + MetricValue(daemon.socket(), misses), launches);
  EXPECT_EQ(MetricValue(daemon.socket(), "packvisor_launch_latency_seconds_count"), launches);
  // An action of a pack without a template of its own: a miss, launched fresh.
  HttpResponse action = SubmitAction(daemon.socket(), "api.echo", {{"n", 1}}, true);
  EXPECT_EQ(action.Json().value("status", ""), "succeeded") << action.body;
  EXPECT_EQ(MetricValue(daemon.socket(), hits) + MetricValue(daemon.socket(), misses),
            launches + 1);
  EXPECT_EQ(MetricValue(daemon.socket(), "packvisor_launch_latency_seconds_count"), launches + 1);
  // A refused request is never released: not in the histogram.
  EXPECT_EQ(SubmitAction(daemon.socket(), "api.nope").status, 404);
  EXPECT_EQ(MetricValue(daemon.socket(), "packvisor_launch_latency_seconds_count"), launches + 1);
}

}  // namespace
}  // namespace packvisor::testing
