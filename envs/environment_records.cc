#include "envs/environment_records.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include "envs/document_limits.h"

namespace packvisor::envs {
namespace {

using nlohmann::json;

// The records are flat objects: anything deeper is not one.
constexpr int kMaxRecordDepth = 16;

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// The object in `text`, or nullopt. Never throws: nlohmann's parse is told not to.
std::optional<json> ParseObject(std::string_view text) {
  if (JsonNestsDeeperThan(text, kMaxRecordDepth)) return std::nullopt;
  json value = json::parse(text.begin(), text.end(), nullptr, false);
  if (!value.is_object()) return std::nullopt;
  return value;
}

std::optional<std::string> StringField(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// An optional non-negative integer field: `fallback` when absent, nullopt when of another type.
std::optional<uint64_t> CountField(const json& object, const char* name, uint64_t fallback) {
  auto it = object.find(name);
  if (it == object.end()) return fallback;
  if (!it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

}  // namespace

std::string ReadyMarkerText(const ReadyMarker& marker, const std::string& runtime,
                            int64_t built_at) {
  return Dump(json{{"digest", marker.digest},
                   {"ino", marker.ino},
                   {"runtime", runtime},
                   {"built_at", built_at}});
}

std::string FailureRecordText(const FailureRecord& record, const std::string& runtime) {
  return Dump(json{{"digest", record.digest},
                   {"error", record.error},
                   {"runtime", runtime},
                   {"failed_at", record.failed_at}});
}

std::optional<ReadyMarker> ParseReadyMarker(std::string_view text) {
  std::optional<json> object = ParseObject(text);
  if (!object) return std::nullopt;
  std::optional<std::string> digest = StringField(*object, "digest");
  std::optional<uint64_t> ino = CountField(*object, "ino", 0);
  if (!digest || !ino) return std::nullopt;
  return ReadyMarker{*digest, *ino};
}

std::optional<FailureRecord> ParseFailureRecord(std::string_view text) {
  std::optional<json> object = ParseObject(text);
  if (!object) return std::nullopt;
  std::optional<std::string> digest = StringField(*object, "digest");
  std::optional<std::string> error = StringField(*object, "error");
  std::optional<uint64_t> failed_at = CountField(*object, "failed_at", 0);
  if (!digest || !error || !failed_at || *failed_at > static_cast<uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return FailureRecord{*digest, *error, static_cast<int64_t>(*failed_at)};
}

}  // namespace packvisor::envs
