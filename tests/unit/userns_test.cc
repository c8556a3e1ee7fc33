#include "sandbox/userns.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace packvisor::sandbox {
namespace {

TEST(IdMapLine, IsInsideHostAndCountOneWithNewline) {
  EXPECT_EQ(IdMapLine(1000, 100000), "1000 100000 1\n");
}

TEST(IdMapLine, PrintsLargeIdsInDecimalWithoutSignOrPadding) {
  EXPECT_EQ(IdMapLine(1, 165535), "1 165535 1\n");
  EXPECT_EQ(IdMapLine(4294967294u, 4294967294u), "4294967294 4294967294 1\n");
}

TEST(WriteIdMaps, FailsForAProcessThatDoesNotExist) {
  // Above the kernel's PID_MAX_LIMIT (4194304): can never name a live process.
  auto result = WriteIdMaps(static_cast<pid_t>(0x3fffffff), IdMapping{});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find("/proc/1073741823/uid_map"), std::string::npos)
      << result.error().message();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string Normalized(const std::string& map) {
  std::istringstream in(map);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Needs root (mapping arbitrary host ids): skipped otherwise.
TEST(WriteIdMaps, WritesBothMapsOfAChildInANewUserNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "writing arbitrary id maps needs root";
  int go[2], done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[0]);
    close(done[1]);
    char byte = unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
    (void)!write(go[1], &byte, 1);
    (void)!read(done[0], &byte, 1);  // parent has read the maps
    _exit(0);
  }
  close(go[1]);
  close(done[0]);
  char byte = 0;
  ASSERT_EQ(read(go[0], &byte, 1), 1);
  if (byte != 1) {
    close(done[1]);
    waitpid(child, nullptr, 0);
    GTEST_SKIP() << "unshare(CLONE_NEWUSER) is not permitted here";
  }
  IdMapping ids;
  ids.inside_uid = 1000;
  ids.inside_gid = 1001;
  ids.host_uid = 123456;
  ids.host_gid = 123457;
  auto written = WriteIdMaps(child, ids);
  std::string proc = "/proc/" + std::to_string(child);
  std::string uid_map = ReadAll(proc + "/uid_map");
  std::string gid_map = ReadAll(proc + "/gid_map");
  std::string setgroups = ReadAll(proc + "/setgroups");
  close(done[1]);
  close(go[0]);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(written.ok()) << written.error().message();
  EXPECT_EQ(Normalized(uid_map), "1000 123456 1");
  EXPECT_EQ(Normalized(gid_map), "1001 123457 1");
  // setgroups stays "allow" so that the child can drop root's supplementary groups.
  EXPECT_EQ(setgroups, "allow\n");
}

}  // namespace
}  // namespace packvisor::sandbox
