// `packvisor worker`: one thread (this file's Worker) owns both broker connections (rabbitmq-c is
// not thread-safe): it consumes, starts executions on their own threads (execution_threads.h),
// and publishes and acks what they hand back. docs/worker.md describes the lifecycle.
#include "supervisor/worker/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "envs/safe_fs.h"
#include "sandbox/cgroup.h"
#include "sandbox/os/syscalls.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/config/builtin_runtimes.h"
#include "supervisor/config/config.h"
#include "supervisor/executions/crash_cleanup.h"
#include "supervisor/executions/execution.h"
#include "supervisor/executions/execution_store.h"
#include "supervisor/executions/exit_status.h"
#include "supervisor/executions/logging.h"
#include "supervisor/executions/notify.h"
#include "supervisor/queue/amqp.h"
#include "supervisor/queue/broker_settings.h"
#include "supervisor/queue/protocol.h"
#include "supervisor/queue/sealed_secrets.h"
#include "supervisor/worker/execution_threads.h"

namespace packvisor {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t EpochMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Where one delivery of a request wants its result. Its tag is valid only on the consuming
// connection it came on: a reconnect voids every Reply.
struct Reply {
  uint64_t delivery_tag = 0;
  std::string reply_to;
  std::string correlation_id;
  int attempt = 1;
  bool redelivered = false;
};

// A request delivered but not started yet (unacked: it waits for a free slot, or for the close
// of the channel when the worker drains).
struct Pending {
  queue::QueueRequest request;
  Reply reply;
};

struct Running {
  std::string action_ref;
  unique_fd cancel_fd;  // an eventfd: a write cancels the execution
  int attempt = 1;
  // Every delivery of this execution id on the current connection; the first one started it.
  std::vector<Reply> replies;
};

bool IsFinalStatus(const std::string& status) {
  return status != "queued" && status != "running" && status != "abandoned";
}

nlohmann::json ResultWithoutRunning(const std::string& execution_id, const std::string& action_ref,
                                    ExecutionStatus status, const std::string& error) {
  ExecutionResult result;
  result.execution_id = execution_id;
  result.action_ref = action_ref;
  result.status = status;
  result.error = error;
  return result.ToJson();
}

std::string Describe(const std::string& execution_id, const std::string& action_ref) {
  return "execution " + (execution_id.empty() ? std::string("(no id)") : execution_id) + " (" +
         (action_ref.empty() ? std::string("no action") : action_ref) + ")";
}

struct WorkerSetup {
  Config config;
  envs::RuntimeRegistry runtimes;
  std::vector<std::string> served;  // runtime names whose queues this worker consumes
  std::string name;
  queue::PrivateKey key;
  std::unique_ptr<ExecutionStore> store;
  queue::BrokerSettings consume_broker;
  queue::BrokerSettings publish_broker;
  unique_fd signal_fd;
  unique_fd lock;  // flock'ed {state_dir}/worker/lock, held for the process's life
};

class Worker {
 public:
  explicit Worker(WorkerSetup setup)
      : setup_(std::move(setup)),
        context_{setup_.config, setup_.runtimes, nullptr},
        threads_(context_, *setup_.store),
        max_concurrent_(
            std::max<size_t>(1, static_cast<size_t>(setup_.config.worker.max_concurrent))),
        random_(std::random_device{}()) {}

  ~Worker() {
    // Only on an early return: cancel what still runs; ~ExecutionThreads joins the threads.
    for (auto& [id, running] : running_) WriteCancel(running);
  }

  Result<void> Init() { return threads_.Init(); }

  int Run() {
    next_attempt_ = Clock::now();
    for (;;) {
      HandleSignals();
      if (Connected()) {
        for (ExecutionEventOut& event : threads_.Take()) HandleEvent(event);
      } else {
        for (ExecutionEventOut& event : threads_.Take()) HandleEventOffline(event);
      }
      ForgetExpiredCancels();
      if (draining_) {
        if (running_.empty()) break;
        if (!drain_cancelled_ && Clock::now() >= drain_deadline_) {
          spdlog::warn("drain: worker.drain_seconds passed; cancelling {} execution(s)",
                       running_.size());
          for (auto& [id, running] : running_) WriteCancel(running);
          drain_cancelled_ = true;
        }
      }
      if (!Connected()) {
        // While draining, a lost broker is not reconnected: the old deliveries could not be
        // acked on a new connection anyway, and the results are in the store.
        if (draining_ || Clock::now() < next_attempt_) {
          Wait(draining_ ? milliseconds(200)
                         : std::min(milliseconds(200), std::chrono::duration_cast<milliseconds>(
                                                           next_attempt_ - Clock::now())));
          continue;
        }
        Connect();
        continue;
      }
      StartPending();
      if (!Connected()) continue;
      bool busy = !running_.empty() || !pending_.empty();
      auto delivery = consume_->NextDelivery(busy ? milliseconds(2) : milliseconds(200));
      if (!delivery) {
        Lost("waiting for deliveries", delivery.error());
        continue;
      }
      if (*delivery) HandleDelivery(std::move(**delivery));
      if (Connected() && Clock::now() - last_keepalive_ > std::chrono::seconds(1)) {
        last_keepalive_ = Clock::now();
        if (auto alive = publish_->KeepAlive(); !alive)
          Lost("publishing connection", alive.error());
      }
    }
    (void)NotifySystemd("STOPPING=1");
    // Closing the channels hands every unacked delivery (held while draining) back to the broker.
    Disconnect();
    spdlog::info("drained; exiting");
    return 0;
  }

 private:
  bool Connected() const { return consume_ != nullptr; }

  // ---- signals and waiting ----

  void HandleSignals() {
    struct signalfd_siginfo info {};
    while (read(setup_.signal_fd.get(), &info, sizeof(info)) ==
           static_cast<ssize_t>(sizeof(info))) {
      spdlog::info("received {}", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      if (draining_) continue;
      draining_ = true;
      drain_deadline_ = Clock::now() + std::chrono::seconds(setup_.config.worker.drain_seconds);
      spdlog::info(
          "draining: taking no new request; {} running, {} delivered and not started (left to "
          "the broker); waiting up to {} s",
          running_.size(), pending_.size(), setup_.config.worker.drain_seconds);
      (void)NotifySystemd("STOPPING=1");
    }
  }

  // Sleeps up to `timeout`, waking early for a signal or an execution's event.
  void Wait(milliseconds timeout) {
    struct pollfd fds[2] = {{setup_.signal_fd.get(), POLLIN, 0}, {threads_.event_fd(), POLLIN, 0}};
    (void)poll(fds, 2, static_cast<int>(std::max<int64_t>(0, timeout.count())));
  }

  // ---- the connections ----

  void Connect() {
    spdlog::info("connecting to {}", queue::RedactedBrokerUrl(setup_.consume_broker.url));
    auto connected = OpenAndDeclare();
    if (!connected) {
      auto delay = Backoff();
      spdlog::warn("broker {}: {}; retrying in {} ms",
                   queue::RedactedBrokerUrl(setup_.consume_broker.url), connected.error().message(),
                   delay.count());
      consume_.reset();
      publish_.reset();
      next_attempt_ = Clock::now() + delay;
      return;
    }
    failures_ = 0;
    last_keepalive_ = Clock::now();
    std::string queues;
    for (const std::string& runtime : setup_.served) {
      queues += (queues.empty() ? "" : ", ") + queue::RunQueueName(runtime);
    }
    spdlog::info("worker {} consuming {} (prefetch {})", setup_.name, queues, max_concurrent_);
    if (!ready_sent_) {
      ready_sent_ = true;
      if (auto notified = NotifySystemd("READY=1"); !notified) {
        spdlog::warn("telling systemd we are ready: {}", notified.error().message());
      }
    }
  }

  Result<void> OpenAndDeclare() {
    auto consume =
        queue::AmqpConnection::Open(setup_.consume_broker.url, setup_.consume_broker.options);
    if (!consume) return consume.error();
    auto publish =
        queue::AmqpConnection::Open(setup_.publish_broker.url, setup_.publish_broker.options);
    if (!publish) return publish.error();
    consume_ = std::move(*consume);
    publish_ = std::move(*publish);
    queue::AmqpConnection& c = *consume_;
    // Every worker declares the same objects with the same arguments: idempotent.
    for (auto [name, type] :
         {std::pair{queue::kExecutionsExchange, "topic"},
          std::pair{queue::kEventsExchange, "topic"}, std::pair{queue::kCancelExchange, "fanout"},
          std::pair{queue::kDeadExchange, "fanout"}}) {
      if (auto declared = c.DeclareExchange(name, type); !declared) return declared.error();
    }
    queue::QueueOptions dead;
    dead.quorum = true;
    if (auto declared = c.DeclareQueue(queue::kDeadQueue, dead); !declared) {
      return declared.error();
    }
    if (auto bound = c.BindQueue(queue::kDeadQueue, queue::kDeadExchange, ""); !bound) {
      return bound.error();
    }
    queue::QueueOptions run;
    run.quorum = true;
    run.delivery_limit = setup_.config.worker.delivery_limit;
    run.dead_letter_exchange = queue::kDeadExchange;
    for (const std::string& runtime : setup_.served) {
      std::string name = queue::RunQueueName(runtime);
      if (auto declared = c.DeclareQueue(name, run); !declared) return declared.error();
      if (auto bound = c.BindQueue(name, queue::kExecutionsExchange, queue::RunRoutingKey(runtime));
          !bound) {
        return bound.error();
      }
    }
    queue::QueueOptions own;
    own.durable = false;
    own.exclusive = true;
    own.auto_delete = true;
    auto cancel_queue = c.DeclareQueue("", own);
    if (!cancel_queue) return cancel_queue.error();
    if (auto bound = c.BindQueue(*cancel_queue, queue::kCancelExchange, ""); !bound) {
      return bound.error();
    }
    if (auto confirms = publish_->EnableConfirms(); !confirms) return confirms.error();
    // basic.qos is per consumer (quorum queues have no global prefetch).
    if (auto prefetch =
            c.SetPrefetch(static_cast<uint16_t>(std::min<size_t>(max_concurrent_, 65535)));
        !prefetch) {
      return prefetch.error();
    }
    auto cancel_tag = c.Consume(*cancel_queue);
    if (!cancel_tag) return cancel_tag.error();
    cancel_tag_ = *cancel_tag;
    for (const std::string& runtime : setup_.served) {
      if (auto tag = c.Consume(queue::RunQueueName(runtime)); !tag) return tag.error();
    }
    return Ok{};
  }

  std::chrono::milliseconds Backoff() {
    // Capped, jittered exponential backoff: 1 s, 2 s, 4 s ... up to reconnect_max_seconds, each
    // drawn in [half, whole] so that workers that lost the same broker do not all come back at
    // once.
    int64_t cap_ms = std::max<int64_t>(1, setup_.config.worker.reconnect_max_seconds) * 1000;
    int64_t whole = std::min<int64_t>(cap_ms, int64_t{1000} << std::min(failures_, 20));
    ++failures_;
    std::uniform_int_distribution<int64_t> draw(whole / 2, whole);
    return milliseconds(draw(random_));
  }

  // The connection failed: both are closed; the deliveries held are void (the broker requeues
  // them); what runs goes on, and its result is kept in the store until its request comes back.
  void Lost(const std::string& what, const Error& error) {
    auto delay = Backoff();
    spdlog::warn("broker connection lost ({}: {}); {} execution(s) go on; reconnecting in {} ms",
                 what, error.message(), running_.size(), delay.count());
    Disconnect();
    next_attempt_ = Clock::now() + delay;
  }

  void Disconnect() {
    consume_.reset();
    publish_.reset();
    cancel_tag_.clear();
    for (Pending& pending : pending_) WipePending(pending);
    pending_.clear();
    for (auto& [id, running] : running_) running.replies.clear();
  }

  static void WipePending(Pending& pending) {
    if (pending.request.sealed_secrets) WipeString(*pending.request.sealed_secrets);
  }

  // ---- publishing (each false: the connection is lost) ----

  // Publishes `result` to the delivery's reply_to (when it has one), then acks the delivery.
  bool Answer(const Reply& reply, const nlohmann::json& result, const std::string& what) {
    if (!reply.reply_to.empty()) {
      queue::Message message;
      message.body = queue::ResultBody(result, reply.attempt, reply.redelivered);
      message.correlation_id = reply.correlation_id;
      auto published = publish_->Publish("", reply.reply_to, message, /*mandatory=*/true);
      if (!published) {
        if (published.error().err != EHOSTUNREACH) {
          Lost("publishing the result of " + what, published.error());
          return false;
        }
        spdlog::warn("{}: the reply queue {} is gone; the result stays in the worker's store", what,
                     reply.reply_to);
      }
    }
    if (auto acked = consume_->Ack(reply.delivery_tag); !acked) {
      Lost("acking " + what, acked.error());
      return false;
    }
    return true;
  }

  bool PublishEvent(const std::string& execution_id, std::string body) {
    queue::Message message;
    message.body = std::move(body);
    message.persistent = false;
    auto published =
        publish_->Publish(queue::kEventsExchange, queue::EventRoutingKey(execution_id), message);
    if (!published) {
      Lost("publishing an event of execution " + execution_id, published.error());
      return false;
    }
    return true;
  }

  // ---- deliveries ----

  // A redelivery means that a consumer died or lost its connection, maybe a peer worker on this
  // host and cgroup parent: its sandboxes died with it (PDEATHSIG), their cgroup directories did
  // not, and only a worker's start-up cleans up. So a redelivery, and the end of a redelivered
  // execution (by then the dead peer has surely been reaped: a zombie still counts as running),
  // sweep the execution cgroups whose supervisor is gone. Safe beside live peers: a cgroup whose
  // pid runs is never touched (RemoveStaleCgroups).
  void RemoveDeadPeersCgroups() {
    std::vector<sandbox::StaleCgroup> cgroups;
    sandbox::RemoveStaleCgroups(sandbox::CgroupLayout::Probe(), setup_.config.sandbox.cgroup_parent,
                                &cgroups);
    for (const sandbox::StaleCgroup& cgroup : cgroups) {
      if (cgroup.removed) {
        spdlog::info("removed execution cgroup {} of a dead supervisor ({} processes killed)",
                     cgroup.path, cgroup.processes_killed);
      } else {
        spdlog::warn("could not remove execution cgroup {} of a dead supervisor", cgroup.path);
      }
    }
  }

  void HandleDelivery(queue::Delivery delivery) {
    if (!cancel_tag_.empty() && delivery.consumer_tag == cancel_tag_) {
      HandleCancel(delivery);
      return;
    }
    Reply reply;
    reply.delivery_tag = delivery.delivery_tag;
    reply.reply_to = delivery.message.reply_to;
    reply.correlation_id = delivery.message.correlation_id;
    reply.attempt = delivery.delivery_count ? static_cast<int>(*delivery.delivery_count) + 1 : 1;
    reply.redelivered = delivery.redelivered || reply.attempt > 1;
    if (reply.redelivered) RemoveDeadPeersCgroups();
    auto parsed = queue::ParseQueueRequest(delivery.message.body);
    if (auto* refusal = std::get_if<queue::RequestRefusal>(&parsed)) {
      Refuse(delivery, reply, *refusal);
      WipeString(delivery.message.body);
      return;
    }
    WipeString(delivery.message.body);
    Pending pending{std::move(std::get<queue::QueueRequest>(parsed)), reply};
    if (draining_) {
      // Held unacked until the channel closes, unless it belongs to what runs here.
      if (running_.count(pending.request.execution_id) == 0) {
        pending_.push_back(std::move(pending));
        return;
      }
    }
    Dispose(std::move(pending));
  }

  void Refuse(const queue::Delivery& delivery, const Reply& reply,
              const queue::RequestRefusal& refusal) {
    std::string what = Describe(refusal.execution_id, refusal.action_ref);
    spdlog::warn("{}: refused (attempt {}): {}", what, reply.attempt, refusal.reason);
    if (reply.reply_to.empty() || refusal.plain_secrets) {
      queue::Message dead;
      dead.body = queue::DeadLetterBody(delivery.message.body, refusal);
      dead.headers[queue::kDeadLetterReasonHeader] = refusal.reason;
      auto published = publish_->Publish(queue::kDeadExchange, "", dead);
      if (!published) {
        Lost("dead-lettering " + what, published.error());
        return;
      }
    }
    Answer(reply,
           ResultWithoutRunning(refusal.execution_id, refusal.action_ref,
                                ExecutionStatus::kRejected, refusal.reason),
           what);
  }

  void HandleCancel(const queue::Delivery& delivery) {
    std::optional<std::string> id = queue::ParseCancelBody(delivery.message.body);
    if (!id) {
      spdlog::warn("a malformed cancel message was ignored ({} bytes)",
                   delivery.message.body.size());
    } else if (auto it = running_.find(*id); it != running_.end()) {
      spdlog::info("{}: cancel requested", Describe(*id, it->second.action_ref));
      WriteCancel(it->second);
    } else {
      spdlog::info("execution {}: cancel remembered for {} s (not running here)", *id,
                   setup_.config.worker.cancel_memory_seconds);
      cancels_[*id] =
          Clock::now() + std::chrono::seconds(setup_.config.worker.cancel_memory_seconds);
    }
    if (auto acked = consume_->Ack(delivery.delivery_tag); !acked) {
      Lost("acking a cancel message", acked.error());
    }
  }

  void ForgetExpiredCancels() {
    auto now = Clock::now();
    for (auto it = cancels_.begin(); it != cancels_.end();) {
      it = it->second <= now ? cancels_.erase(it) : std::next(it);
    }
  }

  static void WriteCancel(Running& running) {
    uint64_t one = 1;
    ssize_t written = write(running.cancel_fd.get(), &one, sizeof(one));
    (void)written;  // an eventfd write of 1 fails only at the counter's limit
  }

  // A parsed request: answered from what this worker knows, started, or left waiting.
  void Dispose(Pending pending) {
    const queue::QueueRequest& request = pending.request;
    const std::string& id = request.execution_id;
    std::string what = Describe(id, request.action_ref);
    if (auto it = running_.find(id); it != running_.end()) {
      spdlog::info("{}: delivered again while it runs here (attempt {}); it will be answered too",
                   what, pending.reply.attempt);
      pending.reply.redelivered = true;
      it->second.replies.push_back(pending.reply);
      WipePending(pending);
      return;
    }
    auto stored = setup_.store->Get(id);
    if (!stored) {
      spdlog::warn("{}: reading its record: {}", what, stored.error().message());
    } else if (*stored && IsFinalStatus((*stored)->status)) {
      spdlog::info("{}: already finished here ({}); republishing its result (attempt {})", what,
                   (*stored)->status, pending.reply.attempt);
      pending.reply.redelivered = true;
      WipePending(pending);
      Answer(pending.reply, (*stored)->result, what);
      return;
    }
    if (cancels_.count(id) != 0) {
      spdlog::info("{}: cancelled before it started", what);
      WipePending(pending);
      Finish(pending, ExecutionStatus::kCancelled, "cancelled before it started");
      return;
    }
    if (running_.size() >= max_concurrent_) {
      pending_.push_back(std::move(pending));
      return;
    }
    Start(std::move(pending));
  }

  // Answers a request that is not run with a final result, recorded first.
  void Finish(const Pending& pending, ExecutionStatus status, const std::string& error) {
    const queue::QueueRequest& request = pending.request;
    nlohmann::json result =
        ResultWithoutRunning(request.execution_id, request.action_ref, status, error);
    ExecutionRecord record;
    record.execution_id = request.execution_id;
    record.action_ref = request.action_ref;
    record.status = result.value("status", "failed");
    record.submitted_at_ms = EpochMs();
    record.finished_at_ms = record.submitted_at_ms;
    record.result = result;
    if (auto put = setup_.store->Put(record); !put) {
      spdlog::warn("{}: recording its result: {}",
                   Describe(request.execution_id, request.action_ref), put.error().message());
    }
    std::string what = Describe(request.execution_id, request.action_ref);
    if (!Answer(pending.reply, result, what)) return;
    PublishEvent(request.execution_id, queue::ResultEventBody(request.execution_id, result));
  }

  void StartPending() {
    while (!draining_ && Connected() && running_.size() < max_concurrent_ && !pending_.empty()) {
      Pending pending = std::move(pending_.front());
      pending_.pop_front();
      Dispose(std::move(pending));
    }
  }

  void Start(Pending pending) {
    queue::QueueRequest& request = pending.request;
    std::string what = Describe(request.execution_id, request.action_ref);
    nlohmann::json secrets = nlohmann::json::object();
    if (request.sealed_secrets) {
      auto opened = queue::OpenSealedSecrets(*request.sealed_secrets, setup_.key);
      WipeString(*request.sealed_secrets);
      if (!opened) {
        spdlog::warn("{}: rejected: {}", what, opened.error().message());
        Finish(pending, ExecutionStatus::kRejected, opened.error().message());
        return;
      }
      secrets = std::move(*opened);
    }
    unique_fd cancel_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!cancel_fd) {
      WipeJson(secrets);
      Error error = ErrnoError("eventfd", "cancel of " + what);
      spdlog::error("{}", error.message());
      Finish(pending, ExecutionStatus::kSetupFailed, error.message());
      return;
    }
    RunRequest run;
    run.action_ref = request.action_ref;
    run.parameters = std::move(request.parameters);
    run.secrets = std::move(secrets);
    run.timeout_seconds = request.timeout_seconds;
    run.execution_id = request.execution_id;
    run.cancel_fd = cancel_fd.get();
    ExecutionRecord record;
    record.execution_id = request.execution_id;
    record.action_ref = request.action_ref;
    record.status = "running";
    record.submitted_at_ms = EpochMs();
    Running running;
    running.action_ref = request.action_ref;
    running.cancel_fd = std::move(cancel_fd);
    running.attempt = pending.reply.attempt;
    running.replies.push_back(pending.reply);
    running_[request.execution_id] = std::move(running);
    spdlog::info("{}: started (attempt {}{})", what, pending.reply.attempt,
                 pending.reply.redelivered ? ", redelivered" : "");
    threads_.Start(std::move(run), std::move(record), request.stream_output);
    PublishEvent(request.execution_id,
                 queue::RunningEventBody(request.execution_id, pending.reply.attempt, setup_.name));
  }

  // ---- what the executions hand back ----

  void HandleEvent(ExecutionEventOut& event) {
    if (!Connected()) {
      HandleEventOffline(event);
      return;
    }
    auto it = running_.find(event.execution_id);
    if (it == running_.end()) return;
    if (event.kind == ExecutionEventOut::Kind::kOutput) {
      PublishEvent(event.execution_id,
                   queue::OutputEventBody(event.execution_id, event.stream, event.data));
      return;
    }
    Running running = std::move(it->second);
    running_.erase(it);
    std::string what = Describe(event.execution_id, running.action_ref);
    spdlog::info("{}: {} (attempt {})", what, event.result.value("status", "failed"),
                 running.attempt);
    if (running.attempt > 1 || std::any_of(running.replies.begin(), running.replies.end(),
                                           [](const Reply& reply) { return reply.redelivered; })) {
      RemoveDeadPeersCgroups();
    }
    for (const Reply& reply : running.replies) {
      if (!Answer(reply, event.result, what)) return;
    }
    if (running.replies.empty()) {
      spdlog::info(
          "{}: its delivery was lost with the connection; the result is kept in the "
          "store and sent when the request is redelivered",
          what);
    }
    PublishEvent(event.execution_id, queue::ResultEventBody(event.execution_id, event.result));
  }

  void HandleEventOffline(ExecutionEventOut& event) {
    if (event.kind != ExecutionEventOut::Kind::kFinished) return;
    auto it = running_.find(event.execution_id);
    if (it == running_.end()) return;
    spdlog::info(
        "{}: {} (attempt {}); not connected: the result is kept in the store and sent "
        "when the request is redelivered",
        Describe(event.execution_id, it->second.action_ref), event.result.value("status", "failed"),
        it->second.attempt);
    running_.erase(it);
  }

  WorkerSetup setup_;
  ExecutionContext context_;
  std::unique_ptr<queue::AmqpConnection> consume_;
  std::unique_ptr<queue::AmqpConnection> publish_;
  std::string cancel_tag_;
  std::deque<Pending> pending_;
  std::map<std::string, Running> running_;
  std::map<std::string, Clock::time_point> cancels_;  // remembered cancels and their expiry
  bool draining_ = false;
  bool drain_cancelled_ = false;
  bool ready_sent_ = false;
  Clock::time_point drain_deadline_;
  Clock::time_point next_attempt_;
  Clock::time_point last_keepalive_;
  int failures_ = 0;
  // Declared last: destroyed (threads joined) before what the threads use.
  ExecutionThreads threads_;
  size_t max_concurrent_;
  std::mt19937_64 random_;
};

int Fail(const std::string& message) {
  spdlog::critical("{}", message);
  spdlog::default_logger()->flush();
  return kExitOwnError;
}

}  // namespace

int RunWorker(const WorkerOptions& options) {
  // Signals are read from a signalfd by the broker thread.
  sigset_t signals;
  StartLongLivedProcess(options.log_level, {SIGTERM, SIGINT}, &signals);

  WorkerSetup setup;
  setup.signal_fd.reset(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!setup.signal_fd) return Fail(ErrnoError("signalfd").message());
  auto config = LoadConfig(options.config_path);
  if (!config) return Fail(config.error().message());
  setup.config = std::move(*config);
  const Config& cfg = setup.config;
  spdlog::debug("configuration: {}", cfg.source);
  auto runtimes = LoadRuntimeRegistry(cfg);
  if (!runtimes) return Fail(runtimes.error().message());
  setup.runtimes = std::move(*runtimes);
  if (cfg.worker.runtimes.empty()) {
    for (const auto& definition : setup.runtimes.definitions()) {
      setup.served.push_back(definition.name);
    }
  } else {
    for (const std::string& name : cfg.worker.runtimes) {
      auto found = setup.runtimes.Find(name);
      if (!found) return Fail("worker.runtimes: " + found.error().message());
      setup.served.push_back((*found)->name);
    }
  }
  std::sort(setup.served.begin(), setup.served.end());
  setup.served.erase(std::unique(setup.served.begin(), setup.served.end()), setup.served.end());
  setup.name = cfg.worker.name;
  if (setup.name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    setup.name = host;
  }

  // One worker per state_dir: its records and its crash cleanup are its own.
  std::string worker_dir = cfg.state_dir + "/worker";
  auto dir = envs::OpenDirPath(worker_dir, /*create=*/true, 0700);
  if (!dir) return Fail(dir.error().message());
  setup.lock.reset(openat(dir->get(), "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!setup.lock) return Fail(ErrnoError("open", worker_dir + "/lock").message());
  if (flock(setup.lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Fail("another packvisor worker uses state_dir " + cfg.state_dir + " (it holds " +
                  worker_dir + "/lock); give each worker a state_dir of its own");
    }
    return Fail(ErrnoError("flock", worker_dir + "/lock").message());
  }

  // cgroup v2's "no internal processes" rule (see the daemon); a no-op on v1.
  if (auto moved = sandbox::MoveSelfToLeafCgroup(sandbox::CgroupLayout::Probe(), "worker");
      !moved) {
    return Fail(moved.error().message());
  }
  // What a supervisor that died left behind: cgroups (members killed), staging trees, temporary
  // files. Safe while other packvisor processes run.
  auto cleaned = CleanUpAfterCrash(cfg);
  if (!cleaned)
    return Fail("cleaning up after a previous supervisor: " + cleaned.error().message());
  for (const std::string& line : cleaned->removed) spdlog::info("removed {}", line);
  for (const std::string& line : cleaned->kept) spdlog::warn("could not remove {}", line);

  auto key = queue::LoadPrivateKey(cfg.worker.key_file);
  if (!key) {
    return Fail("worker.key_file: " + key.error().message() +
                " (the worker refuses to start without its private key; packvisor keygen "
                "writes a pair)");
  }
  setup.key = std::move(*key);

  auto store = ExecutionStore::Open(worker_dir);
  if (!store) return Fail(store.error().message());
  setup.store = std::move(*store);
  auto abandoned = setup.store->MarkUnfinishedAbandoned();
  if (!abandoned) {
    return Fail("marking unfinished executions abandoned: " + abandoned.error().message());
  }
  for (const std::string& id : *abandoned) {
    spdlog::warn(
        "execution {} had not finished when the worker stopped: abandoned here; it runs again "
        "when the broker redelivers its request",
        id);
  }

  auto consume = queue::BrokerSettingsFromConfig(cfg, std::nullopt,
                                                 "packvisor worker " + setup.name + " (consume)");
  if (!consume) return Fail(consume.error().message());
  setup.consume_broker = std::move(*consume);
  auto publish = queue::BrokerSettingsFromConfig(cfg, std::nullopt,
                                                 "packvisor worker " + setup.name + " (publish)");
  if (!publish) return Fail(publish.error().message());
  setup.publish_broker = std::move(*publish);

  Worker worker(std::move(setup));
  if (auto init = worker.Init(); !init) return Fail(init.error().message());
  int code = worker.Run();
  spdlog::default_logger()->flush();
  return code;
}

}  // namespace packvisor
