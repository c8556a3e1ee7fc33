// worker.broker_url and `submit --broker`: ParseBrokerUrl on any text. Invariants: a refusal is
// one clean line that never contains the password part of the input; an accepted URL's redacted
// form hides the password and parses back to the same broker.
#include "fuzz/fuzz_support.h"
#include "supervisor/config/broker_url.h"

namespace {

using packvisor::fuzz::CheckOneLineMessage;
using packvisor::fuzz::CheckSecretAbsent;

// The text between the first ':' of the userinfo and its last '@', as written in the input.
std::string_view RawPassword(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  std::string_view authority = rest.substr(0, rest.find('/'));
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view userinfo = authority.substr(0, at);
  size_t colon = userinfo.find(':');
  return colon == std::string_view::npos ? std::string_view{} : userinfo.substr(colon + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view url = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseBrokerUrl", [&] {
    auto parsed = packvisor::ParseBrokerUrl(url);
    std::string_view password = RawPassword(url);
    if (!parsed) {
      std::string message = parsed.error().message();
      CheckOneLineMessage(message);
      CheckSecretAbsent(message, password);
      return;
    }
    std::string redacted = packvisor::RedactedBrokerUrl(*parsed);
    const std::string& secret = parsed->password;
    bool secret_elsewhere =
        parsed->user.find(secret) != std::string::npos ||
        parsed->host.find(secret) != std::string::npos ||
        parsed->vhost.find(secret) != std::string::npos ||
        std::string("amqps://:***@[]/0123456789").find(secret) != std::string::npos;
    if (!secret_elsewhere) CheckSecretAbsent(redacted, secret);
    auto again = packvisor::ParseBrokerUrl(redacted);
    PV_FUZZ_CHECK(again.ok(), "the redacted URL does not parse: " + redacted);
    PV_FUZZ_CHECK(again->tls == parsed->tls && again->host == parsed->host &&
                      again->port == parsed->port && again->vhost == parsed->vhost &&
                      again->user == parsed->user && again->password == "***",
                  "the redacted URL names another broker: " + redacted);
  });
  return 0;
}
