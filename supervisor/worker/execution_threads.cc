#include "supervisor/worker/execution_threads.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <utility>

namespace packvisor {
namespace {

int64_t EpochMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

// The live output of one stream, queued as output events.
class ExecutionThreads::Stream : public LiveOutput {
 public:
  Stream(ExecutionThreads* owner, std::string execution_id, std::string name)
      : owner_(owner), execution_id_(std::move(execution_id)), name_(std::move(name)) {}
  void Write(std::string_view bytes) override {
    if (bytes.empty()) return;
    ExecutionEventOut event;
    event.kind = ExecutionEventOut::Kind::kOutput;
    event.execution_id = execution_id_;
    event.stream = name_;
    event.data = std::string(bytes);
    owner_->Push(std::move(event));
  }

 private:
  ExecutionThreads* owner_;
  std::string execution_id_;
  std::string name_;
};

ExecutionThreads::ExecutionThreads(const ExecutionContext& context, ExecutionStore& store)
    : context_(context), store_(store) {}

ExecutionThreads::~ExecutionThreads() {
  for (auto& [token, thread] : threads_) thread.join();
  for (ExecutionEventOut& event : outbox_) WipeString(event.data);
}

Result<void> ExecutionThreads::Init() {
  event_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!event_fd_) return ErrnoError("eventfd", "the worker's execution outbox");
  return Ok{};
}

void ExecutionThreads::Start(RunRequest request, ExecutionRecord record, bool stream_output) {
  uint64_t token = next_token_++;
  threads_.emplace(token, std::thread([this, request = std::move(request),
                                       record = std::move(record), stream_output, token]() mutable {
                     Run(std::move(request), std::move(record), stream_output, token);
                   }));
}

void ExecutionThreads::Run(RunRequest request, ExecutionRecord record, bool stream_output,
                           uint64_t token) {
  record.status = "running";
  record.started_at_ms = EpochMs();
  if (auto put = store_.Put(record); !put) {
    spdlog::warn("execution {} ({}): recording that it started: {}", record.execution_id,
                 record.action_ref, put.error().message());
  }
  Stream out(this, record.execution_id, "stdout");
  Stream err(this, record.execution_id, "stderr");
  if (stream_output) {
    request.live_stdout = &out;
    request.live_stderr = &err;
  }
  ExecutionResult result = RunExecution(context_, std::move(request));
  WipeJson(request.secrets);  // moved from: empty, but never trust a moved-from object with one
  nlohmann::json final_result = result.ToJson();
  record.status = final_result.value("status", "failed");
  record.finished_at_ms = EpochMs();
  record.result = final_result;
  // Durable before the result is published: a request redelivered later is answered from here.
  if (auto put = store_.Put(record); !put) {
    spdlog::error("execution {} ({}): recording its result: {}", record.execution_id,
                  record.action_ref, put.error().message());
  }
  ExecutionEventOut finished;
  finished.kind = ExecutionEventOut::Kind::kFinished;
  finished.execution_id = record.execution_id;
  finished.result = std::move(final_result);
  std::lock_guard lock(mutex_);
  outbox_.push_back(std::move(finished));
  finished_.push_back(token);
  uint64_t one = 1;
  ssize_t written = write(event_fd_.get(), &one, sizeof(one));
  (void)written;  // an eventfd write of 1 fails only at the counter's limit
}

void ExecutionThreads::Push(ExecutionEventOut event) {
  std::lock_guard lock(mutex_);
  outbox_.push_back(std::move(event));
  uint64_t one = 1;
  ssize_t written = write(event_fd_.get(), &one, sizeof(one));
  (void)written;
}

std::vector<ExecutionEventOut> ExecutionThreads::Take() {
  std::vector<ExecutionEventOut> events;
  std::vector<uint64_t> finished;
  {
    std::lock_guard lock(mutex_);
    uint64_t count = 0;
    ssize_t got = read(event_fd_.get(), &count, sizeof(count));
    (void)got;  // EAGAIN: nothing signalled; the outbox says what there is
    events.assign(std::make_move_iterator(outbox_.begin()), std::make_move_iterator(outbox_.end()));
    outbox_.clear();
    finished.swap(finished_);
  }
  // A thread has queued its kFinished as its last act: joining it is immediate.
  for (uint64_t token : finished) {
    auto it = threads_.find(token);
    if (it == threads_.end()) continue;
    it->second.join();
    threads_.erase(it);
  }
  return events;
}

}  // namespace packvisor
