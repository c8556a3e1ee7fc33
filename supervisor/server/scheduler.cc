#include "supervisor/server/scheduler.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace packvisor {
namespace {

// Launch latency buckets (seconds): from a pre-created sandbox's ~1 ms to a queue wait.
constexpr double kLatencyBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
constexpr size_t kLatencyBucketCount = sizeof(kLatencyBounds) / sizeof(kLatencyBounds[0]);

const std::string& ActionRefOf(const Job& job) {
  static const std::string kRaw;
  if (const auto* run = std::get_if<RunRequest>(&job.request)) return run->action_ref;
  return kRaw;
}

void WipeJob(Job& job) {
  if (auto* run = std::get_if<RunRequest>(&job.request)) WipeJson(run->secrets);
}

}  // namespace

int64_t NowMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string Rfc3339(int64_t epoch_ms) {
  time_t seconds = static_cast<time_t>(epoch_ms / 1000);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char text[96];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return text;
}

struct Scheduler::Entry {
  enum class State { kQueued, kRunning, kFinished };
  std::shared_ptr<const ServingContext> context;
  Job job;
  ExecutionRecord record;  // what the store holds (without the result until final)
  State state = State::kQueued;
  std::chrono::steady_clock::time_point accepted_at;
  unique_fd cancel_fd;  // an eventfd: readable = cancel
  // The output kept so far, in arrival order (bounded by the output caps: it is exactly what the
  // captures keep).
  std::vector<std::pair<ExecutionEvent::Kind, std::string>> chunks;
  struct Watcher {
    bool output = false;
    Subscriber subscriber;
  };
  std::map<uint64_t, Watcher> subscribers;
};

// Live output of one stream of one running execution: kept in the entry and fanned out.
class Scheduler::Capture : public LiveOutput {
 public:
  Capture(Scheduler* scheduler, Entry* entry, ExecutionEvent::Kind kind)
      : scheduler_(scheduler), entry_(entry), kind_(kind) {}
  void Write(std::string_view bytes) override {
    if (bytes.empty()) return;
    std::lock_guard lock(scheduler_->mutex_);
    auto& chunks = entry_->chunks;
    if (!chunks.empty() && chunks.back().first == kind_) {
      chunks.back().second.append(bytes);  // fewer, larger chunks to replay
    } else {
      chunks.emplace_back(kind_, std::string(bytes));
    }
    ExecutionEvent event{kind_, std::string(bytes), nullptr};
    for (auto& [token, watcher] : entry_->subscribers) {
      if (watcher.output) watcher.subscriber(event);
    }
  }

 private:
  Scheduler* scheduler_;
  Entry* entry_;
  ExecutionEvent::Kind kind_;
};

Scheduler::Scheduler(ExecutionStore& store, SchedulerLimits limits)
    : store_(store), limits_(limits), latency_buckets_(kLatencyBucketCount, 0) {}

Scheduler::~Scheduler() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  on_idle_ = nullptr;
  for (auto& [id, entry] : live_) {
    if (entry->state == Entry::State::kRunning) {
      uint64_t one = 1;
      ssize_t written = write(entry->cancel_fd.get(), &one, sizeof(one));
      (void)written;  // an eventfd write of 1 fails only at the counter's limit
    }
  }
  for (auto& entry : queue_) WipeJob(entry->job);
  queue_.clear();
  all_done_.wait(lock, [this] { return running_ == 0; });
  std::map<uint64_t, std::thread> threads = std::move(threads_);
  lock.unlock();
  for (auto& [token, thread] : threads) thread.join();
}

void Scheduler::SetLimits(SchedulerLimits limits) {
  std::lock_guard lock(mutex_);
  limits_ = limits;
  DispatchLocked();
}

Result<Scheduler::Submitted> Scheduler::Submit(std::shared_ptr<const ServingContext> context,
                                               Job job) {
  auto entry = std::make_shared<Entry>();
  std::string& id_field = std::holds_alternative<RunRequest>(job.request)
                              ? std::get<RunRequest>(job.request).execution_id
                              : std::get<RawExecRequest>(job.request).execution_id;
  if (id_field.empty()) id_field = NewExecutionId();
  entry->record.execution_id = id_field;
  entry->record.action_ref = ActionRefOf(job);
  entry->record.status = "queued";
  entry->record.submitted_at_ms = NowMs();
  entry->record.submitted_by_uid = job.submitted_by;
  entry->accepted_at = job.accepted_at.value_or(std::chrono::steady_clock::now());
  entry->context = std::move(context);
  entry->cancel_fd.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!entry->cancel_fd) {
    WipeJob(job);
    return ErrnoError("eventfd", "cancel of execution " + id_field);
  }
  if (auto* run = std::get_if<RunRequest>(&job.request)) {
    run->cancel_fd = entry->cancel_fd.get();
  } else {
    std::get<RawExecRequest>(job.request).cancel_fd = entry->cancel_fd.get();
  }
  entry->job = std::move(job);

  std::unique_lock lock(mutex_);
  Refusal refusal = Refusal::kNone;
  if (draining_ || stopping_) {
    refusal = Refusal::kDraining;
  } else if (running_ + queue_.size() + reserved_ >= limits_.max_concurrent + limits_.max_queued) {
    refusal = Refusal::kQueueFull;
  }
  if (refusal != Refusal::kNone) {
    WipeJob(entry->job);
    return Submitted{"", refusal};
  }
  // The slot is ours while the record is written (outside the lock: it is fsynced).
  ++reserved_;
  lock.unlock();
  Result<void> put = store_.Put(entry->record);
  lock.lock();
  --reserved_;
  if (!put) {
    WipeJob(entry->job);
    CheckIdleLocked();
    return put.error();
  }
  live_[entry->record.execution_id] = entry;
  queue_.push_back(entry);
  DispatchLocked();
  return Submitted{entry->record.execution_id, Refusal::kNone};
}

void Scheduler::DispatchLocked() {
  ReapThreadsLocked();
  while (!stopping_ && running_ < limits_.max_concurrent && !queue_.empty()) {
    std::shared_ptr<Entry> entry = queue_.front();
    queue_.pop_front();
    entry->state = Entry::State::kRunning;
    entry->record.started_at_ms = NowMs();
    entry->record.status = "running";
    ++running_;
    uint64_t token = next_thread_++;
    threads_.emplace(token, std::thread([this, entry, token] { RunWorker(entry, token); }));
  }
}

void Scheduler::ReapThreadsLocked() {
  for (uint64_t token : finished_threads_) {
    auto it = threads_.find(token);
    if (it == threads_.end()) continue;
    it->second.join();  // it only returns after handing in its token: no lock needed any more
    threads_.erase(it);
  }
  finished_threads_.clear();
}

void Scheduler::RunWorker(std::shared_ptr<Entry> entry, uint64_t token) {
  ExecutionRecord running = entry->record;  // status "running", started_at set at dispatch
  if (auto put = store_.Put(running); !put) {
    spdlog::warn("execution {}: recording that it started: {}", running.execution_id,
                 put.error().message());
  }
  Capture out(this, entry.get(), ExecutionEvent::Kind::kStdout);
  Capture err(this, entry.get(), ExecutionEvent::Kind::kStderr);
  ExecutionContext context = entry->context->Context();
  ExecutionResult result;
  if (auto* run = std::get_if<RunRequest>(&entry->job.request)) {
    run->live_stdout = &out;
    run->live_stderr = &err;
    result = RunExecution(context, std::move(*run));
    WipeJson(run->secrets);  // moved from: empty, but never trust a moved-from object with one
  } else {
    auto& raw = std::get<RawExecRequest>(entry->job.request);
    raw.live_stdout = &out;
    raw.live_stderr = &err;
    result = RunRawExec(context, std::move(raw));
  }
  nlohmann::json final_result = result.ToJson();
  RecordFinal(*entry, final_result, result.result_is_lines);

  std::lock_guard lock(mutex_);
  if (result.released_at) {
    double latency =
        std::chrono::duration<double>(*result.released_at - entry->accepted_at).count();
    for (size_t i = 0; i < kLatencyBucketCount; ++i) {
      if (latency <= kLatencyBounds[i]) ++latency_buckets_[i];
    }
    ++latency_count_;
    latency_sum_ += latency;
  }
  FinishLocked(entry, std::move(final_result), result.result_is_lines);
  DispatchLocked();
  finished_threads_.push_back(token);
  CheckIdleLocked();
  if (running_ == 0) all_done_.notify_all();
}

void Scheduler::RecordFinal(Entry& entry, const nlohmann::json& result, bool result_is_lines) {
  ExecutionRecord record = entry.record;
  record.result_is_lines = result_is_lines;
  record.status = result.value("status", "failed");
  record.finished_at_ms = NowMs();
  record.result = result;
  if (auto put = store_.Put(record); !put) {
    spdlog::error("execution {}: recording its result: {}", record.execution_id,
                  put.error().message());
  }
}

void Scheduler::FinishLocked(const std::shared_ptr<Entry>& entry, nlohmann::json result,
                             bool result_is_lines) {
  if (entry->state == Entry::State::kRunning) --running_;
  entry->state = Entry::State::kFinished;
  ++finished_by_status_[result.value("status", "failed")];
  ExecutionEvent event{ExecutionEvent::Kind::kResult, {}, std::move(result), result_is_lines};
  for (auto& [token, watcher] : entry->subscribers) watcher.subscriber(event);
  entry->subscribers.clear();
  entry->chunks.clear();
  live_.erase(entry->record.execution_id);
}

void Scheduler::CheckIdleLocked() {
  if (running_ == 0 && queue_.empty() && reserved_ == 0 && on_idle_) on_idle_();
}

Scheduler::CancelOutcome Scheduler::Cancel(const std::string& execution_id,
                                           std::string* final_status) {
  std::unique_lock lock(mutex_);
  auto it = live_.find(execution_id);
  if (it == live_.end()) {
    lock.unlock();
    auto record = store_.Get(execution_id);
    if (!record || !*record) return CancelOutcome::kNotFound;
    *final_status = (*record)->status;
    return CancelOutcome::kAlreadyFinal;
  }
  std::shared_ptr<Entry> entry = it->second;
  if (entry->state == Entry::State::kRunning) {
    uint64_t one = 1;
    ssize_t written = write(entry->cancel_fd.get(), &one, sizeof(one));
    (void)written;  // an eventfd write of 1 fails only at the counter's limit
    return CancelOutcome::kCancelling;
  }
  CancelQueuedLocked(entry, "cancelled before it started");
  return CancelOutcome::kCancelling;
}

void Scheduler::CancelQueuedLocked(const std::shared_ptr<Entry>& entry, const std::string& why) {
  for (auto q = queue_.begin(); q != queue_.end(); ++q) {
    if (*q == entry) {
      queue_.erase(q);
      break;
    }
  }
  WipeJob(entry->job);
  ExecutionResult result;
  result.execution_id = entry->record.execution_id;
  result.action_ref = entry->record.action_ref;
  result.status = ExecutionStatus::kCancelled;
  result.error = why;
  nlohmann::json final_result = result.ToJson();
  // Rare (a cancel, the start of a drain): recorded under the lock, so that no one sees the
  // execution neither queued nor final.
  RecordFinal(*entry, final_result);
  FinishLocked(entry, std::move(final_result));
  CheckIdleLocked();
}

std::optional<nlohmann::json> Scheduler::LiveStatus(const std::string& execution_id) const {
  std::lock_guard lock(mutex_);
  auto it = live_.find(execution_id);
  if (it == live_.end()) return std::nullopt;
  const ExecutionRecord& record = it->second->record;
  nlohmann::json status = {{"execution_id", record.execution_id},
                           {"action_ref", record.action_ref},
                           {"status", record.status},
                           {"submitted_at", Rfc3339(record.submitted_at_ms)}};
  if (record.started_at_ms != 0) status["started_at"] = Rfc3339(record.started_at_ms);
  return status;
}

uint64_t Scheduler::Subscribe(const std::string& execution_id, bool output, Subscriber subscriber) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(execution_id);
  if (it == live_.end()) return 0;
  Entry& entry = *it->second;
  if (output) {
    for (const auto& [kind, data] : entry.chunks) subscriber(ExecutionEvent{kind, data, nullptr});
  }
  uint64_t token = next_token_++;
  entry.subscribers[token] = Entry::Watcher{output, std::move(subscriber)};
  return token;
}

void Scheduler::Unsubscribe(const std::string& execution_id, uint64_t token) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(execution_id);
  if (it != live_.end()) it->second->subscribers.erase(token);
}

void Scheduler::OnIdle(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  on_idle_ = std::move(callback);
  CheckIdleLocked();
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats stats;
  stats.running = running_;
  stats.queued = queue_.size();
  stats.draining = draining_;
  stats.finished_by_status = finished_by_status_;
  stats.latency_bounds.assign(std::begin(kLatencyBounds), std::end(kLatencyBounds));
  stats.latency_counts = latency_buckets_;
  stats.latency_count = latency_count_;
  stats.latency_sum = latency_sum_;
  return stats;
}

void Scheduler::StartDraining() {
  std::lock_guard lock(mutex_);
  draining_ = true;
  while (!queue_.empty()) {
    CancelQueuedLocked(queue_.front(), "the supervisor is shutting down; it had not started");
  }
  CheckIdleLocked();
}

void Scheduler::CancelRunning() {
  std::lock_guard lock(mutex_);
  for (auto& [id, entry] : live_) {
    if (entry->state != Entry::State::kRunning) continue;
    uint64_t one = 1;
    ssize_t written = write(entry->cancel_fd.get(), &one, sizeof(one));
    (void)written;  // an eventfd write of 1 fails only at the counter's limit
  }
}

}  // namespace packvisor
