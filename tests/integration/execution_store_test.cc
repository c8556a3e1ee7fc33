// ExecutionStore on real files: records under {state_dir}/executions (0700, files 0600), atomic
// replacement, no symlink followed, no secret in any file after a real run with a secret, and the
// start-up passes (MarkUnfinishedAbandoned, RemoveExpired).
#include "supervisor/executions/execution_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/run_fixtures.h"

namespace packvisor::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ExecutionRecord Record(const std::string& id, const std::string& status, int64_t submitted_at_ms,
                       int64_t finished_at_ms = 0) {
  ExecutionRecord record;
  record.execution_id = id;
  record.action_ref = "p.a";
  record.status = status;
  record.submitted_at_ms = submitted_at_ms;
  record.started_at_ms = status == "queued" ? 0 : submitted_at_ms + 1;
  record.finished_at_ms = finished_at_ms;
  record.submitted_by_uid = 1234;
  return record;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(ExecutionStoreTest, CreatesAPrivateDirectoryAndPrivateFiles) {
  TempDir dir;
  std::string state = dir.Path("state/nested");
  auto store = ExecutionStore::Open(state);
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_EQ(ModeOf(state + "/executions"), 0700u);
  ASSERT_TRUE((*store)->Put(Record("one", "queued", 1000)).ok());
  EXPECT_EQ(ModeOf(state + "/executions/one.json"), 0600u);
  // Nothing but the record: the temporary file was renamed over it.
  EXPECT_EQ(DirectoryEntries(state + "/executions"), (std::set<std::string>{"one.json"}));

  auto got = (*store)->Get("one");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->ToJson(), Record("one", "queued", 1000).ToJson());
  auto missing = (*store)->Get("two");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  // An id that is no file name is not found, and cannot be stored.
  auto traversal = (*store)->Get("../executions/one");
  ASSERT_TRUE(traversal.ok());
  EXPECT_FALSE(traversal->has_value());
  auto bad_put = (*store)->Put(Record("../x", "queued", 1));
  ASSERT_FALSE(bad_put.ok());
  EXPECT_THAT(bad_put.error().message(), HasSubstr("\"../x\""));

  // A wider mode left by someone else is narrowed on open.
  chmod((state + "/executions").c_str(), 0755);
  ASSERT_TRUE(ExecutionStore::Open(state).ok());
  EXPECT_EQ(ModeOf(state + "/executions"), 0700u);
}

TEST(ExecutionStoreTest, NeverFollowsASymlink) {
  TempDir dir;
  TempDir elsewhere;
  std::filesystem::create_directories(dir.Path("state"));
  std::filesystem::create_symlink(elsewhere.path(), dir.Path("state/executions"));
  auto store = ExecutionStore::Open(dir.Path("state"));
  EXPECT_FALSE(store.ok());
  std::filesystem::create_symlink(elsewhere.path(), dir.Path("linked_state"));
  EXPECT_FALSE(ExecutionStore::Open(dir.Path("linked_state")).ok());
  EXPECT_TRUE(DirectoryEntries(elsewhere.path()).empty());

  // A record name that is a symlink is not read through.
  auto real = ExecutionStore::Open(dir.Path("real"));
  ASSERT_TRUE(real.ok());
  elsewhere.Write("target.json", Record("planted", "succeeded", 1, 2).ToJson().dump());
  std::filesystem::create_symlink(elsewhere.Path("target.json"),
                                  dir.Path("real/executions/planted.json"));
  auto got = (*real)->Get("planted");
  EXPECT_FALSE(got.ok() && got->has_value());
}

TEST(ExecutionStoreTest, RefusesADirectoryOwnedBySomeoneElse) {
  TempDir dir;
  std::filesystem::create_directories(dir.Path("state/executions"));
  ASSERT_EQ(chown(dir.Path("state/executions").c_str(), 100123, 100123), 0);
  auto store = ExecutionStore::Open(dir.Path("state"));
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.error().message(), HasSubstr("owned by uid 100123"));
}

TEST(ExecutionStoreTest, ListsNewestFirstAndSkipsBrokenRecords) {
  TempDir dir;
  auto store = ExecutionStore::Open(dir.Path("state"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put(Record("old", "succeeded", 1000, 2000)).ok());
  ASSERT_TRUE((*store)->Put(Record("new", "running", 3000)).ok());
  ASSERT_TRUE((*store)->Put(Record("mid", "queued", 2000)).ok());
  dir.Write("state/executions/broken.json", "{not json", 0600);
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok()) << list.error().message();
  std::vector<std::string> ids;
  for (const auto& record : *list) ids.push_back(record.execution_id);
  EXPECT_THAT(ids, ElementsAre("new", "mid", "old"));
}

TEST(ExecutionStoreTest, ReplacementIsAtomicUnderConcurrentReaders) {
  TempDir dir;
  auto store = ExecutionStore::Open(dir.Path("state"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put(Record("x", "queued", 1)).ok());
  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0};
  std::thread reader([&] {
    while (!done) {
      auto got = (*store)->Get("x");
      if (!got.ok() || !got->has_value()) ++bad_reads;
    }
  });
  for (int i = 0; i < 200; ++i) {
    ExecutionRecord record = Record("x", i % 2 ? "running" : "queued", 1);
    record.result = {{"filler", std::string(static_cast<size_t>(i) * 100, 'f')}};
    ASSERT_TRUE((*store)->Put(record).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad_reads, 0);
  EXPECT_EQ(DirectoryEntries(dir.Path("state/executions")), (std::set<std::string>{"x.json"}));
}

TEST(ExecutionStoreTest, UnfinishedRecordsBecomeAbandonedAfterARestart) {
  TempDir dir;
  {
    auto store = ExecutionStore::Open(dir.Path("state"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Put(Record("q", "queued", 1000)).ok());
    ASSERT_TRUE((*store)->Put(Record("r", "running", 2000)).ok());
    ExecutionRecord done = Record("d", "succeeded", 3000, 4000);
    done.result = {{"status", "succeeded"}};
    ASSERT_TRUE((*store)->Put(done).ok());
    // A write a crash interrupted.
    dir.Write("state/executions/.tmp-r-0123456789abcdef", "{\"execution_id\":", 0600);
  }
  auto store = ExecutionStore::Open(dir.Path("state"));  // "the next start"
  ASSERT_TRUE(store.ok());
  auto marked = (*store)->MarkUnfinishedAbandoned();
  ASSERT_TRUE(marked.ok()) << marked.error().message();
  EXPECT_THAT(*marked, UnorderedElementsAre("q", "r"));
  EXPECT_EQ(DirectoryEntries(dir.Path("state/executions")),
            (std::set<std::string>{"q.json", "r.json", "d.json"}));
  for (const auto& [id, was] : {std::pair{"q", "queued"}, std::pair{"r", "running"}}) {
    auto got = (*store)->Get(id);
    ASSERT_TRUE(got.ok() && got->has_value());
    const ExecutionRecord& record = **got;
    EXPECT_EQ(record.status, "abandoned");
    EXPECT_GT(record.finished_at_ms, 0);
    EXPECT_EQ(record.result["status"], "abandoned");
    EXPECT_EQ(record.result["execution_id"], id);
    EXPECT_EQ(record.result["action_ref"], "p.a");
    EXPECT_THAT(record.result["error"].get<std::string>(),
                HasSubstr("the supervisor restarted (at "));
    EXPECT_THAT(record.result["error"].get<std::string>(),
                HasSubstr("before this execution finished; it was " + std::string(was)));
  }
  auto done = (*store)->Get("d");
  EXPECT_EQ((**done).status, "succeeded");
  // A second pass finds nothing more.
  auto again = (*store)->MarkUnfinishedAbandoned();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST(ExecutionStoreTest, RemovesOnlyFinalRecordsPastTheirTtl) {
  TempDir dir;
  auto store = ExecutionStore::Open(dir.Path("state"));
  ASSERT_TRUE(store.ok());
  int64_t now = NowMs();
  ASSERT_TRUE((*store)->Put(Record("expired", "failed", now - 7200'000, now - 3600'000)).ok());
  ASSERT_TRUE((*store)->Put(Record("fresh", "succeeded", now - 20'000, now - 10'000)).ok());
  ASSERT_TRUE((*store)->Put(Record("running", "running", now - 7200'000)).ok());
  auto removed = (*store)->RemoveExpired(std::chrono::seconds(60));
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(DirectoryEntries(dir.Path("state/executions")),
            (std::set<std::string>{"fresh.json", "running.json"}));
}

// A real execution with a secret, recorded as the daemon records it (queued, running, final):
// the secret's value is in no file under state_dir.
TEST(ExecutionStoreTest, NoSecretInAnyFileAfterARealRun) {
  const std::string secret = UniqueMarker("store-secret-");
  RunWorld world;
  world.WriteSimpleAction("storep", "greet", "shell", "greet.sh",
                          "read -r document; echo \"got ${#document} bytes\"\n",
                          "parameters:\n  who: {type: string}\n"
                          "  token: {type: string, secret: true}\n");
  Config config = world.LoadedConfig();
  auto store = ExecutionStore::Open(config.state_dir);
  ASSERT_TRUE(store.ok()) << store.error().message();

  RunRequest request = Request("storep.greet", {{"who", "w"}}, {{"token", secret}});
  request.execution_id = "e-" + UniqueMarker("id");
  ExecutionRecord record;
  record.execution_id = request.execution_id;
  record.action_ref = request.action_ref;
  record.status = "queued";
  record.submitted_at_ms = NowMs();
  ASSERT_TRUE((*store)->Put(record).ok());
  record.status = "running";
  record.started_at_ms = NowMs();
  ASSERT_TRUE((*store)->Put(record).ok());
  ExecutionResult result = world.Run(config, std::move(request));
  ASSERT_EQ(result.status, ExecutionStatus::kSucceeded) << Describe(result);
  EXPECT_THAT(result.stdout_text, HasSubstr("got "));
  record.status = ExecutionStatusName(result.status);
  record.finished_at_ms = NowMs();
  record.result = result.ToJson();
  ASSERT_TRUE((*store)->Put(record).ok());

  auto got = (*store)->Get(record.execution_id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->result["status"], "succeeded");
  EXPECT_TRUE(RecentFilesContaining(config.state_dir, secret,
                                    std::chrono::system_clock::now() - std::chrono::hours(1))
                  .empty());
  // The grep itself can find a secret: the same scan sees a file that has one.
  world.WriteFile("state/canary", "x" + secret + "x");
  EXPECT_EQ(RecentFilesContaining(config.state_dir, secret,
                                  std::chrono::system_clock::now() - std::chrono::hours(1))
                .size(),
            1u);
}

}  // namespace
}  // namespace packvisor::testing
