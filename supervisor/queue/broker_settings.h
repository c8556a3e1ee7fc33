// How packvisor reaches the broker, from its configuration (the worker.* keys): the parsed
// worker.broker_url (or a --broker override), the password from worker.broker_password_file when
// one is set, and the TLS files for amqps. Shared by `packvisor worker` and `packvisor submit`.
#pragma once

#include <optional>
#include <string>

#include "sandbox/os/error.h"
#include "supervisor/config/config.h"
#include "supervisor/queue/amqp.h"

namespace packvisor::queue {

struct BrokerSettings {
  BrokerUrl url;
  ConnectOptions options;
};

// `url_override` replaces worker.broker_url (submit --broker). The password file must be a
// regular file, not a symlink, owned by this process's uid, mode 0600 or 0400; its first line is
// the password. Errors never contain the password.
Result<BrokerSettings> BrokerSettingsFromConfig(const Config& config,
                                                const std::optional<std::string>& url_override,
                                                const std::string& connection_name);

}  // namespace packvisor::queue
