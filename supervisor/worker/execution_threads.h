// The queue worker's executions: each runs RunExecution on a thread of its own and hands what it
// produces (live output chunks when asked, then the final result) back to the thread that owns
// the broker connections, through an outbox signalled by an eventfd. rabbitmq-c is not
// thread-safe, so nothing here touches the broker: the owner publishes and acks.
//
// Thread-safety: Start, Take and Wait are called by the owning thread only; the execution threads
// only push into the outbox.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/execution_store.h"

namespace packvisor {

struct ExecutionEventOut {
  enum class Kind { kOutput, kFinished };
  Kind kind = Kind::kFinished;
  std::string execution_id;
  std::string stream;     // kOutput: "stdout" or "stderr"
  std::string data;       // kOutput: the bytes, as the result keeps them
  nlohmann::json result;  // kFinished: the SPEC §7 result object, already in the store
};

class ExecutionThreads {
 public:
  // `context` and `store` must outlive this object.
  ExecutionThreads(const ExecutionContext& context, ExecutionStore& store);
  // Joins every thread: the caller cancels what still runs first (their cancel fds).
  ~ExecutionThreads();
  ExecutionThreads(const ExecutionThreads&) = delete;
  ExecutionThreads& operator=(const ExecutionThreads&) = delete;

  Result<void> Init();  // makes the eventfd

  // Runs `request` (its execution_id and cancel_fd set; the cancel fd must stay open until its
  // kFinished event is taken) on a new thread: records `record` as "running", runs it, records
  // the final result, then queues kFinished. With `stream_output`, output chunks are queued as
  // they are captured.
  void Start(RunRequest request, ExecutionRecord record, bool stream_output);

  // Readable while the outbox holds something.
  int event_fd() const { return event_fd_.get(); }
  // Everything queued so far, in order; joins the threads that have finished.
  std::vector<ExecutionEventOut> Take();

 private:
  class Stream;
  void Push(ExecutionEventOut event);
  void Run(RunRequest request, ExecutionRecord record, bool stream_output, uint64_t token);

  const ExecutionContext& context_;
  ExecutionStore& store_;
  unique_fd event_fd_;
  std::mutex mutex_;  // guards outbox_ and finished_
  std::deque<ExecutionEventOut> outbox_;
  std::vector<uint64_t> finished_;  // tokens of threads that have queued kFinished
  std::map<uint64_t, std::thread> threads_;
  uint64_t next_token_ = 1;
};

}  // namespace packvisor
