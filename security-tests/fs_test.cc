// Catalog group C (filesystem, and supervisor-side file handling), entries 23-37, through the
// real packvisor binary: `packvisor exec` for what an action can do to the mounts it sees, and
// `packvisor --config C run PACK.ACTION` (plus `env list` / `env rm`) for what a hostile pack
// or action can make the root supervisor do on the host. Every hostile program prints
// "reached" before it attacks; host canaries (root-owned, 0600, random content) must keep their
// content, owner, mode and mtime.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "security-tests/probe_suite.h"
#include "tests/support/harness.h"

namespace packvisor {
namespace {

using testing::TempDir;
using namespace probe_suite;

// `packvisor exec --pack-dir PACK [--env-dir ENV] --json --timeout 3 -- argv...`.
nlohmann::json ExecIn(const std::string& pack, const std::string& env,
                      const std::vector<std::string>& argv,
                      const std::function<void()>& in_child = nullptr) {
  std::vector<std::string> args = {"exec", "--pack-dir", pack};
  if (!env.empty()) {
    args.push_back("--env-dir");
    args.push_back(env);
  }
  for (const char* a : {"--timeout", "3", "--json", "--"}) args.push_back(a);
  args.insert(args.end(), argv.begin(), argv.end());
  return Result(RunBinary(testing::PackvisorBinary(), args, {}, {}, 15000, in_child));
}

std::string ErrnoLine(const std::string& name, int err) {
  return name + " errno " + std::to_string(err);
}

// --- C23: write into the pack dir ------------------------------------------------------------

// A pack dir with the attack scripts and two victim files.
std::unique_ptr<TempDir> AttackPack() {
  auto pack = std::make_unique<TempDir>();
  for (const char* script : {"c23_pack_write.py", "c27_hardlinks.py", "c29_setuid_plant.py",
                             "c31_persist.py", "c35_proc_sys.py", "c36_devices.py"}) {
    pack->Write(script, Script(script));
  }
  pack->Write("victim.txt", "victim " + testing::UniqueMarker("v") + "\n");
  pack->Write("victim2.txt", "victim2\n");
  return pack;
}

std::unique_ptr<TempDir> EnvDir() {
  auto env = std::make_unique<TempDir>();
  env->Chown(kSandboxHostId, kSandboxHostId);
  return env;
}

const char* const kPackWriteOps[] = {"create",  "truncate", "chmod",  "utime",  "setxattr", "link",
                                     "symlink", "mkdir",    "mkfifo", "rename", "unlink"};

TEST(FsTest, C23_write_into_pack) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  Canary canary;
  const std::string before = testing::TreeFingerprint(pack->path());
  const std::string canary_before = canary.State();
  nlohmann::json result =
      ExecIn(pack->path(), env->path(),
             {"/usr/bin/python3", "/pack/c23_pack_write.py", "/pack", "remount"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  for (const char* op : kPackWriteOps) {
    EXPECT_TRUE(HasLine(out, ErrnoLine(op, EROFS))) << op << " was not refused with EROFS:\n"
                                                    << out;
  }
  // O_APPEND on a root-owned 0644 file: the permission check may answer before the ro check.
  EXPECT_TRUE(HasLine(out, ErrnoLine("append", EROFS)) || HasLine(out, ErrnoLine("append", EACCES)))
      << out;
  EXPECT_TRUE(HasLine(out, ErrnoLine("remount_rw", EPERM))) << out;
  EXPECT_EQ(testing::TreeFingerprint(pack->path()), before) << "the pack tree changed";
  EXPECT_EQ(canary.State(), canary_before);
}

// Positive control: the same script against a writable copy on the host changes it.
TEST(FsTest, C23_positive_control_script_writes_a_writable_dir) {
  RequireRoot();
  auto copy = AttackPack();
  const std::string before = testing::TreeFingerprint(copy->path());
  Outcome run = RunBinary("/usr/bin/python3", {copy->Path("c23_pack_write.py"), copy->path()});
  for (const char* op : kPackWriteOps) {
    EXPECT_TRUE(HasLine(run.out, std::string(op) + " ok")) << op << ":\n" << run.out;
  }
  EXPECT_NE(testing::TreeFingerprint(copy->path()), before);
}

// --- C24: a writable submount under the read-only pack -----------------------------------------

// In the forked child, before exec: a private mount namespace (nothing reaches the host) in
// which a writable tmpfs is mounted under the pack and one under the env.
struct Submounts {
  std::string pack_sub;
  std::string env_sub;
  std::string pack_file;
  void operator()() const {
    if (unshare(CLONE_NEWNS) != 0) _exit(121);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(122);
    if (mount("tmpfs", pack_sub.c_str(), "tmpfs", 0, "size=1m,mode=0777") != 0) _exit(123);
    if (mount("tmpfs", env_sub.c_str(), "tmpfs", 0, "size=1m,mode=0777") != 0) _exit(124);
    int fd = open(pack_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "host\n", 5) != 5) _exit(125);
    close(fd);
  }
};

TEST(FsTest, C24_writable_submount_under_ro_bind) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  mkdir(pack->Path("sub").c_str(), 0755);
  mkdir(env->Path("sub").c_str(), 0755);
  Submounts submounts{pack->Path("sub"), env->Path("sub"), pack->Path("sub/host.txt")};
  const std::string script =
      "import os\n"
      "print('reached', flush=True)\n"
      "print('sees', sorted(os.listdir('/pack/sub')))\n"
      "try:\n"
      "    open('/pack/sub/x', 'w').write('x')\n"
      "    print('pack_sub ok')\n"
      "except OSError as e:\n"
      "    print('pack_sub errno', e.errno)\n"
      "print(open('/proc/self/mountinfo').read())\n";
  nlohmann::json result =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "-c", script}, submounts);
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  EXPECT_TRUE(HasLine(out, ErrnoLine("pack_sub", EROFS))) << out;
  int lines = 0;
  for (const std::string& line : testing::Lines(out)) {
    std::vector<std::string> f = Fields(line);
    if (f.size() < 7 || line.find(" - ") == std::string::npos) continue;
    ++lines;
    std::string options = "," + f[5] + ",";
    EXPECT_NE(options.find(",nosuid,"), std::string::npos) << "not nosuid: " << line;
    if (f[4] == "/pack" || f[4].rfind("/pack/", 0) == 0) {
      EXPECT_NE(options.find(",ro,"), std::string::npos) << "writable under /pack: " << line;
    }
  }
  EXPECT_GT(lines, 5) << out;
}

// --- C25: other packs' envs, the envs root, the state dir --------------------------------------

const char kPythonHello[] = "import sys\nsys.stdin.read()\nprint('hello')\n";

TEST(FsTest, C25_other_packs_envs_and_state_not_visible) {
  RequireRoot();
  World world;
  const std::string token = testing::UniqueMarker("VICTIM");
  world.Action("victim", "hello", "python", "hello.py", kPythonHello);
  world.Action("attacker", "snoop", "python", "snoop.py", Script("c25_snoop.py"),
               "parameters:\n  paths:\n    type: array\n");
  ASSERT_EQ(Result(world.Cli({"run", "victim.hello", "--json"})).value("status", ""), "succeeded");
  // The victim's environment and the supervisor's state hold the token.
  world.Write("envs/victim/python/secret-" + token, token, 0600);
  chown(world.Path("envs/victim/python/secret-" + token).c_str(), kSandboxHostId, kSandboxHostId);
  world.Write("state/secret-" + token, token, 0600);
  const std::string victim_before = testing::TreeFingerprint(world.EnvDir("victim"));

  nlohmann::json paths = {world.EnvDir("victim"), world.Path("envs"), world.Path("state"),
                          world.PackDir("victim"), "/proc/1/root" + world.EnvDir("victim")};
  Outcome run = world.Cli({"--log-level", "trace", "run", "attacker.snoop", "--json", "--timeout",
                           "3", "--params-json", nlohmann::json({{"paths", paths}}).dump()});
  nlohmann::json result = Result(run);
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << run.out << run.err;
  EXPECT_EQ(run.out.find(token), std::string::npos) << "the victim's token leaked:\n" << out;
  EXPECT_EQ(run.err.find(token), std::string::npos) << "the token is in the log";
  for (const std::string& path :
       {world.EnvDir("victim"), world.Path("envs"), world.Path("state"), world.PackDir("victim")}) {
    EXPECT_TRUE(HasLine(out, "try " + ErrnoLine(path, ENOENT)))
        << path << " is visible in the sandbox:\n"
        << out;
  }
  EXPECT_EQ(testing::TreeFingerprint(world.EnvDir("victim")), victim_before);
}

// Second layer (SPEC §3: "host ids handed to packs (one per pack)", catalog 25: "env dirs are
// 0700 and owned by a per-pack uid"): two packs' environments have different host owners.
TEST(FsTest, C25_other_pack_env_owned_by_a_different_host_uid) {
  RequireRoot();
  World world;
  world.Action("alpha", "hello", "python", "hello.py", kPythonHello);
  world.Action("beta", "hello", "python", "hello.py", kPythonHello);
  for (const char* ref : {"alpha.hello", "beta.hello"}) {
    ASSERT_EQ(Result(world.Cli({"run", ref, "--json"})).value("status", ""), "succeeded") << ref;
  }
  struct stat alpha {
  }, beta{};
  ASSERT_EQ(stat(world.EnvDir("alpha").c_str(), &alpha), 0);
  ASSERT_EQ(stat(world.EnvDir("beta").c_str(), &beta), 0);
  EXPECT_EQ(alpha.st_mode & 077, 0u) << "env dir readable by others";
  EXPECT_NE(alpha.st_uid, beta.st_uid)
      << "both packs run as host uid " << alpha.st_uid
      << ": a path that ever reached another pack's env would be readable and writable";
}

// --- C26: symlinks planted in the env, aimed at the supervisor's later operations --------------

TEST(FsTest, C26_symlinks_in_env_never_followed_by_supervisor) {
  RequireRoot();
  World world;
  Canary file;
  Canary dir(true);
  world.Action("evil", "plant", "python", "plant.py", Script("c26_plant_symlinks.py"),
               "parameters:\n  canary_file:\n    type: string\n  canary_dir:\n    type: string\n"
               "  break_interpreter:\n    type: boolean\n    default: false\n");
  const std::string file_before = file.State();
  const std::string dir_before = dir.State();
  auto plant = [&](bool break_interpreter) {
    return world.Cli({"run", "evil.plant", "--json", "--timeout", "3", "--param",
                      "canary_file=" + file.path(), "--param", "canary_dir=" + dir.path(),
                      "--param",
                      std::string("break_interpreter=") + (break_interpreter ? "true" : "false")});
  };
  auto unchanged = [&](const std::string& after_what) {
    EXPECT_EQ(file.State(), file_before) << "canary file changed after " << after_what;
    EXPECT_EQ(dir.State(), dir_before) << "canary dir changed after " << after_what;
  };

  Outcome first = plant(false);
  std::string out = Stdout(Result(first));
  ASSERT_TRUE(HasLine(out, "reached")) << first.out << first.err;
  EXPECT_TRUE(HasLine(out, "plant pyvenv.cfg ok")) << out;
  EXPECT_TRUE(HasLine(out, "plant include ok")) << out;
  unchanged("planting");

  Outcome list = world.Cli({"env", "list"}, {}, 5000);
  EXPECT_FALSE(list.timed_out);
  unchanged("env list");

  Outcome second = plant(true);  // the next run, which also breaks bin/python3
  EXPECT_TRUE(HasLine(Stdout(Result(second)), "plant bin/python3 ok")) << second.out;
  unchanged("the next run");

  Outcome broken = plant(false);  // runs with (or repairs) the broken interpreter
  EXPECT_FALSE(broken.timed_out);
  unchanged("a run with a broken interpreter");

  // A changed manifest rebuilds the environment (and discards the old tree).
  world.Write("packs/evil/requirements.txt", "# rebuild " + testing::UniqueMarker("r") + "\n");
  Outcome rebuilt = plant(false);
  EXPECT_EQ(Result(rebuilt).value("status", ""), "succeeded") << rebuilt.out << rebuilt.err;
  unchanged("a rebuild");
  plant(true);

  Outcome rm = world.Cli({"env", "rm", "evil"}, {}, 5000);
  EXPECT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  unchanged("env rm");
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/file"));
  EXPECT_FALSE(std::filesystem::exists(world.EnvDir("evil"))) << "env rm left the env";
}

// --- C27: hardlinks to files outside -----------------------------------------------------------

TEST(FsTest, C27_hardlinks_to_outside_files_refused) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  struct stat passwd_before {};
  ASSERT_EQ(stat("/etc/passwd", &passwd_before), 0);
  const std::string python = std::filesystem::canonical("/usr/bin/python3");
  nlohmann::json result = ExecIn(pack->path(), env->path(),
                                 {"/usr/bin/python3", "/pack/c27_hardlinks.py", "/etc/passwd",
                                  python, "/pack/victim.txt", "/etc/hosts", "/etc/ssl/certs"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  int refused = 0;
  for (const std::string& line : Tagged(out, "link")) {
    std::vector<std::string> f = Fields(line);
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_NE(f[1], "ok") << "hard link made: " << line;
    if (f[1] == "errno" && (f[2] == std::to_string(EXDEV) || f[2] == std::to_string(EPERM))) {
      ++refused;
    }
  }
  EXPECT_GE(refused, 4) << out;
  EXPECT_TRUE(testing::EntriesContaining(env->path(), "hl-").empty());
  struct stat passwd_after {};
  ASSERT_EQ(stat("/etc/passwd", &passwd_after), 0);
  EXPECT_EQ(passwd_after.st_nlink, passwd_before.st_nlink);
}

// --- C28: special files where the supervisor reads ------------------------------------------

TEST(FsTest, C28_fifo_and_huge_files_named_like_manifests_do_not_hang_supervisor) {
  RequireRoot();
  World world;
  world.Action("special", "ok", "python", "ok.py", kPythonHello);
  ASSERT_EQ(mkfifo(world.Path("packs/special/actions/fifo.yaml").c_str(), 0644), 0);
  world.Write("packs/special/actions/huge.yaml", "name: huge\n");
  ASSERT_EQ(truncate(world.Path("packs/special/actions/huge.yaml").c_str(), 1LL << 40), 0);
  world.Action("fifodeps", "ok", "python", "ok.py", kPythonHello);
  ASSERT_EQ(mkfifo(world.Path("packs/fifodeps/requirements.txt").c_str(), 0644), 0);
  world.Action("fifopack", "ok", "shell", "ok.sh", "exit 0\n");
  std::filesystem::remove(world.Path("packs/fifopack/pack.yaml"));
  ASSERT_EQ(mkfifo(world.Path("packs/fifopack/pack.yaml").c_str(), 0644), 0);

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run", "special.fifo", "--json"},
                                             {"run", "special.huge", "--json"},
                                             {"run", "fifodeps.ok", "--json"},
                                             {"run", "fifopack.ok", "--json"},
                                             {"pack", "list"},
                                             {"pack", "validate", world.PackDir("special")},
                                             {"pack", "validate", world.PackDir("fifopack")}}) {
    Outcome run = world.Cli(args, {}, 5000);
    std::string what;
    for (const std::string& a : args) what += a + " ";
    EXPECT_FALSE(run.timed_out) << what << " hung on a special file";
    EXPECT_LT(run.seconds, 2.0) << what;
    EXPECT_LT(run.exit_code, 128) << what << " crashed: " << run.err;
    if (args[0] == "run") {
      EXPECT_NE(run.exit_code, 0) << what << ": " << run.out;
    }
  }

  // Inside the env: a FIFO, a 1 GiB sparse file and a /dev/zero link where the supervisor may
  // look, then the next run, `env list` and `env rm` (each bounded).
  world.Action("special", "plant", "python", "plant.py",
               "import os, sys\nsys.stdin.read()\nprint('reached', flush=True)\n"
               "for n in ('pyvenv.cfg', 'fifo', 'bin/activate'):\n"
               "    try: os.unlink('/env/' + n)\n"
               "    except OSError: pass\n"
               "    os.mkfifo('/env/' + n)\n"
               "with open('/env/huge', 'w') as f: f.truncate((1 << 30) - 4096)\n"
               "os.symlink('/dev/zero', '/env/zero')\n"
               "print('planted')\n");
  Outcome plant = world.Cli({"run", "special.plant", "--json", "--timeout", "3"});
  std::string out = Stdout(Result(plant));
  ASSERT_TRUE(HasLine(out, "reached")) << plant.out << plant.err;
  EXPECT_TRUE(HasLine(out, "planted")) << plant.out;
  // The next run may hang in the action itself (Python opens the pyvenv.cfg FIFO): only its
  // own timeout (1 s, then SIGTERM) bounds it, never the supervisor.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run", "special.ok", "--json", "--timeout", "1"},
                                             {"env", "list"},
                                             {"env", "rm", "special"}}) {
    Outcome run = world.Cli(args, {}, 8000);
    EXPECT_FALSE(run.timed_out) << args[0] << " " << args[1] << " hung";
    EXPECT_LT(run.seconds, args[0] == "run" ? 3.0 : 2.0) << args[0] << " " << args[1];
    EXPECT_LT(run.exit_code, 128) << args[0] << " " << args[1] << " crashed: " << run.err;
  }
  EXPECT_FALSE(std::filesystem::exists(world.EnvDir("special"))) << "env rm left the env";
}

// --- C29: setuid bits and file caps planted in the env ---------------------------------------

TEST(FsTest, C29_setuid_planted_in_env_is_inert_next_run) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  nlohmann::json planted =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "/pack/c29_setuid_plant.py", "plant"});
  std::string out = Stdout(planted);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << planted.dump();
  EXPECT_TRUE(HasLine(out, "setxattr errno " + std::to_string(EPERM))) << out;
  nlohmann::json next =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "/pack/c29_setuid_plant.py", "run"});
  std::string next_out = Stdout(next);
  ASSERT_TRUE(HasLine(next_out, "reached")) << next.dump();
  EXPECT_TRUE(HasLine(next_out, "id-u 1000 0")) << next_out;
  EXPECT_TRUE(HasLine(next_out, "id-g 1000 0")) << next_out;

  // On the host: nothing in the env is root-owned and setuid/setgid, nothing carries
  // security.capability.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(env->path())) {
    struct stat st {};
    ASSERT_EQ(lstat(entry.path().c_str(), &st), 0);
    EXPECT_FALSE(st.st_uid == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
        << "root-owned setuid/setgid file " << entry.path();
    EXPECT_NE(st.st_uid, 0u) << entry.path() << " became root-owned";
    char value[64];
    EXPECT_LT(lgetxattr(entry.path().c_str(), "security.capability", value, sizeof(value)), 0)
        << entry.path() << " carries file capabilities";
  }
}

// --- C30: fill the disk ----------------------------------------------------------------------

// packvisor has no per-env quota (SPEC §3 bounds builds with envs.max_size_mb only); what it
// does bound is the scratch tmpfs (sandbox.tmp_size_mb, 64 MiB by default) and one file's size
// (RLIMIT_FSIZE, sandbox.fsize_mb). The action fills /tmp and /dev/shm until ENOSPC and grows
// one env file past the file size limit.
TEST(FsTest, C30_scratch_size_and_file_size_limits) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  const std::string script =
      "import errno, os\n"
      "print('reached', flush=True)\n"
      "for d in ('/tmp', '/dev/shm'):\n"
      "    total = 0\n"
      "    try:\n"
      "        with open(d + '/fill', 'wb') as f:\n"
      "            while total < (256 << 20):\n"
      "                f.write(b'x' * (1 << 20)); f.flush(); total += 1 << 20\n"
      "        print(d, 'unbounded', total)\n"
      "    except OSError as e:\n"
      "        print(d, 'errno', e.errno, 'mib', total >> 20)\n"
      "    os.unlink(d + '/fill')\n"
      "try:\n"
      "    with open('/env/big', 'wb') as f: f.truncate((1 << 30) + 1)\n"
      "    print('fsize unbounded')\n"
      "except OSError as e:\n"
      "    print('fsize errno', e.errno)\n";
  nlohmann::json result = ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "-c", script});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  for (const char* dir : {"/tmp", "/dev/shm"}) {
    std::vector<std::string> f = Fields(Tagged(out, dir).empty() ? "" : Tagged(out, dir)[0]);
    ASSERT_EQ(f.size(), 4u) << dir << " was not bounded: " << out;
    EXPECT_EQ(f[1], std::to_string(ENOSPC)) << out;
    EXPECT_LE(std::stoi(f[3]), 64) << dir << " grew past sandbox.tmp_size_mb: " << out;
  }
  EXPECT_TRUE(HasLine(out, "fsize errno " + std::to_string(EFBIG))) << out;
  struct stat st {};
  EXPECT_TRUE(stat(env->Path("big").c_str(), &st) != 0 || st.st_size <= (1LL << 30));
}

// Each pack's environments live on a filesystem of their own (envs.pack_disk_mb, a loop-mounted
// ext4 image). An action makes empty files in /env until it fails (inodes), then writes 1 MiB
// chunks until it fails (blocks): both stop at its pack's disk, the only host storage it used is
// that disk's image (allocated blocks within the disk size), and another pack's action still writes
// to its own /env. The positive control runs the same filler with the per-pack disk off and reaches
// the target, so the assertions can fail.
struct DiskFillerWorld {
  explicit DiskFillerWorld(uint64_t pack_disk_mb) {
    // Parameters arrive as one JSON line on stdin: {"mib": N} is how far to go.
    const std::string filler =
        "import json, os, sys\n"
        "params = json.loads(sys.stdin.readline())\n"
        "target, max_files = params['mib'] << 20, params['files']\n"
        "print('reached', flush=True)\n"
        "fill = open('/env/fill', 'wb')\n"
        "count, err = 0, 0\n"
        "try:\n"
        "    os.makedirs('/env/many', exist_ok=True)\n"
        "    while count < max_files:\n"
        "        open('/env/many/%d' % count, 'wb').close(); count += 1\n"
        "except OSError as e:\n"
        "    err = e.errno\n"
        "print('files', count, 'errno', err, flush=True)\n"
        "total, err = 0, 0\n"
        "try:\n"
        "    while total < target:\n"
        "        fill.write(b'x' * (1 << 20)); fill.flush(); os.fsync(fill.fileno())\n"
        "        total += 1 << 20\n"
        "except OSError as e:\n"
        "    err = e.errno\n"
        "print('bytes', total >> 20, 'errno', err, flush=True)\n";

    dir.Write("runtimes/filler.toml",
              "name = \"filler\"\n[interpreter]\nbinary = \"/usr/bin/python3\"\n"
              "file_extension = \".py\"\n[environment]\ncreate_command = [\"/bin/mkdir\", "
              "\"-p\", \"{env_dir}/bin\"]\n");
    for (const std::string pack : {"hog", "victim"}) {
      dir.Write("packs/" + pack + "/pack.yaml",
                "ref: " + pack + "\nversion: 1.0.0\ndescription: c30\n");
      dir.Write("packs/" + pack + "/actions/fill.yaml",
                "name: fill\nrunner_type: filler\nentry_point: fill.py\ntimeout_seconds: 120\n"
                "parameters:\n  mib:\n    type: integer\n    required: true\n"
                "  files:\n    type: integer\n    default: 20000\n");
      dir.Write("packs/" + pack + "/actions/fill.py", filler);
    }
    dir.Write("packvisor.toml",
              "packs_base_dir = \"" + dir.Path("packs") + "\"\nruntime_envs_dir = \"" +
                  dir.Path("envs") + "\"\nstate_dir = \"" + dir.Path("state") +
                  "\"\nruntimes_dir = \"" + dir.Path("runtimes") + "\"\n[envs]\npack_disk_mb = " +
                  std::to_string(pack_disk_mb) + "\nmax_size_mb = 8\n");
  }
  // `packvisor run PACK.fill --param mib=N --param files=F`: the action's stdout.
  std::string Fill(const std::string& pack, int mib, int files = 20000) {
    testing::CommandResult run = testing::RunPackvisor(
        {"--config", dir.Path("packvisor.toml"), "run", pack + ".fill", "--param",
         "mib=" + std::to_string(mib), "--param", "files=" + std::to_string(files), "--json"});
    try {
      return run.Json().value("stdout", "");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "no result: " << run.stdout_text << run.stderr_text;
      return "";
    }
  }
  TempDir dir;
};

// "bytes N errno E" / "files N errno E" of the filler's output, as {N, E}; {-1, -1} when absent.
std::pair<int64_t, int> FillerCounts(const std::string& out, const std::string& tag) {
  size_t at = out.find(tag + " ");
  if (at == std::string::npos) return {-1, -1};
  long long count = -1;
  int err = -1;
  if (std::sscanf(out.c_str() + at + tag.size(), " %lld errno %d", &count, &err) != 2) {
    return {-1, -1};
  }
  return {count, err};
}

TEST(FsTest, C30_env_disk_filler_stops_at_its_packs_disk) {
  RequireRoot();
  const int disk_mb = 32;
  DiskFillerWorld world(disk_mb);
  std::string out = world.Fill("hog", 64);
  ASSERT_NE(out.find("reached\n"), std::string::npos) << "the attack never ran: " << out;
  auto [mib, bytes_errno] = FillerCounts(out, "bytes");
  EXPECT_EQ(bytes_errno, ENOSPC) << out;
  EXPECT_GE(mib, disk_mb / 2) << "the filler stopped long before its disk was full: " << out;
  EXPECT_LT(mib, disk_mb) << out;
  auto [files, files_errno] = FillerCounts(out, "files");
  EXPECT_EQ(files_errno, ENOSPC) << out;
  EXPECT_GE(files, 1000) << out;
  EXPECT_LT(files, 20000) << "inodes were not bounded by the disk: " << out;
  // The only host storage the pack used is its disk's image, allocated within the disk's size.
  struct stat image {};
  ASSERT_EQ(stat(world.dir.Path("state/disks/hog.img").c_str(), &image), 0);
  EXPECT_LE(static_cast<int64_t>(image.st_blocks) * 512, int64_t{disk_mb} << 20);
  EXPECT_EQ(image.st_uid, 0u);
  EXPECT_EQ(image.st_mode & 07777, 0600u);
  // Another pack is untouched: its action writes what it asks for into its own /env.
  std::string victim = world.Fill("victim", 4, 100);
  EXPECT_NE(victim.find("files 100 errno 0\n"), std::string::npos) << victim;
  EXPECT_NE(victim.find("bytes 4 errno 0\n"), std::string::npos) << victim;
}

TEST(FsTest, C30_positive_control_without_pack_disks_the_filler_passes_the_size) {
  RequireRoot();
  DiskFillerWorld world(0);
  std::string out = world.Fill("hog", 40);
  ASSERT_NE(out.find("reached\n"), std::string::npos) << "the attack never ran: " << out;
  EXPECT_NE(out.find("files 20000 errno 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("bytes 40 errno 0\n"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(world.dir.Path("state/disks/hog.img")));
}

// A pack's disk is mounted by device path, so between finding (or attaching) the loop device
// bound to the pack's image and mounting it, the device could be cleared and re-bound to another
// pack's image: that pack's environments would then be this pack's /env. The supervisor holds the
// device open from the lookup on and, before attaching the new mount, checks that it is on that
// device and that the device is still bound to this pack's image. The test makes the race happen
// for certain (test builds: PACKVISOR_TEST_PACK_DISK_SOURCE = the victim pack's device) and
// checks the victim's disk is never mounted in the attacker's place. The check cannot be switched
// off; that the attack really ran shows in the error, which names the victim's device as the one
// the filesystem was mounted from.
TEST(FsTest, C30_another_packs_disk_is_never_mounted_in_a_packs_place) {
  RequireRoot();
  const std::string hooks = PACKVISOR_TEST_HOOKS_BINARY;
  if (access(hooks.c_str(), X_OK) != 0) {  // an installed run: the hooks are never installed
    GTEST_SKIP() << "needs the packvisor-test-hooks binary (" << hooks << ")";
  }
  DiskFillerWorld world(32);
  std::string victim = world.Fill("victim", 1, 1);
  ASSERT_NE(victim.find("files 1 errno 0\n"), std::string::npos) << victim;
  std::string victim_mount = world.dir.Path("envs/victim");
  std::string victim_device;
  for (const std::string& line : testing::Lines(testing::ReadFileOrEmpty("/proc/self/mountinfo"))) {
    std::vector<std::string> f = Fields(line);
    if (f.size() > 9 && f[4] == victim_mount) victim_device = f[f.size() - 2];
  }
  ASSERT_EQ(victim_device.rfind("/dev/loop", 0), 0u) << "the victim's disk is not mounted";
  Outcome attack = RunBinary(hooks,
                             {"--config", world.dir.Path("packvisor.toml"), "run", "hog.fill",
                              "--param", "mib=1", "--param", "files=1"},
                             {"PACKVISOR_TEST_PACK_DISK_SOURCE=" + victim_device});
  EXPECT_EQ(attack.exit_code, 125) << attack.out << attack.err;
  EXPECT_NE(attack.err.find("the filesystem mounted from " + victim_device + " is not on"),
            std::string::npos)
      << "the attack did not run as intended: " << attack.err;
  struct stat hog {
  }, victim_root{};
  ASSERT_EQ(stat(victim_mount.c_str(), &victim_root), 0);
  if (stat(world.dir.Path("envs/hog").c_str(), &hog) == 0) {
    EXPECT_NE(hog.st_dev, victim_root.st_dev) << "the victim's disk is mounted as the hog's";
  }
  EXPECT_FALSE(std::filesystem::exists(world.dir.Path("envs/hog/filler")))
      << "the victim's environment is visible in the hog's place";
  // Without the override, the same run gets the hog's own disk.
  std::string own = world.Fill("hog", 1, 1);
  EXPECT_NE(own.find("files 1 errno 0\n"), std::string::npos) << own;
}

// --- C31: data persisting between runs ---------------------------------------------------------

bool UnderWritableRoot(const std::string& path) {
  for (const char* root : {"/tmp", "/dev/shm", "/env"}) {
    std::string r = root;
    if (path == r || path.rfind(r + "/", 0) == 0) return true;
  }
  return false;
}

TEST(FsTest, C31_tmp_shm_ipc_fresh_per_run) {
  RequireRoot();
  auto pack = AttackPack();
  auto other_pack = AttackPack();
  auto env = EnvDir();
  auto other_env = EnvDir();
  const std::string tag = testing::UniqueMarker("pvc31");
  nlohmann::json first =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "/pack/c31_persist.py", "write", tag});
  std::string out = Stdout(first);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << first.dump();
  ASSERT_TRUE(HasLine(out, "done")) << out;
  std::vector<std::string> writable = Tagged(out, "writable");
  EXPECT_FALSE(writable.empty()) << out;
  std::set<std::string> roots;
  for (const std::string& dir : writable) {
    EXPECT_TRUE(UnderWritableRoot(dir)) << "writable outside /tmp, /dev/shm, /env: " << dir;
    if (dir == "/tmp" || dir == "/dev/shm" || dir == "/env") roots.insert(dir);
  }
  EXPECT_EQ(roots, (std::set<std::string>{"/tmp", "/dev/shm", "/env"})) << out;
  for (const char* d : {"/tmp", "/dev/shm", "/env"}) {
    EXPECT_TRUE(HasLine(out, std::string("wrote ") + d)) << out;
  }
  EXPECT_EQ(Tagged(out, "shmget").size(), 1u);
  EXPECT_EQ(Tagged(out, "shmget")[0].rfind("-1", 0), std::string::npos) << "shmget failed";

  for (const auto& [p, e] :
       {std::pair{pack.get(), env.get()}, {other_pack.get(), other_env.get()}}) {
    nlohmann::json second =
        ExecIn(p->path(), e->path(), {"/usr/bin/python3", "/pack/c31_persist.py", "check", tag});
    std::string check = Stdout(second);
    ASSERT_TRUE(HasLine(check, "done")) << second.dump();
    std::vector<std::string> found = Tagged(check, "found");
    // The env is shared between runs of one pack by design; nothing else survives.
    std::vector<std::string> expected;
    if (e == env.get()) expected.push_back("/env");
    EXPECT_EQ(found, expected) << check;
    EXPECT_TRUE(Tagged(check, "shm").empty()) << "SysV shm segments visible: " << check;
  }
}

// --- C32: path traversal and symlinks in pack metadata ---------------------------------------

TEST(FsTest, C32_path_traversal_in_pack_metadata_rejected) {
  RequireRoot();
  World world;
  Canary canary;
  const std::string before = canary.State();
  world.Action("trav", "dotdot", "shell", "../../../../../../../../.." + canary.path(), "");
  world.Action("trav", "absolute", "shell", canary.path(), "");
  world.Action("trav", "link", "shell", "link.sh", "");
  std::filesystem::create_symlink(canary.path(), world.Path("packs/trav/actions/link.sh"));
  world.Action("travdeps", "ok", "python", "ok.py", kPythonHello);
  std::filesystem::create_symlink(canary.path(), world.Path("packs/travdeps/requirements.txt"));
  for (const char* ref : {"trav.dotdot", "trav.absolute", "trav.link", "travdeps.ok"}) {
    Outcome run = world.Cli({"--log-level", "trace", "run", ref, "--json"}, {}, 5000);
    nlohmann::json result = Result(run);
    EXPECT_EQ(run.exit_code, 125) << ref << ": " << run.out << run.err;
    std::string status = result.value("status", "");
    EXPECT_TRUE(status == "rejected" || status == "setup_failed") << ref << ": " << run.out;
    EXPECT_TRUE(result["error"].is_string() && !result["error"].get<std::string>().empty()) << ref;
    EXPECT_EQ(run.out.find(canary.content()), std::string::npos) << ref << " leaked the target";
    EXPECT_EQ(run.err.find(canary.content()), std::string::npos) << ref << " logged the target";
    EXPECT_LT(run.seconds, 2.0) << ref;
  }
  EXPECT_FALSE(std::filesystem::exists(world.EnvDir("travdeps") + "/bin"))
      << "an environment was built from a manifest outside the pack";
  EXPECT_EQ(canary.State(), before);
}

// --- C33: no mounts left behind on the host ----------------------------------------------------

// Host mounts, without the pack disks that concurrent tests' worlds mount and unmount under
// /tmp (ext4 on a loop device): this test's own runs use `exec` with an explicit env dir, which
// never makes a pack disk, so nothing they could leave behind is filtered out.
std::multiset<std::string> HostMounts() {
  std::multiset<std::string> mounts;
  for (const std::string& line : testing::Lines(ReadFile("/proc/self/mountinfo"))) {
    std::vector<std::string> f = Fields(line);
    if (f.size() < 5) continue;
    if (f[4].rfind("/tmp/packvisor-test-", 0) == 0 &&
        line.find(" - ext4 /dev/loop") != std::string::npos) {
      continue;
    }
    // Without the mount id and parent id (fields 1-2): what is mounted where, with which options.
    mounts.insert(line.substr(line.find(' ', line.find(' ') + 1) + 1));
  }
  return mounts;
}

TEST(FsTest, C33_no_mounts_left_behind_on_host) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  const std::multiset<std::string> before = HostMounts();
  for (int i = 0; i < 5; ++i) {
    nlohmann::json result = ExecIn(pack->path(), env->path(), {"/bin/true"});
    EXPECT_EQ(result.value("status", ""), "succeeded") << result.dump();
  }
  // One killed by its timeout.
  Outcome timed = RunBinary(testing::PackvisorBinary(),
                            {"exec", "--pack-dir", pack->path(), "--env-dir", env->path(),
                             "--timeout", "1", "--json", "--", "/bin/sleep", "30"},
                            {}, {}, 10000);
  EXPECT_EQ(timed.exit_code, 124) << timed.out << timed.err;
  // One whose supervisor is SIGKILLed while the action runs.
  const std::string marker = testing::UniqueMarker("pvc33");
  pid_t supervisor =
      testing::SpawnPackvisor({"exec", "--pack-dir", pack->path(), "--env-dir", env->path(),
                               "--timeout", "5", "--", "/bin/sh", "-c", "sleep 30", marker});
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    std::vector<pid_t> pids = testing::ProcessesWithMarker(marker);
    for (pid_t pid : pids) seen = seen || pid != supervisor;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(seen) << "the action never started";
  kill(supervisor, SIGKILL);
  waitpid(supervisor, nullptr, 0);
  EXPECT_TRUE(testing::WaitForNoProcessesWithMarker(marker, 3000).empty())
      << "the sandbox outlived its SIGKILLed supervisor";

  const std::multiset<std::string> after = HostMounts();
  std::vector<std::string> added, removed;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                      std::back_inserter(removed));
  std::string added_text, removed_text;
  for (const std::string& m : added) added_text += m + "\n";
  for (const std::string& m : removed) removed_text += m + "\n";
  EXPECT_TRUE(added.empty()) << "mounts left on the host:\n" << added_text;
  EXPECT_TRUE(removed.empty()) << "host mounts disappeared:\n" << removed_text;
}

// --- C35: /proc and /sys -----------------------------------------------------------------------

TEST(FsTest, C35_proc_sys_read_only_and_no_sys) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  const std::string core_pattern = ReadFile("/proc/sys/kernel/core_pattern");
  const std::string hostname = ReadFile("/proc/sys/kernel/hostname");
  nlohmann::json result =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "/pack/c35_proc_sys.py"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  EXPECT_TRUE(HasLine(out, ErrnoLine("core_pattern", EROFS))) << out;
  EXPECT_TRUE(HasLine(out, ErrnoLine("hostname_sysctl", EROFS))) << out;
  for (const char* op : {"sysrq_trigger", "kcore", "kmsg", "oom_lower"}) {
    bool refused = HasLine(out, ErrnoLine(op, EACCES)) || HasLine(out, ErrnoLine(op, EPERM)) ||
                   HasLine(out, ErrnoLine(op, ENOENT)) || HasLine(out, ErrnoLine(op, EROFS));
    EXPECT_TRUE(refused) << op << " was not refused:\n" << out;
  }
  EXPECT_TRUE(HasLine(out, "kallsyms_nonzero 0") || !Tagged(out, "kallsyms errno").empty())
      << "kernel addresses readable: " << out;
  std::vector<std::string> pids = Tagged(out, "pids");
  ASSERT_EQ(pids.size(), 1u) << out;
  EXPECT_EQ(Fields(pids[0]).size(), 2u) << "more than init and the action visible: " << pids[0];
  EXPECT_TRUE(HasLine(out, ErrnoLine("sys", ENOENT))) << "/sys is mounted: " << out;
  EXPECT_TRUE(HasLine(out, ErrnoLine("sys_write", ENOENT))) << out;
  EXPECT_EQ(ReadFile("/proc/sys/kernel/core_pattern"), core_pattern);
  EXPECT_EQ(ReadFile("/proc/sys/kernel/hostname"), hostname);
}

// --- C36: device nodes -------------------------------------------------------------------------

TEST(FsTest, C36_only_minimal_device_nodes) {
  RequireRoot();
  auto pack = AttackPack();
  auto env = EnvDir();
  nlohmann::json result =
      ExecIn(pack->path(), env->path(), {"/usr/bin/python3", "/pack/c36_devices.py"});
  std::string out = Stdout(result);
  ASSERT_TRUE(HasLine(out, "reached")) << "the attack never ran: " << result.dump();
  std::set<std::string> devices;
  for (const std::string& line : Tagged(out, "dev")) {
    std::vector<std::string> f = Fields(line);
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_NE(f[1], "blk") << "block device " << line;
    EXPECT_NE(f[1], "other") << "socket/fifo in /dev: " << line;
    if (f[1] == "chr") devices.insert(f[0]);
  }
  EXPECT_EQ(devices, (std::set<std::string>{"/dev/full", "/dev/null", "/dev/random", "/dev/urandom",
                                            "/dev/zero"}))
      << out;
  for (const char* dev : {"/dev/tty", "/dev/console", "/dev/mem", "/dev/kmsg", "/dev/sda",
                          "/dev/vda", "/dev/fuse", "/dev/net/tun", "/dev/ptmx", "/dev/tty0"}) {
    bool refused = HasLine(out, "open " + ErrnoLine(dev, ENOENT)) ||
                   HasLine(out, "open " + ErrnoLine(dev, ENXIO));
    EXPECT_TRUE(refused) << dev << " could be opened or exists:\n" << out;
  }
  EXPECT_TRUE(HasLine(out, "mknod " + ErrnoLine("/tmp/mem", EPERM))) << out;
  EXPECT_TRUE(HasLine(out, "mknod " + ErrnoLine("/env/mem", EPERM))) << out;
}

// --- C37: manifest bombs -----------------------------------------------------------------------

TEST(FsTest, C37_manifest_bomb_refused_fast) {
  RequireRoot();
  World world;
  world.Action("bomb", "ok", "shell", "ok.sh", "exit 0\n");
  // Billion laughs: 9 levels of 9 aliases each = 387M nodes once expanded.
  std::string laughs = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) laughs += (j ? ", " : "") + prev;
    laughs += "]\n";
  }
  world.Write("packs/bomb/actions/laughs.yaml",
              laughs +
                  "name: laughs\nrunner_type: shell\nentry_point: ok.sh\nparameters:\n"
                  "  p:\n    type: array\n    default: *l9\n");
  world.Write("packs/bomb/actions/big.yaml",
              "name: big\nrunner_type: shell\nentry_point: ok.sh\ndescription: \"" +
                  std::string(5 << 20, 'A') + "\"\n");
  world.Write("packs/bomb/actions/deep.yaml",
              "name: deep\nrunner_type: shell\nentry_point: "
              "ok.sh\nx: " +
                  std::string(100000, '[') + std::string(100000, ']') + "\n");
  world.Write("packs/bomb/actions/keys.yaml", [] {
    std::string text = "name: keys\nrunner_type: shell\nentry_point: ok.sh\nparameters:\n";
    for (int i = 0; i < 200000; ++i) text += "  k" + std::to_string(i) + ": {type: string}\n";
    return text;
  }());
  for (const char* ref : {"bomb.laughs", "bomb.big", "bomb.deep", "bomb.keys"}) {
    Outcome run = world.Cli({"run", ref, "--json"}, {}, 10000);
    nlohmann::json result = Result(run);
    EXPECT_EQ(run.exit_code, 125) << ref << ": " << run.err;
    EXPECT_EQ(result.value("status", ""), "rejected") << ref << ": " << run.out.substr(0, 500);
    EXPECT_LT(run.seconds, 2.0) << ref << " took too long to refuse";
  }
  Outcome list = world.Cli({"pack", "list"}, {}, 10000);
  EXPECT_FALSE(list.timed_out);
  EXPECT_LT(list.exit_code, 128) << "pack list crashed";
  EXPECT_LT(list.seconds, 2.0);
}

}  // namespace
}  // namespace packvisor
