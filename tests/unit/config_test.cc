#include "supervisor/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace packvisor {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ConfigDir() {
#ifdef PACKVISOR_SOURCE_RUNTIMES_DIR
  return std::filesystem::path(PACKVISOR_SOURCE_RUNTIMES_DIR).parent_path().lexically_normal();
#else
  return (std::filesystem::path(__FILE__).parent_path() / "../../config").lexically_normal();
#endif
}

std::string SourceDir() { return std::filesystem::path(ConfigDir()).parent_path(); }

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/packvisor-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `content` to dir_/name and returns the path.
  std::string Write(const std::string& name, const std::string& content) {
    std::filesystem::path path = std::filesystem::path(dir_) / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << content;
    return path;
  }

  // Loads `content` and returns the error message (empty if it loaded).
  std::string ErrorOf(const std::string& content) {
    auto config = LoadConfigFile(Write("packvisor.toml", content));
    return config.ok() ? std::string() : config.error().message();
  }

  std::string File() const { return dir_ + "/packvisor.toml"; }

  std::string dir_;
};

void ExpectDefaults(const Config& c) {
  Config d;
  EXPECT_EQ(c.packs_base_dir, "/opt/packvisor/packs");
  EXPECT_EQ(c.runtime_envs_dir, "/opt/packvisor/runtime_envs");
  EXPECT_EQ(c.state_dir, "/var/lib/packvisor");
  EXPECT_FALSE(c.runtimes_dir.has_value());
  EXPECT_EQ(c.execution.default_timeout_seconds, 600);
  EXPECT_EQ(c.execution.kill_grace_seconds, 5);
  EXPECT_EQ(c.execution.max_stdout_bytes, 10u << 20);
  EXPECT_EQ(c.execution.max_stderr_bytes, 10u << 20);
  EXPECT_EQ(c.sandbox.uid_range_first, 100000u);
  EXPECT_EQ(c.sandbox.uid_range_last, 165535u);
  EXPECT_EQ(c.sandbox.memory_max_mb, 512u);
  EXPECT_EQ(c.sandbox.pids_max, 256u);
  EXPECT_EQ(c.sandbox.cpu_max_percent, 100u);
  EXPECT_EQ(c.sandbox.memory_ceiling_mb, 512u);
  EXPECT_EQ(c.sandbox.pids_ceiling, 256u);
  EXPECT_EQ(c.sandbox.cpu_ceiling_percent, 100u);
  EXPECT_EQ(c.sandbox.tmp_size_mb, 64u);
  EXPECT_EQ(c.sandbox.nofile, 1024u);
  EXPECT_EQ(c.sandbox.fsize_mb, 1024u);
  EXPECT_TRUE(c.sandbox.host_network_packs.empty());
  EXPECT_TRUE(c.sandbox.install_network);
  EXPECT_TRUE(c.sandbox.extra_ro_binds.empty());
  EXPECT_TRUE(c.sandbox.passthrough_env.empty());
  EXPECT_TRUE(c.sandbox.set_env.empty());
  EXPECT_EQ(c.envs.max_size_mb, 2048u);
  EXPECT_EQ(c.envs.pack_disk_mb, 4096u);
  EXPECT_EQ(c.envs.build_timeout_seconds, 900);
  EXPECT_EQ(c.server.socket, "/run/packvisor/packvisor.sock");
  EXPECT_EQ(c.server.allowed_uids, std::vector<uid_t>{0});
  EXPECT_TRUE(c.server.allowed_gids.empty());
  EXPECT_EQ(c.server.max_concurrent, OnlineCores());
  EXPECT_GE(c.server.max_concurrent, 1u);
  EXPECT_EQ(c.server.socket_group, 0u);
  EXPECT_EQ(c.server.max_queued, 64u);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.max_connections, 64u);
  EXPECT_EQ(c.server.read_timeout_seconds, 10);
  EXPECT_EQ(c.server.write_timeout_seconds, 10);
  EXPECT_EQ(c.server.drain_seconds, 30);
  EXPECT_EQ(c.server.result_ttl_seconds, 86400);
  EXPECT_EQ(c.server.warm_sandboxes, 2u);
  EXPECT_TRUE(c.server.warm_packs.empty());
  EXPECT_EQ(c.worker.broker_url, "amqp://guest:guest@127.0.0.1:5672/%2F");
  EXPECT_EQ(c.worker.ca_file, "");
  EXPECT_EQ(c.worker.cert_file, "");
  EXPECT_EQ(c.worker.key_file, "/etc/packvisor/worker.key");
  EXPECT_EQ(c.worker.public_key_file, "/etc/packvisor/worker.pub");
  EXPECT_TRUE(c.worker.runtimes.empty());
  EXPECT_EQ(c.worker.max_concurrent, OnlineCores());
  EXPECT_EQ(c.worker.delivery_limit, 3);
  EXPECT_EQ(c.worker.cancel_memory_seconds, 600);
  EXPECT_EQ(c.worker.drain_seconds, 30);
  EXPECT_EQ(c.worker.reconnect_max_seconds, 30);
  EXPECT_EQ(c.worker.heartbeat_seconds, 30);
  EXPECT_EQ(c.worker.name, HostName());
  EXPECT_EQ(c.worker.broker_password_file, "");
}

// ---- Defaults and lookup ------------------------------------------------------------------------

TEST_F(ConfigTest, DefaultsWhenNothingIsFound) {
  auto config = LoadConfigFrom(std::nullopt, std::nullopt, dir_ + "/absent.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, "built-in defaults");
  ExpectDefaults(*config);
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  auto config = LoadConfigFile(Write("empty.toml", ""));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, dir_ + "/empty.toml");
  ExpectDefaults(*config);
}

TEST_F(ConfigTest, SystemFileUsedWhenItExists) {
  std::string system = Write("etc/packvisor.toml", "[server]\nmax_concurrent = 7\n");
  auto config = LoadConfigFrom(std::nullopt, std::nullopt, system);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, system);
  EXPECT_EQ(config->server.max_concurrent, 7u);
}

TEST_F(ConfigTest, EnvVarBeatsSystemFile) {
  std::string system = Write("etc/packvisor.toml", "[server]\nmax_concurrent = 7\n");
  std::string env = Write("env.toml", "[server]\nmax_concurrent = 8\n");
  auto config = LoadConfigFrom(std::nullopt, env, system);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, env);
  EXPECT_EQ(config->server.max_concurrent, 8u);
}

TEST_F(ConfigTest, EmptyEnvVarIsIgnored) {
  auto config = LoadConfigFrom(std::nullopt, std::string(), dir_ + "/absent.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, "built-in defaults");
}

TEST_F(ConfigTest, ExplicitPathWins) {
  std::string system = Write("etc/packvisor.toml", "[server]\nmax_concurrent = 7\n");
  std::string env = Write("env.toml", "[server]\nmax_concurrent = 8\n");
  std::string explicit_path = Write("explicit.toml", "[server]\nmax_concurrent = 9\n");
  auto config = LoadConfigFrom(explicit_path, env, system);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, explicit_path);
  EXPECT_EQ(config->server.max_concurrent, 9u);
}

TEST_F(ConfigTest, LoadConfigReadsPackvisorConfigVariable) {
  std::string env = Write("env.toml", "[server]\nmax_concurrent = 11\n");
  const char* old = std::getenv("PACKVISOR_CONFIG");
  std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  setenv("PACKVISOR_CONFIG", env.c_str(), 1);
  auto from_env = LoadConfig(std::nullopt);
  std::string explicit_path = Write("explicit.toml", "[server]\nmax_concurrent = 12\n");
  auto from_explicit = LoadConfig(explicit_path);
  setenv("PACKVISOR_CONFIG", (dir_ + "/absent.toml").c_str(), 1);
  auto missing = LoadConfig(std::nullopt);
  if (saved) {
    setenv("PACKVISOR_CONFIG", saved->c_str(), 1);
  } else {
    unsetenv("PACKVISOR_CONFIG");
  }
  ASSERT_TRUE(from_env.ok()) << from_env.error().message();
  EXPECT_EQ(from_env->source, env);
  EXPECT_EQ(from_env->server.max_concurrent, 11u);
  ASSERT_TRUE(from_explicit.ok()) << from_explicit.error().message();
  EXPECT_EQ(from_explicit->server.max_concurrent, 12u);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), HasSubstr(dir_ + "/absent.toml"));
}

TEST_F(ConfigTest, MissingExplicitFileIsAnError) {
  auto config = LoadConfigFrom(dir_ + "/nope.toml", std::nullopt, dir_ + "/absent.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            "read configuration " + dir_ + "/nope.toml: No such file or directory");
}

TEST_F(ConfigTest, MissingEnvFileIsAnError) {
  auto config = LoadConfigFrom(std::nullopt, dir_ + "/nope.toml", dir_ + "/absent.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), HasSubstr(dir_ + "/nope.toml"));
}

TEST_F(ConfigTest, DirectoryIsNotAConfigFile) {
  auto config = LoadConfigFile(dir_);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), HasSubstr("not a regular file"));
}

TEST_F(ConfigTest, RelativeExplicitPathIsMadeAbsolute) {
  Write("sub/rel.toml", "packs_base_dir = \"packs\"\n");
  std::filesystem::path old = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  auto config = LoadConfigFile("./sub/../sub/rel.toml");
  std::filesystem::current_path(old);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, dir_ + "/sub/rel.toml");
  EXPECT_EQ(config->packs_base_dir, dir_ + "/sub/packs");
}

// ---- Shipped files ------------------------------------------------------------------------------

TEST_F(ConfigTest, ShippedExampleLoadsToDefaults) {
  auto config = LoadConfigFile(ConfigDir() + "/packvisor.example.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  ExpectDefaults(*config);
}

// Every "# key = value" line of the example, uncommented, is valid, and the values are the
// defaults (apart from the illustrative runtimes_dir and install_env entries).
TEST_F(ConfigTest, ShippedExampleUncommentedGivesDefaults) {
  std::ifstream in(ConfigDir() + "/packvisor.example.toml");
  ASSERT_TRUE(in.good());
  std::string line, uncommented;
  std::regex setting("^# ([A-Za-z_]+ = .*)$");
  int settings = 0;
  while (std::getline(in, line)) {
    std::smatch match;
    if (std::regex_match(line, match, setting)) {
      uncommented += match[1].str() + "\n";
      ++settings;
    } else {
      uncommented += line + "\n";
    }
  }
  EXPECT_EQ(settings, 59);  // 56 keys, 2 install_env examples and 1 set_env example
  auto config = LoadConfigFile(Write("uncommented.toml", uncommented));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->runtimes_dir, "/etc/packvisor/runtimes");
  EXPECT_EQ(config->envs.install_env.size(), 2u);
  EXPECT_EQ(config->sandbox.set_env.size(), 1u);
  config->runtimes_dir.reset();
  config->sandbox.set_env.clear();
  ExpectDefaults(*config);
}

// sandbox.seccomp_mode names a profile compiled into the binary (issue 15).
TEST_F(ConfigTest, SeccompModeDefaultsToDenyAndAcceptsAllow) {
  auto defaults = LoadConfigFile(Write("default.toml", ""));
  ASSERT_TRUE(defaults.ok()) << defaults.error().message();
  EXPECT_EQ(defaults->sandbox.seccomp_mode, sandbox::SeccompMode::kDeny);
  auto allow = LoadConfigFile(Write("allow.toml", "[sandbox]\nseccomp_mode = \"allow\"\n"));
  ASSERT_TRUE(allow.ok()) << allow.error().message();
  EXPECT_EQ(allow->sandbox.seccomp_mode, sandbox::SeccompMode::kAllow);
}

TEST_F(ConfigTest, SeccompModeRefusesAnythingElseNamingTheKey) {
  EXPECT_EQ(ErrorOf("[sandbox]\nseccomp_mode = \"strict\"\n"),
            "invalid configuration " + File() +
                ":2: sandbox.seccomp_mode: expected \"deny\" or \"allow\", got \"strict\"");
  EXPECT_THAT(ErrorOf("[sandbox]\nseccomp_mode = true\n"), HasSubstr("sandbox.seccomp_mode"));
}

TEST_F(ConfigTest, ShippedDevelopmentLoads) {
  auto config = LoadConfigFile(ConfigDir() + "/development.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->source, ConfigDir() + "/development.toml");
  EXPECT_EQ(config->packs_base_dir, ConfigDir() + "/packs");
  EXPECT_EQ(config->runtime_envs_dir, ConfigDir() + "/runtime_envs");
  EXPECT_EQ(config->state_dir, ConfigDir() + "/state");
  EXPECT_EQ(config->server.socket, ConfigDir() + "/state/packvisor.sock");
}

TEST_F(ConfigTest, ShippedTestConfigLoads) {
  auto config = LoadConfigFile(ConfigDir() + "/test.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->packs_base_dir, SourceDir() + "/tests/fixtures/packs");
  EXPECT_EQ(config->runtime_envs_dir, "/tmp/packvisor-test-runtime-envs");
  EXPECT_EQ(config->state_dir, "/tmp/packvisor-test-state");
}

TEST_F(ConfigTest, ShippedDockerConfigLoads) {
  auto config = LoadConfigFile(ConfigDir() + "/docker.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->packs_base_dir, "/opt/packvisor/packs");
  EXPECT_EQ(config->runtime_envs_dir, "/opt/packvisor/runtime_envs");
  EXPECT_EQ(config->state_dir, "/opt/packvisor/state");
}

// ---- Every key is read --------------------------------------------------------------------------

TEST_F(ConfigTest, ReadsEveryKey) {
  auto config = LoadConfigFile(Write("packvisor.toml", R"(
packs_base_dir = "/srv/packs/"
runtime_envs_dir = "/srv//envs"
state_dir = "/srv/state/x/.."
runtimes_dir = "/srv/runtimes"

[execution]
default_timeout_seconds = 30
kill_grace_seconds = 0
max_stdout_bytes = 1024
max_stderr_bytes = 2048

[sandbox]
uid_range = [200000, 200009]
memory_max_mb = 256
pids_max = 64
cpu_max_percent = 250
tmp_size_mb = 16
nofile = 256
fsize_mb = 10
host_network_packs = ["core", "net_tools-2", "core"]
install_network = false
extra_ro_binds = ["/usr/share/zoneinfo/", "/opt/tools"]
passthrough_env = ["TZ", "HTTP_PROXY", "LANG"]

[envs]
max_size_mb = 100
build_timeout_seconds = 60
install_env = { PIP_INDEX_URL = "https://mirror/simple", npm_config_registry = "https://npm/" }

[server]
socket = "/run/pv.sock"
allowed_uids = [0, 1000, 1000]
allowed_gids = [50]
max_concurrent = 16
socket_group = "root"
max_queued = 0
max_body_bytes = 4096
max_connections = 8
read_timeout_seconds = 2
write_timeout_seconds = 3
drain_seconds = 0
result_ttl_seconds = 60
warm_sandboxes = 0
warm_packs = ["core", "net_tools-2", "core"]
)"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  const Config& c = *config;
  EXPECT_EQ(c.packs_base_dir, "/srv/packs");
  EXPECT_EQ(c.runtime_envs_dir, "/srv/envs");
  EXPECT_EQ(c.state_dir, "/srv/state");
  EXPECT_EQ(c.runtimes_dir, "/srv/runtimes");
  EXPECT_EQ(c.execution.default_timeout_seconds, 30);
  EXPECT_EQ(c.execution.kill_grace_seconds, 0);
  EXPECT_EQ(c.execution.max_stdout_bytes, 1024u);
  EXPECT_EQ(c.execution.max_stderr_bytes, 2048u);
  EXPECT_EQ(c.sandbox.uid_range_first, 200000u);
  EXPECT_EQ(c.sandbox.uid_range_last, 200009u);
  EXPECT_EQ(c.sandbox.memory_max_mb, 256u);
  EXPECT_EQ(c.sandbox.pids_max, 64u);
  EXPECT_EQ(c.sandbox.cpu_max_percent, 250u);
  EXPECT_EQ(c.sandbox.tmp_size_mb, 16u);
  EXPECT_EQ(c.sandbox.nofile, 256u);
  EXPECT_EQ(c.sandbox.fsize_mb, 10u);
  EXPECT_EQ(c.sandbox.host_network_packs, (std::vector<std::string>{"core", "net_tools-2"}));
  EXPECT_FALSE(c.sandbox.install_network);
  EXPECT_EQ(c.sandbox.extra_ro_binds,
            (std::vector<std::string>{"/usr/share/zoneinfo", "/opt/tools"}));
  EXPECT_EQ(c.sandbox.passthrough_env, (std::vector<std::string>{"TZ", "HTTP_PROXY", "LANG"}));
  EXPECT_EQ(c.envs.max_size_mb, 100u);
  EXPECT_EQ(c.envs.build_timeout_seconds, 60);
  EXPECT_EQ(c.envs.install_env,
            (std::map<std::string, std::string>{{"PIP_INDEX_URL", "https://mirror/simple"},
                                                {"npm_config_registry", "https://npm/"}}));
  EXPECT_EQ(c.server.socket, "/run/pv.sock");
  EXPECT_EQ(c.server.allowed_uids, (std::vector<uid_t>{0, 1000}));
  EXPECT_EQ(c.server.allowed_gids, (std::vector<gid_t>{50}));
  EXPECT_EQ(c.server.max_concurrent, 16u);
  EXPECT_EQ(c.server.socket_group, 0u);
  EXPECT_EQ(c.server.socket_group_name, "root");
  EXPECT_EQ(c.server.max_queued, 0u);
  EXPECT_EQ(c.server.max_body_bytes, 4096u);
  EXPECT_EQ(c.server.max_connections, 8u);
  EXPECT_EQ(c.server.read_timeout_seconds, 2);
  EXPECT_EQ(c.server.write_timeout_seconds, 3);
  EXPECT_EQ(c.server.drain_seconds, 0);
  EXPECT_EQ(c.server.result_ttl_seconds, 60);
  EXPECT_EQ(c.server.warm_sandboxes, 0u);
  EXPECT_EQ(c.server.warm_packs, (std::vector<std::string>{"core", "net_tools-2"}));
}

// server.max_concurrent = 0 stands for the default (the number of online cores); an empty
// allowed list leaves root, who is always allowed.
TEST_F(ConfigTest, ServerZeroConcurrencyMeansCoresAndEmptyListsMeanRootOnly) {
  auto config =
      LoadConfigFile(Write("packvisor.toml", "[server]\nmax_concurrent = 0\nallowed_uids = []\n"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->server.max_concurrent, OnlineCores());
  EXPECT_TRUE(config->server.allowed_uids.empty());
  EXPECT_TRUE(config->server.allowed_gids.empty());
}

TEST_F(ConfigTest, SocketGroupIsResolvedFromAGroupFileWithoutNss) {
  std::string groups = Write("group",
                             "root:x:0:\n"
                             "# not a group line\n"
                             "packvisor:x:4242:alice,bob\n"
                             "broken:x:notanumber:\n");
  EXPECT_EQ(LookUpGroup("packvisor", groups).value(), 4242u);
  EXPECT_EQ(LookUpGroup("root", groups).value(), 0u);
  EXPECT_EQ(LookUpGroup("77", groups).value(), 77u);  // a number needs no entry
  EXPECT_EQ(LookUpGroup("packvis", groups).error().message(), "no group \"packvis\" in " + groups);
  EXPECT_EQ(LookUpGroup("broken", groups).error().message(),
            "group \"broken\" has a bad gid in " + groups);
  EXPECT_EQ(LookUpGroup("99999999999", groups).error().message(),
            "gid 99999999999 is out of range");
  // Through the loader, with the host's /etc/group: a number, and root's name.
  auto config = LoadConfigFile(Write("packvisor.toml", "[server]\nsocket_group = 4321\n"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->server.socket_group, 4321u);
  EXPECT_EQ(config->server.socket_group_name, "4321");
}

TEST_F(ConfigTest, SetEnvIsATableOfStrings) {
  auto config = LoadConfigFile(Write("packvisor.toml", R"([sandbox]
passthrough_env = ["TZ"]

[sandbox.set_env]
ATTUNE_API_URL = "http://api:8080"
LANG = "de_DE.UTF-8"
EMPTY = ""
)"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->sandbox.set_env,
            (std::map<std::string, std::string>{
                {"ATTUNE_API_URL", "http://api:8080"}, {"LANG", "de_DE.UTF-8"}, {"EMPTY", ""}}));
}

TEST_F(ConfigTest, SetEnvRefusalsNameTheFileLineAndKey) {
  struct Case {
    std::string toml;
    std::string key_and_detail;
  };
  const std::vector<Case> cases = {
      {"[sandbox.set_env]\nA = \"1\"\nPATH = \"/x\"\n",
       ":3: sandbox.set_env.PATH: \"PATH\" may not be configured: the sandbox sets PATH itself "
       "(its host value names host paths)"},
      {"[sandbox.set_env]\nLD_PRELOAD = \"/x.so\"\n",
       ":2: sandbox.set_env.LD_PRELOAD: \"LD_PRELOAD\" may not be configured: LD_* variables "
       "would change how every program in the sandbox is loaded"},
      {"[sandbox.set_env]\nLD_LIBRARY_PATH = \"/x\"\n",
       ":2: sandbox.set_env.LD_LIBRARY_PATH: \"LD_LIBRARY_PATH\" may not be configured: LD_* "
       "variables would change how every program in the sandbox is loaded"},
      {"[sandbox.set_env]\nPACKVISOR_EXEC_ID = \"1\"\n",
       ":2: sandbox.set_env.PACKVISOR_EXEC_ID: \"PACKVISOR_EXEC_ID\" may not be configured: names "
       "starting with PACKVISOR_ are reserved for the sandbox's own variables"},
      {"[sandbox.set_env]\nATTUNE_PARAMETER_FILE = \"/x\"\n",
       ":2: sandbox.set_env.ATTUNE_PARAMETER_FILE: \"ATTUNE_PARAMETER_FILE\" may not be "
       "configured: the sandbox sets it itself (the same value as PACKVISOR_PARAMETER_FILE)"},
      {"[sandbox]\npassthrough_env = [\"ATTUNE_EXEC_ID\"]\n",
       ":2: sandbox.passthrough_env[0]: \"ATTUNE_EXEC_ID\" may not be configured: the sandbox "
       "sets it itself (the same value as PACKVISOR_EXEC_ID)"},
      {"[sandbox.set_env]\n\"9LIVES\" = \"1\"\n",
       ":2: sandbox.set_env.9LIVES: expected an environment variable name "
       "([A-Za-z_][A-Za-z0-9_]*), "
       "got \"9LIVES\""},
      {"[sandbox.set_env]\nNUL = \"a\\u0000b\"\n",
       ":2: sandbox.set_env.NUL: contains a NUL character"},
      {"[sandbox.set_env]\nPORT = 8080\n", ":2: sandbox.set_env.PORT: expected a string, got 8080"},
      {"[sandbox]\nset_env = [\"A=b\"]\n",
       ":2: sandbox.set_env: expected a table of NAME = \"value\", got an array"},
      {"[sandbox]\npassthrough_env = [\"TZ\"]\n[sandbox.set_env]\nTZ = \"UTC\"\n",
       ":3: sandbox.set_env: \"TZ\" is also in sandbox.passthrough_env: give it one source"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.toml), "invalid configuration " + File() + c.key_and_detail) << c.toml;
  }
}

TEST_F(ConfigTest, DottedKeysWork) {
  auto config = LoadConfigFile(Write("packvisor.toml", "sandbox.pids_max = 99\n"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->sandbox.pids_max, 99u);
}

// ---- Relative paths -----------------------------------------------------------------------------

TEST_F(ConfigTest, RelativePathsAreRelativeToTheFilesDirectory) {
  auto config = LoadConfigFile(Write("etc/pv/packvisor.toml", R"(
packs_base_dir = "packs/"
runtime_envs_dir = "./envs/./x/.."
state_dir = "../../state"
runtimes_dir = "runtimes"
[server]
socket = "run/pv.sock"
)"));
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->packs_base_dir, dir_ + "/etc/pv/packs");
  EXPECT_EQ(config->runtime_envs_dir, dir_ + "/etc/pv/envs");
  EXPECT_EQ(config->state_dir, dir_ + "/state");
  EXPECT_EQ(config->runtimes_dir, dir_ + "/etc/pv/runtimes");
  EXPECT_EQ(config->server.socket, dir_ + "/etc/pv/run/pv.sock");
}

TEST_F(ConfigTest, ExtraRoBindsMustBeAbsolute) {
  EXPECT_EQ(ErrorOf("[sandbox]\nextra_ro_binds = [\"/usr/share\", \"opt/tools\"]\n"),
            "invalid configuration " + File() +
                ":2: sandbox.extra_ro_binds[1]: expected an absolute path, got \"opt/tools\"");
}

TEST_F(ConfigTest, TildeIsNotExpanded) {
  EXPECT_THAT(ErrorOf("\n\nstate_dir = \"~/state\"\n"),
              StartsWith("invalid configuration " + File() + ":3: state_dir: '~' is not expanded"));
}

// ---- Errors: unknown keys, types, syntax --------------------------------------------------------

TEST_F(ConfigTest, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("packs_base_dir = \"/p\"\nbogus = 1\n"),
            "invalid configuration " + File() + ":2: bogus: unknown key");
}

TEST_F(ConfigTest, UnknownNestedKeySuggestsTheRightOne) {
  EXPECT_EQ(ErrorOf("[sandbox]\nmemory_max_mb = 100\npids_maxx = 3\n"),
            "invalid configuration " + File() +
                ":3: sandbox.pids_maxx: unknown key (did you mean sandbox.pids_max?)");
}

TEST_F(ConfigTest, KeyInTheWrongSectionSuggestsTheRightOne) {
  EXPECT_EQ(ErrorOf("pids_max = 3\n"),
            "invalid configuration " + File() +
                ":1: pids_max: unknown key (did you mean sandbox.pids_max?)");
}

TEST_F(ConfigTest, UnknownSection) {
  EXPECT_EQ(ErrorOf("\n[daemon]\nsocket = \"/x\"\n"),
            "invalid configuration " + File() + ":2: daemon: unknown key");
}

TEST_F(ConfigTest, WrongTypeNamesFileLineAndKey) {
  EXPECT_EQ(ErrorOf("[sandbox]\n\npids_max = \"abc\"\n"),
            "invalid configuration " + File() +
                ":3: sandbox.pids_max: expected a positive integer, got \"abc\"");
}

TEST_F(ConfigTest, OtherWrongTypes) {
  struct Case {
    std::string toml, expected;
  };
  const std::vector<Case> cases = {
      {"execution = 5\n", ":1: execution: expected a table, got 5"},
      {"[[execution]]\n", ":1: execution: expected a table, got an array"},
      {"[sandbox]\ninstall_network = \"yes\"\n",
       ":2: sandbox.install_network: expected true or false, got \"yes\""},
      {"[sandbox]\nmemory_max_mb = 512.0\n",
       ":2: sandbox.memory_max_mb: expected a positive integer, got 512.0"},
      {"packs_base_dir = 3\n", ":1: packs_base_dir: expected a path, got 3"},
      {"[sandbox]\nhost_network_packs = \"core\"\n",
       ":2: sandbox.host_network_packs: expected an array of pack refs, got \"core\""},
      {"[sandbox]\nhost_network_packs = [\n  \"core\",\n  7,\n]\n",
       ":4: sandbox.host_network_packs[1]: expected pack refs, got 7"},
      {"[sandbox]\nuid_range = [100000, 165535, 3]\n",
       ":2: sandbox.uid_range: expected an array [first, last] of host ids, got an array"},
      {"[sandbox]\nuid_range = [100000, \"x\"]\n",
       ":2: sandbox.uid_range[1]: expected an integer, got \"x\""},
      {"[envs]\ninstall_env = [\"A=b\"]\n",
       ":2: envs.install_env: expected a table of NAME = \"value\", got an array"},
      {"[envs.install_env]\nPIP_TIMEOUT = 60\n",
       ":2: envs.install_env.PIP_TIMEOUT: expected a string, got 60"},
      {"[server]\nallowed_uids = 0\n",
       ":2: server.allowed_uids: expected an array of numeric ids, got 0"},
      {"[server]\nallowed_uids = [\"root\"]\n",
       ":2: server.allowed_uids[0]: expected a non-negative integer, got \"root\""},
      {"[execution]\ndefault_timeout_seconds = 1979-05-27\n",
       ":2: execution.default_timeout_seconds: expected a positive integer, got a date"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.toml), "invalid configuration " + File() + c.expected) << c.toml;
  }
}

TEST_F(ConfigTest, SyntaxErrorNamesTheLine) {
  std::string message = ErrorOf("[sandbox]\npids_max = 3\nmemory_max_mb = = 4\n");
  EXPECT_THAT(message, StartsWith("invalid configuration " + File() + ":3: TOML syntax error: "));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST_F(ConfigTest, DuplicateKeyIsASyntaxError) {
  EXPECT_THAT(ErrorOf("[sandbox]\npids_max = 3\npids_max = 4\n"),
              StartsWith("invalid configuration " + File() + ":3: TOML syntax error: "));
}

// Refused before toml++ sees it, as every non-ASCII byte outside a comment (docs/fuzzing.md).
TEST_F(ConfigTest, InvalidUtf8IsRefusedAsANonAsciiCharacter) {
  EXPECT_THAT(
      ErrorOf("state_dir = \"/x\xff\"\n"),
      StartsWith("invalid configuration " + File() + ":1: a control or non-ASCII character "));
}

TEST_F(ConfigTest, ErrorMessagesStayOnOneLine) {
  std::string message = ErrorOf("[sandbox]\nhost_network_packs = [\"a\\nb\"]\n");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_THAT(message, HasSubstr("\"a\\x0ab\""));
}

// ---- Errors: impossible values ------------------------------------------------------------------

TEST_F(ConfigTest, ImpossibleValues) {
  struct Case {
    std::string toml, key_and_detail;
  };
  const std::vector<Case> cases = {
      {"[execution]\ndefault_timeout_seconds = 0\n",
       ":2: execution.default_timeout_seconds: expected a positive integer, got 0"},
      {"[execution]\ndefault_timeout_seconds = -5\n",
       ":2: execution.default_timeout_seconds: expected a positive integer, got -5"},
      {"[execution]\nkill_grace_seconds = -1\n",
       ":2: execution.kill_grace_seconds: expected a non-negative integer, got -1"},
      {"[execution]\nmax_stdout_bytes = 1023\n",
       ":2: execution.max_stdout_bytes: expected an integer from 1024 to 1073741824, got 1023"},
      {"[execution]\nmax_stderr_bytes = 2000000000\n",
       ":2: execution.max_stderr_bytes: expected an integer from 1024 to 1073741824, got "
       "2000000000"},
      {"[envs]\nbuild_timeout_seconds = 0\n",
       ":2: envs.build_timeout_seconds: expected a positive integer, got 0"},
      {"[sandbox]\ncpu_max_percent = 0\n",
       ":2: sandbox.cpu_max_percent: expected a positive integer, got 0"},
      {"[sandbox]\npids_max = 1\n",
       ":2: sandbox.pids_max: expected an integer from 2 to 4194304, got 1"},
      {"[sandbox]\nnofile = 2\n",
       ":2: sandbox.nofile: expected an integer from 3 to 1048576, got 2"},
      {"[sandbox]\nmemory_max_mb = 0\n",
       ":2: sandbox.memory_max_mb: expected a positive integer, got 0"},
      {"[server]\nmax_concurrent = -1\n",
       ":2: server.max_concurrent: expected a non-negative integer, got -1"},
      {"[server]\nmax_concurrent = 1025\n",
       ":2: server.max_concurrent: expected an integer from 0 to 1024, got 1025"},
      {"[sandbox]\nuid_range = [0, 65535]\n",
       ":2: sandbox.uid_range[0]: 0 would make sandboxed code root on the host"},
      {"[sandbox]\nuid_range = [33, 99]\n",
       ":2: sandbox.uid_range[0]: expected an id from 1000 to 4294967294 (ids below 1000 belong to "
       "system accounts), got 33"},
      {"[sandbox]\nuid_range = [200000, 100000]\n",
       ":2: sandbox.uid_range: first id 200000 is greater than last id 100000 (the range needs at "
       "least one id)"},
      {"[sandbox]\nuid_range = [60000, 70000]\n",
       ":2: sandbox.uid_range: must not contain 65534 (nobody / the kernel's overflow id)"},
      {"[sandbox]\nuid_range = [100000, 4294967295]\n",
       ":2: sandbox.uid_range[1]: expected an id from 1000 to 4294967294 (ids below 1000 belong to "
       "system accounts), got 4294967295"},
      {"[sandbox]\nhost_network_packs = [\"Core\"]\n",
       ":2: sandbox.host_network_packs[0]: expected a pack ref (^[a-z0-9][a-z0-9_-]{0,63}$), got "
       "\"Core\""},
      {"[sandbox]\npassthrough_env = [\"PACKVISOR_CONFIG\"]\n",
       ":2: sandbox.passthrough_env[0]: \"PACKVISOR_CONFIG\" may not be configured: names starting "
       "with PACKVISOR_ are reserved for the sandbox's own variables"},
      {"[sandbox]\npassthrough_env = [\"PATH\"]\n",
       ":2: sandbox.passthrough_env[0]: \"PATH\" may not be configured: the sandbox sets PATH "
       "itself (its host value names host paths)"},
      {"[sandbox]\npassthrough_env = [\"A=B\"]\n",
       ":2: sandbox.passthrough_env[0]: expected an environment variable name "
       "([A-Za-z_][A-Za-z0-9_]*), got \"A=B\""},
      {"[envs.install_env]\nPACKVISOR_X = \"1\"\n",
       ":2: envs.install_env.PACKVISOR_X: \"PACKVISOR_X\" may not be configured: names starting "
       "with PACKVISOR_ are reserved for the sandbox's own variables"},
      {"[envs.install_env]\n\"BAD NAME\" = \"1\"\n",
       ":2: envs.install_env.\"BAD NAME\": expected an environment variable name "
       "([A-Za-z_][A-Za-z0-9_]*), got \"BAD NAME\""},
      {"[sandbox]\nextra_ro_binds = [\"/\"]\n",
       ":2: sandbox.extra_ro_binds[0]: binding / would undo the sandbox"},
      {"[sandbox]\nextra_ro_binds = [\"/proc/self\"]\n",
       ":2: sandbox.extra_ro_binds[0]: \"/proc/self\" overlaps the sandbox's own mount point "
       "/proc"},
      {"[sandbox]\nextra_ro_binds = [\"/opt\"]\n",
       ":2: sandbox.extra_ro_binds: \"/opt\" overlaps packs_base_dir \"/opt/packvisor/packs\" "
       "(every action would see other packs' files)"},
      {"packs_base_dir = \"/srv/p\"\nruntime_envs_dir = \"/srv/p/envs\"\n",
       ":2: runtime_envs_dir: runtime_envs_dir \"/srv/p/envs\" and packs_base_dir \"/srv/p\" must "
       "not be the same "
       "directory or contain one another (environments never live inside packs)"},
      {"packs_base_dir = \"/opt/packvisor/runtime_envs\"\n",
       ":1: packs_base_dir: runtime_envs_dir \"/opt/packvisor/runtime_envs\" and packs_base_dir "
       "\"/opt/packvisor/runtime_envs\" must not be the same directory or contain one another "
       "(environments never live inside packs)"},
      {"state_dir = \"/opt/packvisor/packs/state\"\n",
       ":1: state_dir: state_dir \"/opt/packvisor/packs/state\" must not be inside packs_base_dir "
       "\"/opt/packvisor/packs\" (the supervisor only reads packs)"},
      {"[server]\nallowed_uids = [0, 100005]\n",
       ":2: server.allowed_uids: uid 100005 is inside sandbox.uid_range; sandboxed code would be "
       "allowed to use the daemon"},
      {"[server]\nsocket_group = \"no-such-group-pv\"\n",
       ":2: server.socket_group: no group \"no-such-group-pv\" in /etc/group"},
      {"[server]\nsocket_group = 1.5\n",
       ":2: server.socket_group: expected a group name or a numeric gid, got 1.5"},
      {"[server]\nsocket_group = -1\n",
       ":2: server.socket_group: expected a non-negative integer, got -1"},
      {"[server]\nwarm_packs = [\"Core\"]\n",
       ":2: server.warm_packs[0]: expected a pack ref (^[a-z0-9][a-z0-9_-]{0,63}$), got \"Core\""},
      {"[server]\nmax_body_bytes = 10\n",
       ":2: server.max_body_bytes: expected an integer from 1024 to 1073741824, got 10"},
      {"[server]\nread_timeout_seconds = 0\n",
       ":2: server.read_timeout_seconds: expected a positive integer, got 0"},
      {"[server]\nmax_connections = 0\n",
       ":2: server.max_connections: expected a positive integer, got 0"},
      {"[server]\nresult_ttl_seconds = 0\n",
       ":2: server.result_ttl_seconds: expected a positive integer, got 0"},
      {"[server]\nsocket = \"/" + std::string(120, 's') + "\"\n",
       ":2: server.socket: socket path \"/" + std::string(79, 's') +
           "...\" is longer than 107 bytes (the limit of sun_path)"},
      {"packs_base_dir = \"\"\n", ":1: packs_base_dir: expected a path, got \"\""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.toml), "invalid configuration " + File() + c.key_and_detail) << c.toml;
  }
}

TEST_F(ConfigTest, FirstProblemInFileOrderIsReported) {
  EXPECT_THAT(ErrorOf("zzz = 1\n[execution]\nkill_grace_seconds = -1\n"),
              HasSubstr(":1: zzz: unknown key"));
  EXPECT_THAT(ErrorOf("[sandbox]\nuid_range = [1, 2]\nbogus = 1\n"),
              HasSubstr(":2: sandbox.uid_range[0]"));
}

TEST_F(ConfigTest, CeilingsDefaultToTheLimitsAndMayRaiseThem) {
  auto defaults = LoadConfigFile(Write("d.toml", "[sandbox]\nmemory_max_mb = 256\n"));
  ASSERT_TRUE(defaults.ok()) << defaults.error().message();
  EXPECT_EQ(defaults->sandbox.memory_ceiling_mb, 256u);
  EXPECT_EQ(defaults->sandbox.pids_ceiling, 256u);
  EXPECT_EQ(defaults->sandbox.cpu_ceiling_percent, 100u);
  auto raised = LoadConfigFile(Write("r.toml",
                                     "[sandbox]\nmemory_ceiling_mb = 4096\npids_ceiling = 1024\n"
                                     "cpu_ceiling_percent = 200\n"));
  ASSERT_TRUE(raised.ok()) << raised.error().message();
  EXPECT_EQ(raised->sandbox.memory_ceiling_mb, 4096u);
  EXPECT_EQ(raised->sandbox.memory_max_mb, 512u);
  EXPECT_EQ(raised->sandbox.cpu_ceiling_percent, 200u);
}

TEST_F(ConfigTest, CeilingBelowTheDefaultIsAnError) {
  EXPECT_EQ(ErrorOf("[sandbox]\npids_max = 100\npids_ceiling = 50\n"),
            "invalid configuration " + File() +
                ":3: sandbox.pids_ceiling: sandbox.pids_ceiling 50 is below the default "
                "sandbox.pids_max 100 (the ceiling bounds what runtimes and actions may ask for)");
}

TEST_F(ConfigTest, PackDiskIsOffOrLargeEnoughForAJournal) {
  auto off = LoadConfigFile(Write("off.toml", "[envs]\npack_disk_mb = 0\n"));
  ASSERT_TRUE(off.ok()) << off.error().message();
  EXPECT_EQ(off->envs.pack_disk_mb, 0u);
  EXPECT_EQ(ErrorOf("[envs]\npack_disk_mb = 8\n"),
            "invalid configuration " + File() +
                ":2: envs.pack_disk_mb: 8 is below the smallest disk (16 MiB), or 0 for none");
}

}  // namespace
}  // namespace packvisor
