#include "supervisor/executions/output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sandbox/os/unique_fd.h"

namespace packvisor {
namespace {

TEST(CappedOutput, KeepsEverythingUnderTheLimit) {
  CappedOutput out(1000, "stdout");
  out.Consume("Hello, World!");
  EXPECT_FALSE(out.truncated());
  EXPECT_EQ(out.Text(), "Hello, World!");
  EXPECT_EQ(out.bytes_truncated(), 0u);
}

TEST(CappedOutput, ExactFitDoesNotTruncate) {
  CappedOutput out(128 + 10, "stdout");
  out.Consume("0123456789");
  EXPECT_FALSE(out.truncated());
}

TEST(CappedOutput, TruncatesWithMarkerAndCounts) {
  CappedOutput out(128 + 10, "stderr");
  out.Consume("0123456789abc");
  out.Consume("defgh");
  EXPECT_TRUE(out.truncated());
  EXPECT_EQ(out.Text(), "0123456789\n\n[OUTPUT TRUNCATED: stderr exceeded size limit]\n");
  EXPECT_EQ(out.bytes_truncated(), 8u);
}

TEST(CappedOutput, IsFullOnceTruncatedAndCountsSkippedBytes) {
  CappedOutput out(128 + 10, "stdout");
  out.Consume("0123456789");
  EXPECT_FALSE(out.Full());  // exactly at the limit: one more byte must still be looked at
  out.Consume("a");
  EXPECT_TRUE(out.Full());
  out.Skipped(1000);
  EXPECT_EQ(out.total_bytes(), 1011u);
  EXPECT_EQ(out.bytes_truncated(), 1001u);
  EXPECT_EQ(out.Text(), "0123456789\n\n[OUTPUT TRUNCATED: stdout exceeded size limit]\n");
}

TEST(CappedOutput, CutsAtUtf8Boundary) {
  CappedOutput out(128 + 4, "stdout");
  out.Consume("ab\xc3\xa9\xc3\xa9");  // "abéé": the limit falls after "ab\xc3\xa9"
  EXPECT_EQ(out.Text().substr(0, 4), "ab\xc3\xa9");
  CappedOutput split(128 + 3, "stdout");
  split.Consume("ab\xc3\xa9");  // the limit splits é
  EXPECT_EQ(split.Text().substr(0, 4), "ab\n\n");
  EXPECT_EQ(split.bytes_truncated(), 2u);
}

// Records what a capture gives its live output, one entry per Write.
class RecordingLive : public LiveOutput {
 public:
  void Write(std::string_view bytes) override { writes.emplace_back(bytes); }
  std::string All() const {
    std::string all;
    for (const std::string& w : writes) all += w;
    return all;
  }
  std::vector<std::string> writes;
};

TEST(CappedOutputLive, GetsEachChunkAsItArrives) {
  RecordingLive live;
  CappedOutput out(1000, "stdout", &live);
  out.Consume("one\n");
  EXPECT_EQ(live.All(), "one\n");
  out.Consume("two\n");
  EXPECT_EQ(live.writes, (std::vector<std::string>{"one\n", "two\n"}));
  EXPECT_EQ(out.TakeText(), "one\ntwo\n");
  EXPECT_EQ(live.All(), "one\ntwo\n");
}

TEST(CappedOutputLive, GetsExactlyWhatIsKeptThenTheMarker) {
  RecordingLive live;
  CappedOutput out(128 + 10, "stderr", &live);
  out.Consume("0123456789abc");
  out.Consume("more that is dropped");
  out.Skipped(1000);
  std::string text = out.TakeText();
  EXPECT_EQ(text, "0123456789\n\n[OUTPUT TRUNCATED: stderr exceeded size limit]\n");
  EXPECT_EQ(live.All(), text);
}

TEST(CappedOutputLive, HoldsBackASplitUtf8SequenceUntilItCompletes) {
  RecordingLive live;
  CappedOutput out(1000, "stdout", &live);
  out.Consume("ab\xc3");  // é split across two reads
  EXPECT_EQ(live.All(), "ab");
  out.Consume("\xa9!");
  EXPECT_EQ(live.All(), "ab\xc3\xa9!");
  out.Consume("\xe2\x82");  // € missing its last byte at the end of the stream
  EXPECT_EQ(live.All(), "ab\xc3\xa9!");
  EXPECT_EQ(out.TakeText(), "ab\xc3\xa9!\xe2\x82");
  EXPECT_EQ(live.All(), "ab\xc3\xa9!\xe2\x82") << "the end of the stream flushes it";
}

TEST(CappedOutputLive, ACutInsideASequenceIsNeverStreamed) {
  RecordingLive live;
  CappedOutput out(128 + 3, "stdout", &live);
  out.Consume("ab\xc3");  // the lead byte is held back...
  out.Consume(
      "\xa9"
      "cd");  // ...and the cap then falls inside é: it is dropped, not streamed
  std::string text = out.TakeText();
  EXPECT_EQ(text.substr(0, 4), "ab\n\n");
  EXPECT_EQ(live.All(), text);
}

TEST(IncompleteUtf8Tail, CountsOnlyAnUnfinishedSequence) {
  EXPECT_EQ(IncompleteUtf8Tail(""), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xc3"), 1u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xc3\xa9"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("\xe2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Tail("\xf0\x9f\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Tail("\xf0\x9f\x98\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\x80\x80"), 0u);  // stray continuation bytes: nothing waits
}

TEST(FdStreamer, WritesEverythingInOrderBeforeFinishReturns) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  unique_fd read_end(fds[0]), write_end(fds[1]);
  std::string expected;
  {
    FdStreamer streamer;
    LiveOutput* out = streamer.To(write_end.get());
    for (int i = 0; i < 100; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      out->Write(line);
      expected += line;
    }
    streamer.Finish();
  }
  write_end.reset();
  std::string got;
  char buffer[4096];
  ssize_t n;
  while ((n = read(read_end.get(), buffer, sizeof(buffer))) > 0) got.append(buffer, n);
  EXPECT_EQ(got, expected);
}

TEST(FdStreamer, AWriterThatIsNotReadNeverBlocksTheCaller) {
  // 1 MiB into a pipe nobody reads (64 KiB of buffer): Write() must return at once every time;
  // the streamer's own thread is the one that waits.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  unique_fd read_end(fds[0]), write_end(fds[1]);
  FdStreamer streamer;
  LiveOutput* out = streamer.To(write_end.get());
  std::string chunk(64 << 10, 'x');
  for (int i = 0; i < 16; ++i) out->Write(chunk);  // would block here if written directly
  read_end.reset();  // the reader goes away: the streamer stops (EPIPE) and Finish returns
  streamer.Finish();
  SUCCEED();
}

}  // namespace
}  // namespace packvisor
