// worker.broker_url and `submit --broker`: ParseBrokerUrl on any text. Invariants: a refusal is
// one clean line that never contains the password part of the input; an accepted URL's redacted
// form hides the password and parses back to the same broker.
#include "fuzz/fuzz_support.h"
#include "supervisor/config/broker_url.h"

namespace {

using packvisor::fuzz::CheckOneLineMessage;

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

// Another character of the same class (hex letter, other letter, digit), so that the URL takes
// the same path through the parser; other characters stay.
char SameShapeOther(char c) {
  auto rotate = [](char c, char first, char last) {
    return c == last ? first : static_cast<char>(c + 1);
  };
  if (c >= 'a' && c <= 'f') return rotate(c, 'a', 'f');
  if (c >= 'A' && c <= 'F') return rotate(c, 'A', 'F');
  if (c >= 'g' && c <= 'z') return rotate(c, 'g', 'z');
  if (c >= 'G' && c <= 'Z') return rotate(c, 'G', 'Z');
  if (c >= '0' && c <= '9') return rotate(c, '0', '9');
  return c;
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
      if (password.size() >= 4 && message.find(password) != std::string::npos) {
        // Leaked, or part of the fixed text ("contains ..." holds " contai"): the same URL
        // with another password of the same shape must then give a message holding it too.
        std::string other(url);
        size_t start = static_cast<size_t>(password.data() - url.data());
        for (size_t i = start; i < start + password.size(); ++i) other[i] = SameShapeOther(url[i]);
        auto refused = packvisor::ParseBrokerUrl(other);
        PV_FUZZ_CHECK(
            !refused.ok() && refused.error().message().find(password) != std::string::npos,
            "the password appears in: " + message);
      }
      return;
    }
    std::string redacted = packvisor::RedactedBrokerUrl(*parsed);
    // The redacted form depends on everything but the password.
    packvisor::BrokerUrl other_password = *parsed;
    other_password.password += "x";
    PV_FUZZ_CHECK(packvisor::RedactedBrokerUrl(other_password) == redacted,
                  "the redacted URL depends on the password: " + redacted);
    auto again = packvisor::ParseBrokerUrl(redacted);
    PV_FUZZ_CHECK(again.ok(), "the redacted URL does not parse: " + redacted);
    PV_FUZZ_CHECK(again->tls == parsed->tls && again->host == parsed->host &&
                      again->port == parsed->port && again->vhost == parsed->vhost &&
                      again->user == parsed->user && again->password == "***",
                  "the redacted URL names another broker: " + redacted);
  });
  return 0;
}
