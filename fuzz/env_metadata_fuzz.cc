// What packvisor reads back about an environment (envs/environment_records.h): the ready marker
// and the failed-build record, whose "error" is made of what the sandboxed build printed
// (envs/build_output.h). The input is used twice: as the text of a marker and of a record
// (ParseReadyMarker, ParseFailureRecord), and as a build's output turned into a failure detail
// and recorded (StepFailureDetail, FailureRecordText).
// Invariants: nothing throws; a record that parses reads back the same once written again; any
// output gives a one-line, valid UTF-8 detail that the record keeps exactly.
#include <string>

#include "envs/build_output.h"
#include "envs/environment_records.h"
#include "fuzz/fuzz_support.h"

namespace {

namespace envs = packvisor::envs;

bool IsUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t j = 1; j < length; ++j) {
      if ((static_cast<unsigned char>(text[i + j]) >> 6) != 2) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = packvisor::fuzz::AsText(data, size);
  packvisor::fuzz::NoThrow("ParseReadyMarker", [&] {
    if (auto marker = envs::ParseReadyMarker(text)) {
      auto again = envs::ParseReadyMarker(envs::ReadyMarkerText(*marker, "python", 1));
      PV_FUZZ_CHECK(again && again->digest == marker->digest && again->ino == marker->ino,
                    "a marker does not read back as itself");
    }
  });
  packvisor::fuzz::NoThrow("ParseFailureRecord", [&] {
    if (auto record = envs::ParseFailureRecord(text)) {
      auto again = envs::ParseFailureRecord(envs::FailureRecordText(*record, "python"));
      PV_FUZZ_CHECK(again && again->digest == record->digest && again->error == record->error &&
                        again->failed_at == record->failed_at,
                    "a failure record does not read back as itself");
    }
  });
  packvisor::fuzz::NoThrow("StepFailureDetail", [&] {
    envs::BuildOutputTail tail;
    for (size_t at = 0; at < text.size(); at += 97) tail.Consume(text.substr(at, 97));
    PV_FUZZ_CHECK(tail.text().size() <= text.size(), "the tail grew");
    std::string detail = envs::StepFailureDetail("install", "exit 1", tail.text(), 8);
    packvisor::fuzz::CheckOneLineMessage(detail);
    PV_FUZZ_CHECK(IsUtf8(detail), "the detail is not UTF-8: " + detail);
    std::string written = envs::FailureRecordText({"sha256:0", detail, 1700000000}, "python");
    auto record = envs::ParseFailureRecord(written);
    PV_FUZZ_CHECK(record && record->error == detail && record->digest == "sha256:0" &&
                      record->failed_at == 1700000000,
                  "a written failure record does not read back: " + written);
  });
  return 0;
}
