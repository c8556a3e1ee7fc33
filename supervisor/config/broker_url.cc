// worker.broker_url: RabbitMQ's AMQP URI spec (https://www.rabbitmq.com/docs/uri-spec), strictly.
// No error ever contains the userinfo part (it holds the password).
#include "supervisor/config/broker_url.h"

#include <charconv>
#include <string>
#include <string_view>

namespace packvisor {
namespace {

constexpr char kPrefix[] = "invalid broker URL: ";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `text`; false on a malformed escape or a decoded NUL.
bool PercentDecode(std::string_view text, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return false;
    int high = HexValue(text[i + 1]);
    int low = HexValue(text[i + 2]);
    if (high < 0 || low < 0) return false;
    char c = static_cast<char>(high * 16 + low);
    if (c == '\0') return false;
    out += c;
    i += 2;
  }
  return true;
}

// RFC 3986 unreserved characters stay; everything else is escaped.
std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A DNS name or an IPv4 address; with `ipv6`, what goes between '[' and ']'. Anything else (a
// decoded "%40" is an '@') would make the redacted URL in logs name another broker.
bool IsHostText(std::string_view host, bool ipv6) {
  for (char c : host) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    bool ok = ipv6 ? hex || c == ':' || c == '.'
                   : (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Failure("", "", ...) so that message() is exactly "invalid broker URL: DETAIL".
Error Bad(const std::string& detail) { return Failure("", "", kPrefix + detail); }

}  // namespace

Result<BrokerUrl> ParseBrokerUrl(std::string_view url) {
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) {
      return Bad("contains a space, a control character or a non-ASCII byte (percent-encode it)");
    }
  }
  BrokerUrl out;
  std::string_view rest;
  if (url.substr(0, 7) == "amqp://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "amqps://") {
    out.tls = true;
    out.port = 5671;
    rest = url.substr(8);
  } else {
    return Bad("expected a URL starting with amqp:// or amqps://");
  }
  if (rest.find('?') != std::string_view::npos || rest.find('#') != std::string_view::npos) {
    return Bad(
        "query parameters and fragments are not supported (the worker.* keys set heartbeat, "
        "TLS and timeouts)");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash + 1);
    if (path.empty()) {
      return Bad("the vhost after the '/' is empty (write %2F for the default vhost \"/\")");
    }
    if (path.find('/') != std::string_view::npos) {
      return Bad("the vhost contains '/': write it as %2F");
    }
    if (!PercentDecode(path, out.vhost)) return Bad("the vhost has a malformed %-escape");
  }
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    if (user.empty()) return Bad("the user name before the '@' is empty");
    if (!PercentDecode(user, out.user)) return Bad("the user name has a malformed %-escape");
    if (colon != std::string_view::npos) {
      // Never quoted: it is the password.
      if (!PercentDecode(userinfo.substr(colon + 1), out.password)) {
        return Bad("the password has a malformed %-escape");
      }
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return Bad("an IPv6 host lacks its closing ']'");
    std::string_view after = host.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad("unexpected text after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) return Bad("the port after ':' is empty");
    }
    host = host.substr(1, close - 1);
    if (host.empty()) return Bad("the IPv6 host is empty");
    if (!IsHostText(host, true)) {
      return Bad("the IPv6 host may hold only hexadecimal digits, ':' and '.'");
    }
    out.host = std::string(host);
  } else {
    size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return Bad("the port after ':' is empty");
    }
    if (host.empty()) return Bad("the host is empty");
    if (!PercentDecode(host, out.host)) return Bad("the host has a malformed %-escape");
    if (!IsHostText(out.host, false)) {
      return Bad(
          "the host may hold only letters, digits, '-', '.' and '_' (a DNS name or an "
          "IPv4 address)");
    }
  }
  if (!port.empty()) {
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      // Not quoted: "user:secret" without its "@host" would put a password here.
      return Bad("the port must be a number from 1 to 65535");
    }
    out.port = value;
  }
  return out;
}

std::string RedactedBrokerUrl(const BrokerUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  return std::string(url.tls ? "amqps://" : "amqp://") + PercentEncode(url.user) + ":***@" + host +
         ":" + std::to_string(url.port) + "/" + PercentEncode(url.vhost);
}

}  // namespace packvisor
