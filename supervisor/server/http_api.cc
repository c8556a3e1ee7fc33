#include "supervisor/server/http_api.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "sandbox/warm_pool.h"
#include "supervisor/executions/environments.h"
#include "supervisor/executions/request_body.h"

namespace packvisor {

struct HttpApi::Peer {
  bool known = false;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// One client connection. evhttp owns it; we hold a reference on its bufferevent (so that the
// pointer stays a key until the sweep sees that evhttp let go of it).
struct HttpApi::Connection {
  bufferevent* bev = nullptr;
  Peer peer;
  bool refused = false;              // beyond server.max_connections: shut down at once
  bool close_hooked = false;         // evhttp_connection_set_closecb done
  std::shared_ptr<Pending> pending;  // the request we are holding on it, if any
};

// A request we answer later: ?wait=true, DELETE, an output stream, an environment build.
struct HttpApi::Pending {
  evhttp_request* req = nullptr;
  bufferevent* bev = nullptr;  // its connection's key
  bool streaming = false;      // evhttp_send_reply_start done
  bool closed = false;         // the connection went away: req is detached, only to be freed
  bool done = false;
  std::string execution_id;
  uint64_t token = 0;  // the scheduler subscription
};

namespace {

constexpr int kHttpTooManyRequests = 429;

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void SendJson(evhttp_request* req, int code, const nlohmann::json& body) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evbuffer* out = evbuffer_new();
  std::string text = Dump(body) + "\n";
  evbuffer_add(out, text.data(), text.size());
  evhttp_send_reply(req, code, ReasonPhrase(code), out);
  evbuffer_free(out);
}

// The request body, and the body's bytes in libevent's buffer overwritten: it may hold secrets.
// The caller wipes the returned text once parsed.
std::string TakeBody(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t length = evbuffer_get_length(in);
  std::string text;
  if (length == 0) return text;
  unsigned char* bytes = evbuffer_pullup(in, static_cast<ev_ssize_t>(length));
  if (bytes == nullptr) return text;
  text.assign(reinterpret_cast<const char*>(bytes), length);
  explicit_bzero(bytes, length);
  evbuffer_drain(in, length);
  return text;
}

// The query string's value of `name`, or nullopt.
std::optional<std::string> QueryValue(evhttp_request* req, const char* name) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* query = uri != nullptr ? evhttp_uri_get_query(uri) : nullptr;
  if (query == nullptr) return std::nullopt;
  evkeyvalq params{};
  if (evhttp_parse_query_str(query, &params) != 0) return std::nullopt;
  std::optional<std::string> value;
  if (const char* found = evhttp_find_header(&params, name)) value = found;
  evhttp_clear_headers(&params);
  return value;
}

bool WaitRequested(evhttp_request* req) {
  auto wait = QueryValue(req, "wait");
  return wait && (*wait == "true" || *wait == "1");
}

std::string NdjsonLine(const nlohmann::json& value) { return Dump(value) + "\n"; }

// libevent 2.1 answers a body over evhttp's max_body_size itself, with an HTML page, and offers a
// server no hook before the body is read (no header callback on incoming requests, no error
// callback: both came in 2.2). So evhttp's cap is twice server.max_body_bytes, and a body between
// the two reaches Handle(), which answers the one-line JSON 413 from its Content-Length (or, when
// chunked, its size). Only a body over twice the limit gets evhttp's page (docs/server.md).
uint64_t TooLargeCap(uint64_t max_body_bytes) { return max_body_bytes * 2; }

// The size of `req`'s body: its Content-Length when it declared one, else what arrived (chunked).
uint64_t BodySize(evhttp_request* req) {
  uint64_t size = evbuffer_get_length(evhttp_request_get_input_buffer(req));
  const char* declared =
      evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Length");
  if (declared != nullptr) {
    char* end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(declared, &end, 10);
    if (errno == 0 && end != declared && *end == '\0') size = std::max<uint64_t>(size, value);
  }
  return size;
}

// The output stream's last line: the result, and beside it whether its "result" holds the lines of
// a jsonl output (docs/api.md, "What the output stream's result line may carry").
std::string ResultLine(const nlohmann::json& result, bool result_is_lines) {
  nlohmann::json line = {{"result", result}};
  if (result_is_lines) line["result_is_lines"] = true;
  return NdjsonLine(line);
}

void SendChunk(evhttp_request* req, const std::string& text) {
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, text.data(), text.size());
  evhttp_send_reply_chunk(req, out);
  evbuffer_free(out);
}

}  // namespace

HttpApi::HttpApi(event_base* base, Scheduler& scheduler, ExecutionStore& store,
                 ContextSource context)
    : base_(base), scheduler_(scheduler), store_(store), context_(std::move(context)) {}

HttpApi::~HttpApi() {
  // Nothing may call back into this object any more: subscriptions first, then the builders.
  for (auto& [req, pending] : pending_) {
    if (pending->token != 0) scheduler_.Unsubscribe(pending->execution_id, pending->token);
    pending->token = 0;
  }
  for (std::thread& builder : builders_) builder.join();
  pending_.clear();  // evhttp_free below frees the requests still attached to connections
  for (auto& [bev, connection] : connections_) connection->pending.reset();
  if (sweep_event_ != nullptr) event_free(sweep_event_);
  if (post_event_ != nullptr) event_free(post_event_);
  if (http_ != nullptr) evhttp_free(http_);
  for (auto& [bev, connection] : connections_) bufferevent_decref(bev);
}

Result<void> HttpApi::Start(unique_fd listening, const ServerConfig& server) {
  post_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!post_fd_) return ErrnoError("eventfd", "the HTTP loop's wake-up");
  post_event_ = event_new(base_, post_fd_.get(), EV_READ | EV_PERSIST, &HttpApi::OnPosted, this);
  sweep_event_ = event_new(
      base_, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* self) { static_cast<HttpApi*>(self)->SweepConnections(); },
      this);
  if (post_event_ == nullptr || sweep_event_ == nullptr || event_add(post_event_, nullptr) != 0) {
    return Failure("start", "the HTTP loop", "libevent could not add an event");
  }
  struct timeval second {
    1, 0
  };
  event_add(sweep_event_, &second);

  http_ = evhttp_new(base_);
  if (http_ == nullptr) return Failure("start", "the HTTP server", "evhttp_new failed");
  evhttp_set_bevcb(http_, &HttpApi::NewConnection, this);
  evhttp_set_gencb(http_, &HttpApi::OnRequest, this);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
  // Beyond evhttp's own cap (TooLargeCap): answer 413 to a client still sending its body
  // instead of resetting it.
  evhttp_set_flags(http_, EVHTTP_SERVER_LINGERING_CLOSE);
  Configure(server);
  bound_ = evhttp_accept_socket_with_handle(http_, listening.get());
  if (bound_ == nullptr) return Failure("listen", server.socket, "evhttp could not accept on it");
  listening.release();  // the bound socket closes it
  return Ok{};
}

void HttpApi::Configure(const ServerConfig& server) {
  server_ = server;
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(TooLargeCap(server.max_body_bytes)));
  // libevent 2.1 has one deadline per connection, for reading a request and for writing an
  // answer alike: the larger of the two keys (docs/server.md).
  int64_t seconds = std::max(server.read_timeout_seconds, server.write_timeout_seconds);
  struct timeval timeout {
    static_cast<time_t>(seconds), 0
  };
  evhttp_set_timeout_tv(http_, &timeout);
}

void HttpApi::SetDraining() { draining_ = true; }

void HttpApi::StopListening() {
  if (bound_ != nullptr) evhttp_del_accept_socket(http_, bound_);
  bound_ = nullptr;
}

bool HttpApi::Busy() const {
  if (!pending_.empty()) return true;
  for (const auto& [bev, connection] : connections_) {
    bufferevent_event_cb event_cb = nullptr;
    bufferevent_getcb(bev, nullptr, nullptr, &event_cb, nullptr);
    if (event_cb != nullptr && evbuffer_get_length(bufferevent_get_output(bev)) > 0) return true;
  }
  return false;
}

void HttpApi::Post(std::function<void()> task) {
  {
    std::lock_guard lock(post_mutex_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t written = write(post_fd_.get(), &one, sizeof(one));
  (void)written;  // an eventfd write of 1 fails only at the counter's limit
}

void HttpApi::OnPosted(int fd, short, void* self) {
  uint64_t count = 0;
  ssize_t got = read(fd, &count, sizeof(count));
  (void)got;  // EAGAIN: a spurious wake-up; the queue below is the truth
  auto* api = static_cast<HttpApi*>(self);
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(api->post_mutex_);
    tasks.swap(api->posted_);
  }
  for (auto& task : tasks) task();
}

// --- Connections -------------------------------------------------------------------------------

bufferevent* HttpApi::NewConnection(event_base* base, void* self) {
  auto* api = static_cast<HttpApi*>(self);
  api->SweepConnections();
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) return nullptr;  // evhttp makes one of its own
  bufferevent_incref(bev);
  auto connection = std::make_unique<Connection>();
  connection->bev = bev;
  connection->refused = api->connections_.size() >= api->server_.max_connections;
  api->connections_[bev] = std::move(connection);
  // evhttp gives the bufferevent its socket after this returns: look at it on the next turn.
  struct timeval now {
    0, 0
  };
  auto* arg = new std::pair<HttpApi*, bufferevent*>(api, bev);
  event_base_once(base, -1, EV_TIMEOUT, &HttpApi::OnAccepted, arg, &now);
  return bev;
}

void HttpApi::OnAccepted(int, short, void* arg) {
  auto* pair = static_cast<std::pair<HttpApi*, bufferevent*>*>(arg);
  HttpApi* api = pair->first;
  bufferevent* bev = pair->second;
  delete pair;
  api->Accepted(bev);
}

// Who is on the other end (SO_PEERCRED, read once per connection before any request of it is
// served), and the connection cap.
void HttpApi::Accepted(bufferevent* bev) {
  auto it = connections_.find(bev);
  if (it == connections_.end()) return;
  Connection& connection = *it->second;
  if (connection.peer.known) return;
  int fd = bufferevent_getfd(bev);
  struct ucred cred {};
  socklen_t length = sizeof(cred);
  if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
    connection.peer = Peer{true, cred.pid, cred.uid, cred.gid};
  } else {
    connection.refused = true;  // an unknown peer is nobody we allow
  }
  if (connection.refused && fd >= 0) {
    ++rejected_["too_many_connections"];
    spdlog::warn("refused a connection from uid {} (pid {}): server.max_connections ({}) reached",
                 connection.peer.uid, connection.peer.pid, server_.max_connections);
    shutdown(fd, SHUT_RDWR);
  }
}

// Drops the connections evhttp has freed (it clears a bufferevent's callbacks when it lets go).
void HttpApi::SweepConnections() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    bufferevent_event_cb event_cb = nullptr;
    bufferevent_getcb(it->first, nullptr, nullptr, &event_cb, nullptr);
    if (event_cb == nullptr && it->second->pending == nullptr) {
      bufferevent_decref(it->first);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpApi::OnConnectionClosed(evhttp_connection* evcon, void* self) {
  auto* api = static_cast<HttpApi*>(self);
  auto it = api->connections_.find(evhttp_connection_get_bufferevent(evcon));
  if (it == api->connections_.end() || it->second->pending == nullptr) return;
  std::shared_ptr<Pending> pending = it->second->pending;
  pending->closed = true;
  if (pending->token != 0) api->scheduler_.Unsubscribe(pending->execution_id, pending->token);
  pending->token = 0;
  // evhttp detached the request from the connection; answering it now only frees it. An
  // environment build still running answers (frees) it when it ends.
  if (pending->execution_id.empty() && !pending->streaming) return;
  api->Post([api, pending] { api->Release(pending); });
}

std::shared_ptr<HttpApi::Pending> HttpApi::Hold(evhttp_request* req) {
  auto pending = std::make_shared<Pending>();
  pending->req = req;
  pending->bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
  pending_[req] = pending;
  auto it = connections_.find(pending->bev);
  if (it != connections_.end()) it->second->pending = pending;
  return pending;
}

// Ends a held request (an empty 500 if nothing was sent: only when the connection is gone).
void HttpApi::Release(const std::shared_ptr<Pending>& pending) {
  if (pending->done) return;
  pending->done = true;
  if (pending->token != 0) scheduler_.Unsubscribe(pending->execution_id, pending->token);
  pending->token = 0;
  if (pending->streaming) {
    evhttp_send_reply_end(pending->req);
  } else if (pending->closed) {
    evhttp_send_reply(pending->req, 500, "Internal Server Error", nullptr);
  }
  pending_.erase(pending->req);
  auto it = connections_.find(pending->bev);
  if (it != connections_.end() && it->second->pending == pending) it->second->pending.reset();
}

// --- Requests ----------------------------------------------------------------------------------

void HttpApi::OnRequest(evhttp_request* req, void* self) {
  static_cast<HttpApi*>(self)->Handle(req);
}

void HttpApi::Reject(evhttp_request* req, int code, const std::string& reason,
                     const std::string& message) {
  if (!reason.empty()) ++rejected_[reason];
  SendJson(req, code, {{"error", message}});
}

void HttpApi::Handle(evhttp_request* req) {
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  bufferevent* bev = evhttp_connection_get_bufferevent(evcon);
  Accepted(bev);  // the creds, if the request came before the connection's first turn
  auto it = connections_.find(bev);
  if (it == connections_.end() || !it->second->peer.known || it->second->refused) {
    std::string body = TakeBody(req);
    explicit_bzero(body.data(), body.size());
    Reject(req, 503, "", "the connection could not be identified or is over the cap");
    return;
  }
  Connection& connection = *it->second;
  if (!connection.close_hooked) {
    evhttp_connection_set_closecb(evcon, &HttpApi::OnConnectionClosed, this);
    connection.close_hooked = true;
  }
  const Peer peer = connection.peer;

  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  std::string path =
      uri != nullptr && evhttp_uri_get_path(uri) != nullptr ? evhttp_uri_get_path(uri) : "";
  evhttp_cmd_type method = evhttp_request_get_command(req);

  bool allowed = peer.uid == 0 ||
                 std::find(server_.allowed_uids.begin(), server_.allowed_uids.end(), peer.uid) !=
                     server_.allowed_uids.end() ||
                 std::find(server_.allowed_gids.begin(), server_.allowed_gids.end(), peer.gid) !=
                     server_.allowed_gids.end();
  if (!allowed) {
    std::string body = TakeBody(req);
    explicit_bzero(body.data(), body.size());
    spdlog::warn(
        "refused {} {} from uid {} gid {} (pid {}): not in server.allowed_uids or "
        "server.allowed_gids",
        method == EVHTTP_REQ_GET    ? "GET"
        : method == EVHTTP_REQ_POST ? "POST"
                                    : "DELETE",
        path, peer.uid, peer.gid, peer.pid);
    Reject(req, 403, "forbidden",
           "uid " + std::to_string(peer.uid) +
               " is not allowed (server.allowed_uids, server.allowed_gids)");
    return;
  }

  if (uint64_t size = BodySize(req); size > server_.max_body_bytes) {
    std::string body = TakeBody(req);
    explicit_bzero(body.data(), body.size());
    return Reject(req, 413, "too_large",
                  "request body: " + std::to_string(size) +
                      " bytes is over server.max_body_bytes (" +
                      std::to_string(server_.max_body_bytes) + ")");
  }

  auto method_not_allowed = [&] {
    std::string body = TakeBody(req);
    explicit_bzero(body.data(), body.size());
    Reject(req, 405, "method_not_allowed", "method not allowed on " + path);
  };
  constexpr std::string_view kExecutions = "/v1/executions/";
  constexpr std::string_view kEnvs = "/v1/envs/";
  if (path == "/v1/executions") {
    if (method == EVHTTP_REQ_POST) return PostExecution(req, peer, false, WaitRequested(req));
    if (method == EVHTTP_REQ_GET) return ListExecutions(req);
    return method_not_allowed();
  }
  if (path == "/v1/exec") {
    if (method != EVHTTP_REQ_POST) return method_not_allowed();
    if (peer.uid != 0) {
      std::string body = TakeBody(req);
      explicit_bzero(body.data(), body.size());
      spdlog::warn("refused POST /v1/exec from uid {} (pid {}): raw commands are root's only",
                   peer.uid, peer.pid);
      return Reject(req, 403, "forbidden",
                    "uid " + std::to_string(peer.uid) +
                        " is not allowed to run raw commands "
                        "(POST /v1/exec is root's only)");
    }
    return PostExecution(req, peer, true, WaitRequested(req));
  }
  if (path.rfind(kExecutions, 0) == 0) {
    std::string rest = path.substr(kExecutions.size());
    bool output = false;
    if (rest.size() > 7 && rest.compare(rest.size() - 7, 7, "/output") == 0) {
      rest.resize(rest.size() - 7);
      output = true;
    }
    if (rest.empty() || rest.find('/') != std::string::npos) {
      return Reject(req, 404, "not_found", "no route " + path);
    }
    if (output) {
      if (method != EVHTTP_REQ_GET) return method_not_allowed();
      return StreamOutput(req, rest);
    }
    if (method == EVHTTP_REQ_GET) return GetExecution(req, rest);
    if (method == EVHTTP_REQ_DELETE) return CancelExecution(req, rest);
    return method_not_allowed();
  }
  if (path.rfind(kEnvs, 0) == 0) {
    if (method != EVHTTP_REQ_POST) return method_not_allowed();
    return BuildEnvironments(req, path.substr(kEnvs.size()));
  }
  if (path == "/v1/health") {
    if (method != EVHTTP_REQ_GET) return method_not_allowed();
    return Health(req);
  }
  if (path == "/metrics") {
    if (method != EVHTTP_REQ_GET) return method_not_allowed();
    return Metrics(req);
  }
  std::string body = TakeBody(req);
  explicit_bzero(body.data(), body.size());
  Reject(req, 404, "not_found", "no route " + path);
}

void HttpApi::PostExecution(evhttp_request* req, const Peer& peer, bool raw, bool wait) {
  const auto accepted_at = std::chrono::steady_clock::now();
  std::string text = TakeBody(req);
  if (draining_) {
    explicit_bzero(text.data(), text.size());
    return Reject(req, 503, "draining", "the supervisor is shutting down (draining)");
  }
  std::shared_ptr<const ServingContext> context = context_();
  Job job;
  job.submitted_by = peer.uid;
  job.accepted_at = accepted_at;
  // Parsed by request_body.h (what fuzz/daemon_request_fuzz.cc fuzzes); a refusal is not logged,
  // only answered and counted: its text names the field, never a secret.
  if (raw) {
    auto request = ParseExecRequestBody(text);
    explicit_bzero(text.data(), text.size());
    if (!request) return Reject(req, 400, "bad_request", request.error().message());
    job.request = std::move(*request);
  } else {
    auto request = ParseRunRequestBody(text);
    explicit_bzero(text.data(), text.size());
    if (!request) return Reject(req, 400, "bad_request", request.error().message());
    // 404 (unknown pack or action) and 400 (what `run` would reject) before accepting.
    RequestCheck check = CheckRunRequest(context->Context(), *request);
    if (check.problem != RequestProblem::kNone) {
      WipeJson(request->secrets);
      bool unknown = check.problem == RequestProblem::kUnknownAction;
      return Reject(req, unknown ? 404 : 400, unknown ? "not_found" : "bad_request",
                    request->action_ref + ": " + check.message);
    }
    job.request = std::move(*request);
  }
  auto submitted = scheduler_.Submit(std::move(context), std::move(job));
  if (!submitted) {
    spdlog::error("accepting an execution: {}", submitted.error().message());
    return Reject(req, 500, "", "could not record the execution: " + submitted.error().message());
  }
  if (submitted->refusal == Scheduler::Refusal::kDraining) {
    return Reject(req, 503, "draining", "the supervisor is shutting down (draining)");
  }
  if (submitted->refusal == Scheduler::Refusal::kQueueFull) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    return Reject(
        req, kHttpTooManyRequests, "queue_full",
        "the queue is full (server.max_queued = " + std::to_string(server_.max_queued) + ")");
  }
  const std::string& id = submitted->execution_id;
  spdlog::info("accepted execution {} ({}) from uid {}", id, raw ? "raw exec" : "action", peer.uid);
  if (wait) return AnswerWithResult(req, id, 200);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                    ("/v1/executions/" + id).c_str());
  SendJson(req, 202, {{"execution_id", id}, {"status", "queued"}});
}

void HttpApi::AnswerWithResult(evhttp_request* req, const std::string& id, int code) {
  std::shared_ptr<Pending> pending = Hold(req);
  pending->execution_id = id;
  pending->token = scheduler_.Subscribe(id, false, [this, pending, code](const ExecutionEvent& e) {
    if (e.kind != ExecutionEvent::Kind::kResult) return;
    Post([this, pending, code, result = e.result] {
      if (pending->done) return;
      pending->token = 0;  // the scheduler dropped it with the result
      if (!pending->closed) {
        SendJson(pending->req, code, result);
        pending->done = true;
        pending_.erase(pending->req);
        auto it = connections_.find(pending->bev);
        if (it != connections_.end() && it->second->pending == pending) {
          it->second->pending.reset();
        }
        return;
      }
      Release(pending);
    });
  });
  if (pending->token != 0) return;
  // Already finished: the store has it.
  auto record = store_.Get(id);
  pending->done = true;
  pending_.erase(req);
  auto it = connections_.find(pending->bev);
  if (it != connections_.end()) it->second->pending.reset();
  if (!record || !*record) return Reject(req, 404, "not_found", "no execution " + id);
  SendJson(req, code, (*record)->result.is_null() ? (*record)->ToJson() : (*record)->result);
}

void HttpApi::GetExecution(evhttp_request* req, const std::string& id) {
  if (auto live = scheduler_.LiveStatus(id)) return SendJson(req, 200, *live);
  auto record = store_.Get(id);
  if (!record) {
    spdlog::error("reading execution {}: {}", id, record.error().message());
    return Reject(req, 500, "", "could not read the execution record");
  }
  if (!*record) return Reject(req, 404, "not_found", "no execution " + id);
  const ExecutionRecord& r = **record;
  if (!r.result.is_null()) return SendJson(req, 200, r.result);
  nlohmann::json so_far = {{"execution_id", r.execution_id},
                           {"action_ref", r.action_ref},
                           {"status", r.status},
                           {"submitted_at", Rfc3339(r.submitted_at_ms)}};
  if (r.started_at_ms != 0) so_far["started_at"] = Rfc3339(r.started_at_ms);
  SendJson(req, 200, so_far);
}

void HttpApi::StreamOutput(evhttp_request* req, const std::string& id) {
  auto start = [this, req] {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/x-ndjson");
    evhttp_send_reply_start(req, 200, "OK");
    // evhttp watches a streaming connection for the client closing it, under the connection's
    // deadline: a stream that is quiet for longer (an action thinking) would be cut. Reading gets
    // no deadline now; writing keeps its own (a client that stops reading is still cut off).
    struct timeval write_deadline {
      static_cast<time_t>(server_.write_timeout_seconds), 0
    };
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)),
                             nullptr, &write_deadline);
  };
  if (scheduler_.LiveStatus(id)) {
    std::shared_ptr<Pending> pending = Hold(req);
    pending->execution_id = id;
    pending->streaming = true;
    start();
    pending->token = scheduler_.Subscribe(id, true, [this, pending](const ExecutionEvent& e) {
      Post([this, pending, e] {
        if (pending->done || pending->closed) return;
        if (e.kind == ExecutionEvent::Kind::kResult) {
          pending->token = 0;
          SendChunk(pending->req, ResultLine(e.result, e.result_is_lines));
          Release(pending);
          return;
        }
        SendChunk(
            pending->req,
            NdjsonLine({{"stream", e.kind == ExecutionEvent::Kind::kStdout ? "stdout" : "stderr"},
                        {"data", e.data}}));
      });
    });
    if (pending->token != 0) return;
    // It ended between the two calls: answer from the store below.
    pending->done = true;
    pending_.erase(req);
    auto it = connections_.find(pending->bev);
    if (it != connections_.end()) it->second->pending.reset();
    auto record = store_.Get(id);
    if (record && *record) {
      const nlohmann::json& result = (*record)->result;
      SendChunk(req, NdjsonLine({{"stream", "stdout"}, {"data", result.value("stdout", "")}}));
      SendChunk(req, NdjsonLine({{"stream", "stderr"}, {"data", result.value("stderr", "")}}));
      SendChunk(req, ResultLine(result, (*record)->result_is_lines));
    }
    evhttp_send_reply_end(req);
    return;
  }
  auto record = store_.Get(id);
  if (!record || !*record) return Reject(req, 404, "not_found", "no execution " + id);
  nlohmann::json result = (*record)->result.is_null() ? (*record)->ToJson() : (*record)->result;
  start();
  SendChunk(req, NdjsonLine({{"stream", "stdout"}, {"data", result.value("stdout", "")}}));
  SendChunk(req, NdjsonLine({{"stream", "stderr"}, {"data", result.value("stderr", "")}}));
  SendChunk(req, ResultLine(result, (*record)->result_is_lines));
  evhttp_send_reply_end(req);
}

void HttpApi::CancelExecution(evhttp_request* req, const std::string& id) {
  std::string final_status;
  switch (scheduler_.Cancel(id, &final_status)) {
    case Scheduler::CancelOutcome::kNotFound:
      return Reject(req, 404, "not_found", "no execution " + id);
    case Scheduler::CancelOutcome::kAlreadyFinal:
      return Reject(req, 409, "conflict",
                    "execution " + id + " has already ended: " + final_status);
    case Scheduler::CancelOutcome::kCancelling:
      spdlog::info("cancelling execution {}", id);
      return AnswerWithResult(req, id, 200);
  }
}

void HttpApi::ListExecutions(evhttp_request* req) {
  auto status = QueryValue(req, "status");
  auto action_ref = QueryValue(req, "action_ref");
  auto limit_value = ParseListLimit(QueryValue(req, "limit"));
  if (!limit_value) return Reject(req, 400, "bad_request", limit_value.error().message());
  size_t limit = *limit_value;
  auto records = store_.List();
  if (!records) {
    spdlog::error("listing executions: {}", records.error().message());
    return Reject(req, 500, "", "could not list the executions");
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const ExecutionRecord& record : *records) {
    if (rows.size() >= limit) break;
    if (status && record.status != *status) continue;
    if (action_ref && record.action_ref != *action_ref) continue;
    nlohmann::json row = {{"execution_id", record.execution_id},
                          {"action_ref", record.action_ref},
                          {"status", record.status},
                          {"submitted_at", Rfc3339(record.submitted_at_ms)}};
    if (record.finished_at_ms != 0) row["finished_at"] = Rfc3339(record.finished_at_ms);
    rows.push_back(std::move(row));
  }
  SendJson(req, 200, {{"executions", std::move(rows)}});
}

void HttpApi::BuildEnvironments(evhttp_request* req, const std::string& pack_ref) {
  std::string text = TakeBody(req);
  if (draining_) return Reject(req, 503, "draining", "the supervisor is shutting down (draining)");
  auto body = ParseEnvBuildBody(text);
  explicit_bzero(text.data(), text.size());
  if (!body) return Reject(req, 400, "bad_request", body.error().message());
  std::optional<std::string> runtime = body->runtime;
  bool force = body->force;
  std::shared_ptr<Pending> pending = Hold(req);
  std::shared_ptr<const ServingContext> context = context_();
  spdlog::info("building the environments of pack {}", pack_ref);
  builders_.emplace_back([this, pending, context, pack_ref, runtime, force] {
    auto report =
        SetUpPackEnvironments(context->config, context->runtimes, pack_ref, runtime, force);
    Post([this, pending, report = std::move(report), pack_ref] {
      if (pending->done) return;
      pending->done = true;
      pending_.erase(pending->req);
      auto it = connections_.find(pending->bev);
      if (it != connections_.end() && it->second->pending == pending) it->second->pending.reset();
      evhttp_request* r = pending->req;
      if (!report) {
        ++env_builds_["failed"];
        return Reject(r, 500, "", report.error().message());
      }
      if (!report->pack_found) {
        return Reject(r, 404, "not_found",
                      "pack '" + pack_ref + "' not found in " + context_()->config.packs_base_dir);
      }
      nlohmann::json environments = nlohmann::json::array();
      std::string first_failure;
      for (const EnvironmentOutcome& outcome : report->environments) {
        nlohmann::json row = {{"runtime", outcome.runtime}, {"status", outcome.status}};
        if (!outcome.path.empty()) row["path"] = outcome.path;
        if (!outcome.error.empty()) row["error"] = outcome.error;
        if (outcome.status != "none") ++env_builds_[outcome.status];
        if (outcome.status == "failed" && first_failure.empty()) {
          first_failure = pack_ref + "/" + outcome.runtime + ": " + outcome.error;
        }
        environments.push_back(std::move(row));
      }
      if (first_failure.empty() && !report->problems.empty()) first_failure = report->problems[0];
      nlohmann::json answer = {{"pack", pack_ref}, {"environments", std::move(environments)}};
      if (!first_failure.empty()) {
        answer["error"] = first_failure;
        return SendJson(r, 500, answer);
      }
      SendJson(r, 200, answer);
    });
  });
}

void HttpApi::Health(evhttp_request* req) {
  SchedulerStats stats = scheduler_.Stats();
  SendJson(req, 200,
           {{"status", draining_ ? "draining" : "ok"},
            {"running", stats.running},
            {"queued", stats.queued}});
}

void HttpApi::Metrics(evhttp_request* req) {
  SchedulerStats stats = scheduler_.Stats();
  std::string text;
  auto line = [&text](const std::string& name, const std::string& labels, double value) {
    char number[64];
    std::snprintf(number, sizeof(number), "%.17g", value);
    text += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number + "\n";
  };
  text +=
      "# HELP packvisor_executions_total Executions that ended, by status.\n"
      "# TYPE packvisor_executions_total counter\n";
  std::map<std::string, uint64_t> by_status = stats.finished_by_status;
  for (const char* status :
       {"succeeded", "failed", "timed_out", "cancelled", "setup_failed", "rejected"}) {
    by_status.emplace(status, 0);
  }
  for (const auto& [status, count] : by_status) {
    line("packvisor_executions_total", "status=\"" + status + "\"", static_cast<double>(count));
  }
  text +=
      "# HELP packvisor_queue_depth Executions accepted and waiting for a slot.\n"
      "# TYPE packvisor_queue_depth gauge\n";
  line("packvisor_queue_depth", "", static_cast<double>(stats.queued));
  text +=
      "# HELP packvisor_executions_running Executions running now.\n"
      "# TYPE packvisor_executions_running gauge\n";
  line("packvisor_executions_running", "", static_cast<double>(stats.running));
  text +=
      "# HELP packvisor_launch_latency_seconds From accepting an execution to releasing its "
      "verified action to exec.\n"
      "# TYPE packvisor_launch_latency_seconds histogram\n";
  for (size_t i = 0; i < stats.latency_bounds.size(); ++i) {
    char bound[32];
    std::snprintf(bound, sizeof(bound), "%g", stats.latency_bounds[i]);
    line("packvisor_launch_latency_seconds_bucket", std::string("le=\"") + bound + "\"",
         static_cast<double>(stats.latency_counts[i]));
  }
  line("packvisor_launch_latency_seconds_bucket", "le=\"+Inf\"",
       static_cast<double>(stats.latency_count));
  line("packvisor_launch_latency_seconds_sum", "", stats.latency_sum);
  line("packvisor_launch_latency_seconds_count", "", static_cast<double>(stats.latency_count));
  text +=
      "# HELP packvisor_warm_pool_claims_total Launches through the warm pool: hit ran in a "
      "prepared sandbox, miss launched fresh.\n"
      "# TYPE packvisor_warm_pool_claims_total counter\n";
  sandbox::WarmPool::ClaimCounts claims;
  if (sandbox::WarmPool* pool = context_()->warm_pool) claims = pool->claim_counts();
  line("packvisor_warm_pool_claims_total", "result=\"hit\"", static_cast<double>(claims.hits));
  line("packvisor_warm_pool_claims_total", "result=\"miss\"", static_cast<double>(claims.misses));
  text +=
      "# HELP packvisor_env_builds_total Environments set up through the API, by result.\n"
      "# TYPE packvisor_env_builds_total counter\n";
  std::map<std::string, uint64_t> builds = env_builds_;
  for (const char* result : {"built", "ready", "failed"}) builds.emplace(result, 0);
  for (const auto& [result, count] : builds) {
    line("packvisor_env_builds_total", "result=\"" + result + "\"", static_cast<double>(count));
  }
  text +=
      "# HELP packvisor_requests_rejected_total Requests refused, by reason.\n"
      "# TYPE packvisor_requests_rejected_total counter\n";
  std::map<std::string, uint64_t> rejected = rejected_;
  for (const char* reason :
       {"forbidden", "bad_request", "not_found", "queue_full", "draining", "too_many_connections",
        "conflict", "method_not_allowed", "too_large"}) {
    rejected.emplace(reason, 0);
  }
  for (const auto& [reason, count] : rejected) {
    line("packvisor_requests_rejected_total", "reason=\"" + reason + "\"",
         static_cast<double>(count));
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain; version=0.0.4");
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, text.data(), text.size());
  evhttp_send_reply(req, 200, "OK", out);
  evbuffer_free(out);
}

}  // namespace packvisor
