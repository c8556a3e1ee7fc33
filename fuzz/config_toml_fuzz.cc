// The TOML configuration (packvisor.toml): ParseConfigText on any text. Invariants: a refusal is
// one clean line naming the file; nothing throws; a broker password written in the text
// (worker.broker_url) never comes back in an error; an accepted configuration, written back as
// TOML, is accepted again as the same configuration (a fixed point of load and render).
#include <toml++/toml.h>

#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "supervisor/config/config.h"
#include "supervisor/config/config_text.h"

namespace {

using packvisor::Config;
using packvisor::fuzz::CheckOneLineMessage;

constexpr char kSource[] = "/fuzz/etc/packvisor.toml";

// A password part ("scheme://user:PASSWORD@host") of a URL the input gives to broker_url (on a
// line that names the key before the URL), and where it stands in the text. Other keys' values
// are not secret: they may be quoted in errors.
struct RawPassword {
  std::string text;
  size_t at = 0;
};

std::vector<RawPassword> RawPasswords(std::string_view text) {
  std::vector<RawPassword> out;
  for (size_t scheme = text.find("://"); scheme != std::string_view::npos;
       scheme = text.find("://", scheme + 3)) {
    size_t line = text.rfind('\n', scheme);
    line = line == std::string_view::npos ? 0 : line + 1;
    if (text.substr(line, scheme - line).find("broker_url") == std::string_view::npos) continue;
    std::string_view rest = text.substr(scheme + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/\"'\n"));
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) continue;
    out.push_back({std::string(userinfo.substr(colon + 1)), scheme + 3 + colon + 1});
  }
  return out;
}

std::string Message(const packvisor::Result<Config>& result) {
  return result.ok() ? std::string() : result.error().message();
}

// No password of the input in the refusal, told from chance by ReplaceCopies (another key's value
// may hold the same letters, and an error may quote it).
void CheckNoPassword(std::string_view text, const std::string& message) {
  for (const RawPassword& password : RawPasswords(text)) {
    const std::string& secret = password.text;
    if (secret.size() < 4 || message.find(secret) == std::string::npos) continue;
    std::string none =
        Message(packvisor::ParseConfigText(packvisor::fuzz::ReplaceCopies(text, secret), kSource));
    if (none.find(secret) != std::string::npos) continue;
    std::string own = Message(packvisor::ParseConfigText(
        packvisor::fuzz::ReplaceCopies(text, secret, {password.at}), kSource));
    packvisor::fuzz::CheckSecretAbsent(own, secret);
  }
}

template <typename T>
toml::array Array(const std::vector<T>& values) {
  toml::array array;
  for (const T& value : values) {
    if constexpr (std::is_same_v<T, std::string>) {
      array.push_back(value);
    } else {
      array.push_back(static_cast<int64_t>(value));
    }
  }
  return array;
}

toml::table Table(const std::map<std::string, std::string>& values) {
  toml::table table;
  for (const auto& [name, value] : values) table.insert(name, value);
  return table;
}

int64_t I(uint64_t value) { return static_cast<int64_t>(value); }

// Every field of `c` as the TOML that sets it.
std::string Render(const Config& c) {
  toml::table root;
  root.insert("packs_base_dir", c.packs_base_dir);
  root.insert("runtime_envs_dir", c.runtime_envs_dir);
  root.insert("state_dir", c.state_dir);
  if (c.runtimes_dir) root.insert("runtimes_dir", *c.runtimes_dir);
  root.insert("execution",
              toml::table{{"default_timeout_seconds", c.execution.default_timeout_seconds},
                          {"kill_grace_seconds", c.execution.kill_grace_seconds},
                          {"max_stdout_bytes", I(c.execution.max_stdout_bytes)},
                          {"max_stderr_bytes", I(c.execution.max_stderr_bytes)}});
  const packvisor::SandboxConfig& s = c.sandbox;
  root.insert("sandbox",
              toml::table{{"uid_range", toml::array{I(s.uid_range_first), I(s.uid_range_last)}},
                          {"memory_max_mb", I(s.memory_max_mb)},
                          {"pids_max", I(s.pids_max)},
                          {"cpu_max_percent", I(s.cpu_max_percent)},
                          {"memory_ceiling_mb", I(s.memory_ceiling_mb)},
                          {"pids_ceiling", I(s.pids_ceiling)},
                          {"cpu_ceiling_percent", I(s.cpu_ceiling_percent)},
                          {"tmp_size_mb", I(s.tmp_size_mb)},
                          {"nofile", I(s.nofile)},
                          {"fsize_mb", I(s.fsize_mb)},
                          {"host_network_packs", Array(s.host_network_packs)},
                          {"install_network", s.install_network},
                          {"extra_ro_binds", Array(s.extra_ro_binds)},
                          {"passthrough_env", Array(s.passthrough_env)},
                          {"set_env", Table(s.set_env)},
                          {"allow_rlimits_only", s.allow_rlimits_only},
                          {"cgroup_parent", s.cgroup_parent}});
  root.insert("envs", toml::table{{"max_size_mb", I(c.envs.max_size_mb)},
                                  {"pack_disk_mb", I(c.envs.pack_disk_mb)},
                                  {"install_env", Table(c.envs.install_env)},
                                  {"build_timeout_seconds", c.envs.build_timeout_seconds}});
  const packvisor::ServerConfig& v = c.server;
  root.insert("server", toml::table{{"socket", v.socket},
                                    {"socket_group", v.socket_group_name},
                                    {"allowed_uids", Array(v.allowed_uids)},
                                    {"allowed_gids", Array(v.allowed_gids)},
                                    {"max_concurrent", I(v.max_concurrent)},
                                    {"max_queued", I(v.max_queued)},
                                    {"max_body_bytes", I(v.max_body_bytes)},
                                    {"max_connections", I(v.max_connections)},
                                    {"read_timeout_seconds", v.read_timeout_seconds},
                                    {"write_timeout_seconds", v.write_timeout_seconds},
                                    {"drain_seconds", v.drain_seconds},
                                    {"result_ttl_seconds", v.result_ttl_seconds},
                                    {"warm_sandboxes", I(v.warm_sandboxes)},
                                    {"warm_packs", Array(v.warm_packs)}});
  const packvisor::WorkerConfig& w = c.worker;
  root.insert("worker", toml::table{{"broker_url", w.broker_url},
                                    {"ca_file", w.ca_file},
                                    {"cert_file", w.cert_file},
                                    {"key_file", w.key_file},
                                    {"public_key_file", w.public_key_file},
                                    {"runtimes", Array(w.runtimes)},
                                    {"max_concurrent", I(w.max_concurrent)},
                                    {"delivery_limit", w.delivery_limit},
                                    {"cancel_memory_seconds", w.cancel_memory_seconds},
                                    {"drain_seconds", w.drain_seconds},
                                    {"reconnect_max_seconds", w.reconnect_max_seconds},
                                    {"heartbeat_seconds", w.heartbeat_seconds},
                                    {"name", w.name},
                                    {"broker_password_file", w.broker_password_file}});
  // Every string a "basic string" with escapes: the configuration accepts non-ASCII characters
  // only as \u escapes (TomlUnsafeCharacterLine), which the formatter's default writes raw, and
  // toml++ 3.3 writes a value holding a newline and ''' as a '''literal''' string that ends there
  // (it does not read back).
  std::ostringstream out;
  out << toml::toml_formatter(
      root, toml::toml_formatter::default_flags & ~(toml::format_flags::allow_unicode_strings |
                                                    toml::format_flags::allow_literal_strings |
                                                    toml::format_flags::allow_multi_line_strings));
  return out.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseConfigText", [&] {
    auto config = packvisor::ParseConfigText(text, kSource);
    if (!config) {
      std::string message = config.error().message();
      CheckOneLineMessage(message);
      PV_FUZZ_CHECK(message.find(kSource) != std::string::npos,
                    "the refusal does not name the file: " + message);
      CheckNoPassword(text, message);
      return;
    }
    PV_FUZZ_CHECK(config->source == kSource, config->source);
    std::string rendered = Render(*config);
    auto again = packvisor::ParseConfigText(rendered, kSource);
    PV_FUZZ_CHECK(again.ok(), "an accepted configuration, rendered, is refused: " + Message(again) +
                                  "\n" + rendered);
    std::string rendered_again = Render(*again);
    PV_FUZZ_CHECK(rendered_again == rendered,
                  "an accepted configuration reads back differently:\n" + rendered + "\n---\n" +
                      rendered_again);
  });
  return 0;
}
