// supervisor/server/: the daemon `packvisor serve` (docs/server.md): the composition of the
// process (daemon.h: configuration, socket, signals, lifecycle), the HTTP API on its Unix socket
// (http_api.h, libevent's evhttp; docs/api.md) and the scheduler of accepted executions
// (scheduler.h); the systemd notifications are executions/notify.h. It calls
// supervisor/executions/ (and reads packs/ and config/) exactly as the CLI does; it never includes
// supervisor/cli/.
//
// This header: the executions the daemon accepted. A FIFO queue of at most `max_queued`, at most
// `max_concurrent` running (each on a thread of its own), cancellation, the live output of running
// executions fanned out to subscribers, and the counters /metrics and /v1/health report. Every
// accepted execution is written to the ExecutionStore (status "queued", never a secret) before
// Submit() returns, and again when it starts and when it ends: the store answers for finished
// executions, the scheduler for the ones still queued or running.
//
// Thread-safety: every member may be called from any thread. Subscribers are called with the
// scheduler's lock held, from whichever thread produced the event: they must only hand the event
// over (the HTTP layer posts it to its event loop), never block or call back into the scheduler.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "envs/runtime.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/execution_store.h"
#include "supervisor/executions/raw_exec.h"

namespace packvisor {

// What executions run with: one loaded configuration and runtime registry, immutable once built.
// The daemon swaps the whole of it on SIGHUP; an execution keeps the one it was accepted under.
struct ServingContext {
  Config config;
  envs::RuntimeRegistry runtimes;
  // The daemon's prepared sandboxes (made once per process by RunServe, reconfigured on SIGHUP;
  // it outlives every context); null: every launch is fresh.
  sandbox::WarmPool* warm_pool = nullptr;
  ExecutionContext Context() const { return ExecutionContext{config, runtimes, warm_pool}; }
};

// One accepted piece of work: an action (RunRequest) or a raw command (RawExecRequest).
struct Job {
  std::variant<RunRequest, RawExecRequest> request;
  uid_t submitted_by = 0;
  // When the API accepted the request (the launch-latency histogram starts there); unset: at
  // Submit.
  std::optional<std::chrono::steady_clock::time_point> accepted_at;
};

// An event of one execution, in order: its output as the result will keep it, then its result.
struct ExecutionEvent {
  enum class Kind { kStdout, kStderr, kResult };
  Kind kind = Kind::kResult;
  std::string data;       // kStdout, kStderr
  nlohmann::json result;  // kResult: the SPEC §7 object
  // kResult: `result.result` holds the lines of a jsonl output (ExecutionResult::result_is_lines;
  // not part of the SPEC §7 object, docs/api.md "What the output stream's result line may carry").
  bool result_is_lines = false;
};
using Subscriber = std::function<void(const ExecutionEvent&)>;

// Unix epoch milliseconds now, and as RFC 3339 UTC text with milliseconds.
int64_t NowMs();
std::string Rfc3339(int64_t epoch_ms);

struct SchedulerLimits {
  size_t max_concurrent = 1;
  size_t max_queued = 64;
};

// Counters for /metrics (monotonic since start) and /v1/health.
struct SchedulerStats {
  size_t running = 0;
  size_t queued = 0;
  bool draining = false;
  std::map<std::string, uint64_t> finished_by_status;  // "succeeded" -> N
  // Launch latency (the API accepted the request -> the launcher released the verified action to
  // exec), of the executions whose action was released; Prometheus buckets in seconds.
  std::vector<double> latency_bounds;
  std::vector<uint64_t> latency_counts;  // cumulative, one per bound
  uint64_t latency_count = 0;
  double latency_sum = 0;
};

class Scheduler {
 public:
  enum class Refusal { kNone, kQueueFull, kDraining };
  struct Submitted {
    std::string execution_id;
    Refusal refusal = Refusal::kNone;
  };
  enum class CancelOutcome { kNotFound, kAlreadyFinal, kCancelling };

  Scheduler(ExecutionStore& store, SchedulerLimits limits);
  // Cancels everything left and joins the workers.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // New limits (SIGHUP): a smaller max_concurrent lets running executions finish.
  void SetLimits(SchedulerLimits limits);

  // Queues the job and records it (status "queued") before returning its id. Refused (nothing
  // recorded, the job's secrets wiped) when the queue is full or the scheduler is draining; an
  // Error when the record could not be written.
  Result<Submitted> Submit(std::shared_ptr<const ServingContext> context, Job job);

  // Queued: removed from the queue, final `cancelled` at once. Running: its cancel_fd becomes
  // readable (SIGTERM, grace, SIGKILL of the sandbox); it ends `cancelled`. `final_status` gets
  // the status of an execution already finished.
  CancelOutcome Cancel(const std::string& execution_id, std::string* final_status);

  // The object of GET /v1/executions/{id} for a queued or running execution; nullopt when the
  // scheduler no longer (or never) had it: the store answers then.
  std::optional<nlohmann::json> LiveStatus(const std::string& execution_id) const;

  // Subscribes to a queued or running execution: with `output`, first every chunk it kept so far,
  // then each new one, in order; always its result last. Returns a token (0: not live; look in
  // the store). The subscriber is dropped after the result or at Unsubscribe.
  uint64_t Subscribe(const std::string& execution_id, bool output, Subscriber subscriber);
  void Unsubscribe(const std::string& execution_id, uint64_t token);

  // Called (lock held, as subscribers) whenever the scheduler becomes idle: nothing running and
  // nothing queued. The daemon uses it to end a drain.
  void OnIdle(std::function<void()> callback);

  SchedulerStats Stats() const;

  // SIGTERM: refuse new work; the queued executions end `cancelled` now; running ones continue.
  void StartDraining();
  // Cancels every running execution (the end of the drain).
  void CancelRunning();

 private:
  struct Entry;
  class Capture;
  void DispatchLocked();
  void RunWorker(std::shared_ptr<Entry> entry, uint64_t token);
  void CancelQueuedLocked(const std::shared_ptr<Entry>& entry, const std::string& why);
  void FinishLocked(const std::shared_ptr<Entry>& entry, nlohmann::json result,
                    bool result_is_lines = false);
  void RecordFinal(Entry& entry, const nlohmann::json& result, bool result_is_lines = false);
  void ReapThreadsLocked();
  void CheckIdleLocked();

  ExecutionStore& store_;
  mutable std::mutex mutex_;
  SchedulerLimits limits_;
  bool draining_ = false;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Entry>> live_;
  std::deque<std::shared_ptr<Entry>> queue_;
  size_t running_ = 0;
  size_t reserved_ = 0;  // accepted, being recorded, not yet queued
  uint64_t next_token_ = 1;
  std::function<void()> on_idle_;
  // Workers: one thread per running execution; finished ones are joined at the next dispatch.
  std::map<uint64_t, std::thread> threads_;
  std::vector<uint64_t> finished_threads_;
  uint64_t next_thread_ = 1;
  std::condition_variable all_done_;
  // Stats.
  std::map<std::string, uint64_t> finished_by_status_;
  std::vector<uint64_t> latency_buckets_;
  uint64_t latency_count_ = 0;
  double latency_sum_ = 0;
};

}  // namespace packvisor
