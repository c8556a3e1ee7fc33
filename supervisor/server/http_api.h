// The HTTP API of `packvisor serve` (docs/api.md) on libevent's evhttp: routes, JSON bodies,
// who may call (SO_PEERCRED against server.allowed_uids / allowed_gids), live NDJSON output,
// /metrics and /v1/health. It runs on one event loop thread; the scheduler's events, which come
// from worker threads, are posted to that loop (Post()). Slow clients cost a buffer, not a thread:
// read and write deadlines and a connection cap bound what one client can hold.
//
// Thread-safety: everything but Post() is called on the loop's thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/execution_store.h"
#include "supervisor/server/scheduler.h"

struct event_base;
struct event;
struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct bufferevent;
struct evhttp_bound_socket;

namespace packvisor {

class HttpApi {
 public:
  // The configuration in force now (swapped by SIGHUP); every accepted execution keeps the one it
  // was accepted under.
  using ContextSource = std::function<std::shared_ptr<const ServingContext>()>;

  HttpApi(event_base* base, Scheduler& scheduler, ExecutionStore& store, ContextSource context);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Serves on `listening` (a bound, listening Unix stream socket; owned from now on).
  Result<void> Start(unique_fd listening, const ServerConfig& server);
  // The server.* keys that apply to new connections and requests (SIGHUP).
  void Configure(const ServerConfig& server);
  // SIGTERM: new executions and environment builds get 503; everything else is still served.
  void SetDraining();
  // Stops accepting connections (the end of a drain).
  void StopListening();
  // Whether any answer is still being written, or any reply or stream is still open.
  bool Busy() const;

  // Runs `task` on the loop's thread, in the order posted. Any thread.
  void Post(std::function<void()> task);

 private:
  struct Connection;
  struct Pending;
  struct Peer;

  static bufferevent* NewConnection(event_base* base, void* self);
  static void OnAccepted(int fd, short what, void* bev);
  static void OnRequest(evhttp_request* req, void* self);
  static void OnConnectionClosed(evhttp_connection* evcon, void* self);
  static void OnPosted(int fd, short what, void* self);
  void Accepted(bufferevent* bev);
  void SweepConnections();
  void Handle(evhttp_request* req);
  void Reject(evhttp_request* req, int code, const std::string& reason, const std::string& message);

  void PostExecution(evhttp_request* req, const Peer& peer, bool raw, bool wait);
  void GetExecution(evhttp_request* req, const std::string& id);
  void StreamOutput(evhttp_request* req, const std::string& id);
  void CancelExecution(evhttp_request* req, const std::string& id);
  void ListExecutions(evhttp_request* req);
  void BuildEnvironments(evhttp_request* req, const std::string& pack_ref);
  void Health(evhttp_request* req);
  void Metrics(evhttp_request* req);
  // Holds `req` until the execution's result, then answers it with `code` and the result.
  void AnswerWithResult(evhttp_request* req, const std::string& id, int code);
  std::shared_ptr<Pending> Hold(evhttp_request* req);
  void Release(const std::shared_ptr<Pending>& pending);

  event_base* base_;
  Scheduler& scheduler_;
  ExecutionStore& store_;
  ContextSource context_;
  ServerConfig server_;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* bound_ = nullptr;
  event* sweep_event_ = nullptr;
  bool draining_ = false;

  // Connections, by their bufferevent (made in NewConnection, referenced until the sweep sees
  // that evhttp let go of it).
  std::map<bufferevent*, std::unique_ptr<Connection>> connections_;
  std::map<evhttp_request*, std::shared_ptr<Pending>> pending_;

  // Posted tasks: a queue and an eventfd the loop watches.
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;
  unique_fd post_fd_;
  event* post_event_ = nullptr;

  // Environment builds run on threads of their own (they take minutes); joined at destruction.
  std::vector<std::thread> builders_;

  // /metrics counters (loop thread).
  std::map<std::string, uint64_t> rejected_;
  std::map<std::string, uint64_t> env_builds_;
};

}  // namespace packvisor
