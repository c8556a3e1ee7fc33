// supervisor/config/: the configuration and what derives from it alone: the typed Config and its
// loading (config.h), the parts of a SandboxSpec every launch shares (sandbox_defaults.h), the
// runtime registry with the built-in definitions embedded at build time (builtin_runtimes.h,
// embed_runtimes.cmake), and the per-pack host ids (tenancy.h). It depends only on envs/ and
// sandbox/: nothing here includes packs/, executions/ or cli/.
//
// packvisor's configuration (SPEC §3): one typed struct, loaded and validated once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/os/error.h"
#include "sandbox/seccomp_policy.h"

namespace packvisor {

struct ExecutionConfig {
  int64_t default_timeout_seconds = 600;
  int64_t kill_grace_seconds = 5;
  uint64_t max_stdout_bytes = 10ull << 20;
  uint64_t max_stderr_bytes = 10ull << 20;
};

struct SandboxConfig {
  uid_t uid_range_first = 100000;  // inclusive
  uid_t uid_range_last = 165535;   // inclusive
  uint64_t memory_max_mb = 512;
  uint64_t pids_max = 256;
  uint64_t cpu_max_percent = 100;
  // The most a runtime definition (`[limits]`) or an action (`limits:`) may ask for: never below
  // the default above. A file that raises a default without setting its ceiling raises the
  // ceiling with it (requests may then only lower the limit).
  uint64_t memory_ceiling_mb = 512;
  uint64_t pids_ceiling = 256;
  uint64_t cpu_ceiling_percent = 100;
  uint64_t tmp_size_mb = 64;
  uint64_t nofile = 1024;
  uint64_t fsize_mb = 1024;
  std::vector<std::string> host_network_packs;
  bool install_network = true;
  std::vector<std::string> extra_ro_binds;  // absolute
  std::vector<std::string> passthrough_env;
  // Fixed variables every action (and `exec`) gets, e.g. ATTUNE_API_URL. Never PATH, LD_* or the
  // context variables below; a name may not be both here and in passthrough_env.
  std::map<std::string, std::string> set_env;
  // Without a usable cgroup back end executions refuse to run, unless this is true (then only
  // rlimits bound them, and every run logs that).
  bool allow_rlimits_only = false;
  // Execution cgroups live in {the supervisor's own cgroup}/{cgroup_parent}/ in each hierarchy.
  std::string cgroup_parent = "packvisor";
  // "deny" (the deny list) or "allow" (the measured allow list on top of it) for actions and
  // `exec`; environment builds always run with the deny list (docs/config.md).
  sandbox::SeccompMode seccomp_mode = sandbox::SeccompMode::kDeny;
};

struct EnvsConfig {
  uint64_t max_size_mb = 2048;
  // Each pack's environments live on a filesystem of this size of their own (a loop-mounted
  // ext4 image under state_dir/disks); 0 turns the per-pack disk off (`packvisor check` warns).
  uint64_t pack_disk_mb = 4096;
  std::map<std::string, std::string> install_env;
  int64_t build_timeout_seconds = 900;
};

// The number of online cores (at least 1): the default of server.max_concurrent.
uint64_t OnlineCores();

struct ServerConfig {
  std::string socket = "/run/packvisor/packvisor.sock";  // absolute
  // The socket file's group (mode 0660). A name in the file is resolved through /etc/group when
  // the file is loaded (the binary is static: no NSS); socket_group_name keeps what it said.
  gid_t socket_group = 0;
  std::string socket_group_name = "0";
  // Callers allowed by SO_PEERCRED uid / gid. Root (uid 0) is always allowed, listed or not.
  std::vector<uid_t> allowed_uids = {0};
  std::vector<gid_t> allowed_gids;
  uint64_t max_concurrent = OnlineCores();  // executions running at once
  uint64_t max_queued = 64;                 // waiting beyond those; more: 429
  uint64_t max_body_bytes = 1048576;        // a larger request body: 413
  uint64_t max_connections = 64;            // open client connections at once
  int64_t read_timeout_seconds = 10;        // to receive a whole request
  int64_t write_timeout_seconds = 10;       // for a client to take a response (per write)
  int64_t drain_seconds = 30;               // SIGTERM: wait this long for running executions
  int64_t result_ttl_seconds = 86400;       // finished records kept in state_dir this long
  uint64_t warm_sandboxes = 2;              // pre-created sandboxes per pool; 0: no pool
  std::vector<std::string> warm_packs;      // pack refs with a pool of their own
};

// The host's name (gethostname), or "packvisor-worker" when it has none: the default of
// worker.name.
std::string HostName();

// The queue worker (`packvisor worker`, docs/worker.md) and the `submit`/`keygen` commands.
struct WorkerConfig {
  // amqp:// or amqps:// (checked with ParseBrokerUrl when the file is loaded).
  std::string broker_url = "amqp://guest:guest@127.0.0.1:5672/%2F";
  std::string ca_file;    // PEM bundle for amqps; "" = the system's default
  std::string cert_file;  // client certificate and its private key in one PEM file; "" = none
  std::string key_file = "/etc/packvisor/worker.key";         // the private sealing key
  std::string public_key_file = "/etc/packvisor/worker.pub";  // what `submit` seals to
  std::vector<std::string> runtimes;                          // empty: every known runtime
  uint64_t max_concurrent = OnlineCores();
  int64_t delivery_limit = 3;  // x-delivery-limit of the run queues
  int64_t cancel_memory_seconds = 600;
  int64_t drain_seconds = 30;
  int64_t reconnect_max_seconds = 30;
  int64_t heartbeat_seconds = 30;  // 0 disables AMQP heartbeats
  std::string name = HostName();
  // When set, the broker password is read from this file (a regular file, not a symlink, mode
  // 0400 or 0600) instead of the URL. "" = the URL's password.
  std::string broker_password_file;
};

struct Config {
  std::string source;  // the file it came from, or "built-in defaults"
  std::string packs_base_dir = "/opt/packvisor/packs";
  std::string runtime_envs_dir = "/opt/packvisor/runtime_envs";
  std::string state_dir = "/var/lib/packvisor";
  std::optional<std::string> runtimes_dir;  // extra runtime definitions; built-ins otherwise
  ExecutionConfig execution;
  SandboxConfig sandbox;
  EnvsConfig envs;
  ServerConfig server;
  WorkerConfig worker;
};

// The execution context variables the sandbox sets as PACKVISOR_<NAME> and, for packs of the
// original platform, ATTUNE_<NAME> (SPEC §6). No configuration key may set these names.
inline constexpr const char* kContextVariableNames[] = {
    "EXEC_ID", "ACTION", "PACK_REF", "PARAMETER_DELIVERY", "PARAMETER_FORMAT", "PARAMETER_FILE"};

inline constexpr char kSystemConfigPath[] = "/etc/packvisor/packvisor.toml";
inline constexpr char kBuiltinConfigSource[] = "built-in defaults";

// Lookup order: explicit path (--config), else $PACKVISOR_CONFIG, else
// /etc/packvisor/packvisor.toml if it exists, else built-in defaults.
Result<Config> LoadConfig(const std::optional<std::string>& explicit_path);

// The same lookup with its inputs spelled out (for tests): env_path is the value of
// $PACKVISOR_CONFIG (nullopt or empty = unset), system_path replaces kSystemConfigPath.
Result<Config> LoadConfigFrom(const std::optional<std::string>& explicit_path,
                              const std::optional<std::string>& env_path,
                              const std::string& system_path);

// Parses one TOML file. Unknown keys, wrong types and impossible values are errors naming the
// file, the line and the key. Relative paths are resolved against the file's directory.
Result<Config> LoadConfigFile(const std::string& path);

// A group name or a decimal gid as a gid. A name is looked up in `group_file` (the /etc/group
// format) without NSS: the binary is static. A number is taken as it is.
Result<gid_t> LookUpGroup(std::string_view group, const std::string& group_file = "/etc/group");

// Every key a configuration file may set ("packs_base_dir", "sandbox.pids_max"), in table order
// (docs/config.md documents each; a unit test holds them together).
const std::vector<std::string>& ConfigKeyNames();

}  // namespace packvisor
