// ExecutionStore: one JSON file per execution in {state_dir}/executions (see the header).
#include "supervisor/executions/execution_store.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <mutex>

#include "envs/safe_fs.h"
#include "sandbox/os/syscalls.h"

namespace packvisor {
namespace {

constexpr char kDirName[] = "executions";
constexpr char kSuffix[] = ".json";
constexpr char kTempPrefix[] = ".tmp-";
// A record holds at most both capped outputs (1 GiB each at most), JSON-escaped.
constexpr size_t kMaxRecordBytes = size_t{1} << 33;
constexpr size_t kMaxIdLength = 128;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ids become file names: letters, digits, '-' and '_' only (a UUID, or a test's own name).
bool IsStorableId(const std::string& id) {
  return !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

bool IsFinal(const std::string& status) { return status != "queued" && status != "running"; }

std::string Rfc3339Ms(int64_t ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char text[96];  // room for any int the format could be given
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return text;
}

Result<ExecutionRecord> RecordFromJson(const nlohmann::json& j) {
  try {
    ExecutionRecord record;
    record.execution_id = j.at("execution_id").get<std::string>();
    record.action_ref = j.at("action_ref").get<std::string>();
    record.status = j.at("status").get<std::string>();
    record.submitted_at_ms = j.at("submitted_at_ms").get<int64_t>();
    record.started_at_ms = j.value("started_at_ms", int64_t{0});
    record.finished_at_ms = j.value("finished_at_ms", int64_t{0});
    record.submitted_by_uid = j.value("submitted_by_uid", uid_t{0});
    record.result = j.value("result", nlohmann::json());
    record.result_is_lines = j.value("result_is_lines", false);
    return record;
  } catch (const nlohmann::json::exception& e) {
    return Failure("", "", e.what());
  }
}

}  // namespace

nlohmann::json ExecutionRecord::ToJson() const {
  nlohmann::json j = {{"execution_id", execution_id},
                      {"action_ref", action_ref},
                      {"status", status},
                      {"submitted_at_ms", submitted_at_ms},
                      {"started_at_ms", started_at_ms},
                      {"finished_at_ms", finished_at_ms},
                      {"submitted_by_uid", submitted_by_uid},
                      {"result", result}};
  if (result_is_lines) j["result_is_lines"] = true;
  return j;
}

Result<std::unique_ptr<ExecutionStore>> ExecutionStore::Open(const std::string& state_dir) {
  auto state = envs::OpenDirPath(state_dir, /*create=*/true, 0755);
  if (!state) return state.error();
  std::string path = state_dir + "/" + kDirName;
  if (mkdirat(state->get(), kDirName, 0700) != 0 && errno != EEXIST) {
    return ErrnoError("create", path);
  }
  unique_fd dir(os::Openat2(state->get(), kDirName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                            0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
  if (!dir) return ErrnoError("open", path);
  struct stat st {};
  if (fstat(dir.get(), &st) != 0) return ErrnoError("stat", path);
  // Records are written by this process's user only; another owner could have planted records.
  if (st.st_uid != geteuid()) {
    return Failure("open", path, "owned by uid " + std::to_string(st.st_uid) + ", not by us");
  }
  if ((st.st_mode & 07777) != 0700 && fchmod(dir.get(), 0700) != 0) {
    return ErrnoError("chmod 0700", path);
  }
  return std::unique_ptr<ExecutionStore>(new ExecutionStore(std::move(dir), std::move(path)));
}

ExecutionStore::ExecutionStore(unique_fd dir, std::string path)
    : dir_(std::move(dir)), path_(std::move(path)) {}

ExecutionStore::~ExecutionStore() = default;

Result<void> ExecutionStore::Put(const ExecutionRecord& record) {
  if (!IsStorableId(record.execution_id)) {
    return Failure("store execution", "\"" + record.execution_id + "\"",
                   "an id is 1 to 128 of [A-Za-z0-9_-]");
  }
  std::string name = record.execution_id + kSuffix;
  std::string temp = kTempPrefix + record.execution_id + "-" + envs::RandomSuffix();
  // Invalid UTF-8 in captured output is replaced, not refused: a record is always writable.
  std::string content =
      record.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  unique_fd file(
      openat(dir_.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!file) return ErrnoError("create", path_ + "/" + temp);
  auto written = os::WriteAll(file.get(), content.data(), content.size(), path_ + "/" + temp);
  if (written && fsync(file.get()) != 0) written = ErrnoError("fsync", path_ + "/" + temp);
  if (written && renameat(dir_.get(), temp.c_str(), dir_.get(), name.c_str()) != 0) {
    written = ErrnoError("rename", path_ + "/" + name);
  }
  if (!written) {
    unlinkat(dir_.get(), temp.c_str(), 0);
    return written;
  }
  // The rename is durable once the directory is.
  if (fsync(dir_.get()) != 0) return ErrnoError("fsync", path_);
  return Ok{};
}

Result<std::optional<ExecutionRecord>> ExecutionStore::Get(const std::string& execution_id) const {
  if (!IsStorableId(execution_id)) return std::optional<ExecutionRecord>();
  std::string name = execution_id + kSuffix;
  auto content = envs::ReadSmallFileAt(dir_.get(), name, kMaxRecordBytes);
  if (!content) {
    if (content.error().err == ENOENT) return std::optional<ExecutionRecord>();
    return content.error();
  }
  nlohmann::json j = nlohmann::json::parse(*content, nullptr, /*allow_exceptions=*/false);
  auto record = RecordFromJson(j);
  if (!record) return Failure("read", path_ + "/" + name, record.error().message());
  return std::optional<ExecutionRecord>(std::move(*record));
}

Result<std::vector<ExecutionRecord>> ExecutionStore::List() const {
  auto names = envs::DirectoryEntriesAt(dir_.get());
  if (!names) return names.error();
  std::vector<ExecutionRecord> records;
  for (const std::string& name : *names) {
    size_t suffix = sizeof(kSuffix) - 1;
    if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSuffix) != 0 ||
        name[0] == '.') {
      continue;
    }
    auto record = Get(name.substr(0, name.size() - suffix));
    if (!record) {
      spdlog::warn("execution record skipped: {}", record.error().message());
      continue;
    }
    if (*record) records.push_back(std::move(**record));
  }
  std::sort(records.begin(), records.end(), [](const ExecutionRecord& a, const ExecutionRecord& b) {
    if (a.submitted_at_ms != b.submitted_at_ms) return a.submitted_at_ms > b.submitted_at_ms;
    return a.execution_id > b.execution_id;
  });
  return records;
}

Result<std::vector<std::string>> ExecutionStore::MarkUnfinishedAbandoned() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Temporary files of writes a crash interrupted: never renamed, so never a record.
  auto names = envs::DirectoryEntriesAt(dir_.get());
  if (!names) return names.error();
  for (const std::string& name : *names) {
    if (name.rfind(kTempPrefix, 0) == 0 && unlinkat(dir_.get(), name.c_str(), 0) != 0 &&
        errno != ENOENT) {
      return ErrnoError("remove", path_ + "/" + name);
    }
  }
  auto records = List();
  if (!records) return records.error();
  int64_t now = NowMs();
  std::vector<std::string> marked;
  for (ExecutionRecord& record : *records) {
    if (IsFinal(record.status)) continue;
    ExecutionResult result;
    result.execution_id = record.execution_id;
    result.action_ref = record.action_ref.empty() ? "exec" : record.action_ref;
    result.status = ExecutionStatus::kAbandoned;
    result.error = "the supervisor restarted (at " + Rfc3339Ms(now) +
                   ") before this execution finished; it was " + record.status;
    if (record.started_at_ms > 0)
      result.duration_ms = std::max<int64_t>(0, now - record.started_at_ms);
    record.status = ExecutionStatusName(ExecutionStatus::kAbandoned);
    record.finished_at_ms = now;
    record.result = result.ToJson();
    PV_TRY(Put(record));
    marked.push_back(record.execution_id);
  }
  return marked;
}

Result<size_t> ExecutionStore::RemoveExpired(std::chrono::seconds ttl) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto records = List();
  if (!records) return records.error();
  int64_t cutoff = NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
  size_t removed = 0;
  for (const ExecutionRecord& record : *records) {
    if (!IsFinal(record.status) || record.finished_at_ms == 0 || record.finished_at_ms > cutoff) {
      continue;
    }
    std::string name = record.execution_id + kSuffix;
    if (unlinkat(dir_.get(), name.c_str(), 0) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("remove", path_ + "/" + name);
    }
    ++removed;
  }
  if (removed > 0 && fsync(dir_.get()) != 0) return ErrnoError("fsync", path_);
  return removed;
}

}  // namespace packvisor
