// Execution records in state_dir (`{state_dir}/executions/{id}.json`, directory 0700, files
// 0600), for the adapters that accept work and answer for it later (the daemon, the queue
// worker). A record never holds a secret: it has no parameters and no secrets, only the result
// object (which holds what the action itself printed). Ids are file names: 1 to 128 of
// [A-Za-z0-9_-]; Put refuses others and Get finds nothing for them. Writes are atomic (temporary
// file in the same directory, fsync, rename, fsync of the directory) and fd-relative from a
// directory opened O_NOFOLLOW: root never follows a path someone else could have written.
//
// Thread-safety: every member may be called from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/os/unique_fd.h"
#include "supervisor/executions/execution_result.h"

namespace packvisor {

struct ExecutionRecord {
  std::string execution_id;
  std::string action_ref;  // "" for a raw exec
  std::string status;      // "queued", "running", or a final ExecutionStatusName (or "abandoned")
  int64_t submitted_at_ms = 0;  // Unix epoch milliseconds
  int64_t started_at_ms = 0;    // 0: not started
  int64_t finished_at_ms = 0;   // 0: not finished
  uid_t submitted_by_uid = 0;
  // The SPEC §7 result object once final (with "status"); null before.
  nlohmann::json result;
  // `result.result` holds the lines of a jsonl output (ExecutionResult::result_is_lines): the
  // output stream's result line says so for an execution already finished.
  bool result_is_lines = false;
  nlohmann::json ToJson() const;
};

class ExecutionStore {
 public:
  // Opens (creating 0700, no symlink followed at any level) `{state_dir}/executions`.
  static Result<std::unique_ptr<ExecutionStore>> Open(const std::string& state_dir);

  // Writes the record (create or replace), durably, before returning.
  Result<void> Put(const ExecutionRecord& record);
  Result<std::optional<ExecutionRecord>> Get(const std::string& execution_id) const;
  // Every record, newest submitted first. A record that does not parse is skipped and logged.
  Result<std::vector<ExecutionRecord>> List() const;

  // At start-up: every record still "queued" or "running" becomes final with status
  // "abandoned" and the error "the supervisor restarted (…) before this execution finished; it
  // was <queued|running>". Returns the ids it marked.
  Result<std::vector<std::string>> MarkUnfinishedAbandoned();

  // Removes final records finished longer than `ttl` ago. Returns how many it removed.
  Result<size_t> RemoveExpired(std::chrono::seconds ttl);

  ~ExecutionStore();
  ExecutionStore(const ExecutionStore&) = delete;
  ExecutionStore& operator=(const ExecutionStore&) = delete;

 private:
  ExecutionStore(unique_fd dir, std::string path);

  unique_fd dir_;     // {state_dir}/executions, opened without following a symlink
  std::string path_;  // for messages
  // Serializes the read-modify-write passes (MarkUnfinishedAbandoned, RemoveExpired); Put, Get
  // and List are atomic by themselves (rename).
  std::mutex mutex_;
};

}  // namespace packvisor
