// Keep-alive load client for `packvisor serve` (bench/daemon_bench.sh): C threads, each with one
// HTTP/1.1 connection to the daemon's Unix socket, each sending its share of N requests one after
// the other (a request is sent when the previous response has been read) and timing each request
// from the first byte sent to the last byte of the response. Responses are parsed with Debian's
// http-parser (the library packvisor's own client uses); every response must have the expected
// status code and, when it is a result object, "status": "succeeded", or the run fails.
//
//   daemon_client SOCKET METHOD PATH BODY CLIENTS REQUESTS [WARMUP [GAP_MS]]
//
// Prints one JSON line: {"requests", "clients", "errors", "wall_s", "per_s", "p50_ms",
// "p90_ms", "p99_ms", "mean_ms", "max_ms"}. WARMUP requests per client are sent first and not
// counted. GAP_MS (default 0) is a pause after each request: the latency of a request that finds
// the daemon idle (its warm pool refilled), rather than of back-to-back requests.
#include <http_parser.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Response {
  int status = 0;
  std::string body;
  bool complete = false;
  bool keep_alive = true;
};

int OnBody(http_parser* parser, const char* at, size_t length) {
  static_cast<Response*>(parser->data)->body.append(at, length);
  return 0;
}

int OnMessageComplete(http_parser* parser) {
  auto* response = static_cast<Response*>(parser->data);
  response->status = static_cast<int>(parser->status_code);
  response->keep_alive = http_should_keep_alive(parser) != 0;
  response->complete = true;
  return 0;
}

int Connect(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Sends one request on `fd` and reads its whole response.
bool Exchange(int fd, const std::string& request, Response& response) {
  if (!WriteAll(fd, request)) return false;
  http_parser_settings settings{};
  settings.on_body = OnBody;
  settings.on_message_complete = OnMessageComplete;
  http_parser parser{};
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &response;
  char buffer[65536];
  while (!response.complete) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    size_t parsed = http_parser_execute(&parser, &settings, buffer, static_cast<size_t>(n));
    if (parser.http_errno != HPE_OK || parsed != static_cast<size_t>(n)) return false;
  }
  return true;
}

bool Acceptable(const Response& response) {
  if (response.status != 200 && response.status != 202) return false;
  if (response.status == 202) return true;
  try {
    auto body = nlohmann::json::parse(response.body);
    return !body.contains("status") || body["status"] == "succeeded" || body["status"] == "ok";
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(
        stderr,
        "usage: daemon_client SOCKET METHOD PATH BODY CLIENTS REQUESTS [WARMUP [GAP_MS]]\n");
    return 2;
  }
  const std::string socket_path = argv[1];
  const std::string method = argv[2];
  const std::string path = argv[3];
  const std::string body = argv[4];
  const int clients = std::max(1, std::atoi(argv[5]));
  const int requests = std::max(1, std::atoi(argv[6]));
  const int warmup = argc > 7 ? std::max(0, std::atoi(argv[7])) : 0;
  const int gap_ms = argc > 8 ? std::max(0, std::atoi(argv[8])) : 0;

  std::string request = method + " " + path + " HTTP/1.1\r\nHost: packvisor\r\n";
  if (!body.empty()) {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;

  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> errors{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start;
  for (int c = 0; c < clients; ++c) {
    const int share = requests / clients + (c < requests % clients ? 1 : 0);
    threads.emplace_back([&, c, share] {
      int fd = Connect(socket_path);
      auto one = [&](bool timed) {
        if (fd < 0) fd = Connect(socket_path);
        Response response;
        Clock::time_point begin = Clock::now();
        bool ok = fd >= 0 && Exchange(fd, request, response);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
        if (!ok || !Acceptable(response)) {
          if (errors.fetch_add(1) < 3) {
            std::fprintf(stderr, "daemon_client: bad response %d: %.300s\n", response.status,
                         response.body.c_str());
          }
        } else if (timed) {
          latencies[c].push_back(ms);
        }
        if (!ok || !response.keep_alive) {
          if (fd >= 0) ::close(fd);
          fd = -1;
        }
      };
      for (int i = 0; i < warmup; ++i) one(false);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < share; ++i) {
        one(true);
        if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
      }
      if (fd >= 0) ::close(fd);
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = Clock::now();
  go.store(true);
  for (auto& thread : threads) thread.join();
  double wall_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  for (auto& per_client : latencies) all.insert(all.end(), per_client.begin(), per_client.end());
  std::sort(all.begin(), all.end());
  auto percentile = [&](double p) {
    if (all.empty()) return 0.0;
    size_t index = static_cast<size_t>(p * static_cast<double>(all.size() - 1) + 0.5);
    return all[std::min(index, all.size() - 1)];
  };
  double sum = 0;
  for (double v : all) sum += v;
  nlohmann::json out = {{"requests", all.size()},
                        {"clients", clients},
                        {"errors", errors.load()},
                        {"wall_s", wall_s},
                        {"per_s", wall_s > 0 ? static_cast<double>(all.size()) / wall_s : 0},
                        {"p50_ms", percentile(0.50)},
                        {"p90_ms", percentile(0.90)},
                        {"p99_ms", percentile(0.99)},
                        {"mean_ms", all.empty() ? 0 : sum / static_cast<double>(all.size())},
                        {"max_ms", all.empty() ? 0 : all.back()}};
  std::printf("%s\n", out.dump().c_str());
  return errors.load() == 0 ? 0 : 1;
}
