// A 100,000-deep document is refused with one clean line, before toml++ or yaml-cpp recurse into
// it, by each parser of configuration, runtime definitions and pack YAML (docs/fuzzing.md):
// deep inline arrays and tables, 100,000-component dotted keys and [table] / [[array]] headers,
// flow and block YAML collections.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "envs/document_limits.h"
#include "envs/runtime.h"
#include "supervisor/config/config_text.h"
#include "supervisor/packs/pack_yaml.h"
#include "supervisor/packs/packs.h"

namespace packvisor {
namespace {

constexpr int kDeep = 100'000;

bool IsOneCleanLine(const std::string& text) {
  if (text.empty() || text.size() > 2048) return false;
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// Deep TOML documents, by name, each with `key` where a document needs a key of its own.
std::vector<std::pair<std::string, std::string>> DeepTomlDocuments() {
  std::string arrays = "a = " + std::string(kDeep, '[') + std::string(kDeep, ']') + "\n";
  std::string tables = "a = ";
  std::string dotted;
  std::string header;
  for (int i = 0; i < kDeep; ++i) {
    tables += "{b = ";
    dotted += "a.";
  }
  tables += "1" + std::string(kDeep, '}') + "\n";
  header = dotted + "a";
  dotted += "a = 1\n";
  // 500,000 components fit in the 1 MiB a file may have: toml++ alone overflows an 8 MiB stack
  // freeing them (gcc -O2), and 100,000 under AddressSanitizer.
  std::string longest;
  for (int i = 0; i < 500'000; ++i) longest += "a.";
  longest += "a = 1\n";
  return {{"inline arrays", arrays},
          {"dotted key of 500,000 components", longest},
          {"inline tables", tables},
          {"dotted key", dotted},
          {"table header", "[" + header + "]\nx = 1\n"},
          {"array-of-tables header", "[[" + header + "]]\nx = 1\n"}};
}

TEST(ConfigToml, HundredThousandDeepDocumentsAreRefusedNotACrash) {
  for (const auto& [what, text] : DeepTomlDocuments()) {
    auto config = ParseConfigText(text, "/etc/packvisor/deep.toml");
    ASSERT_FALSE(config.ok()) << what;
    std::string message = config.error().message();
    EXPECT_TRUE(IsOneCleanLine(message)) << what << ": " << message.substr(0, 300);
    EXPECT_EQ(message,
              "invalid configuration /etc/packvisor/deep.toml: tables and arrays nested deeper "
              "than 64 levels (refused before parsing)")
        << what;
  }
}

TEST(RuntimeToml, HundredThousandDeepDocumentsAreRefusedNotACrash) {
  for (const auto& [what, text] : DeepTomlDocuments()) {
    auto runtime = envs::ParseRuntimeDefinition(text, "/etc/packvisor/runtimes/deep.toml");
    ASSERT_FALSE(runtime.ok()) << what;
    std::string message = runtime.error().message();
    EXPECT_TRUE(IsOneCleanLine(message)) << what << ": " << message.substr(0, 300);
    EXPECT_EQ(message,
              "/etc/packvisor/runtimes/deep.toml:1: syntax: tables and arrays nested deeper than "
              "64 levels (refused before parsing)")
        << what;
  }
}

TEST(ConfigToml, ShallowDocumentsStillLoad) {
  auto config =
      ParseConfigText("[sandbox]\nset_env = { A = \"[[[[\" }\n[server]\nallowed_uids = [0, 1000]\n",
                      "/etc/packvisor/packvisor.toml");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->sandbox.set_env.at("A"), "[[[[");
}

// pack.yaml and an action's YAML, each 100,000 deep in flow and in block style.
TEST(PackYaml, HundredThousandDeepDocumentsAreRefusedNotACrash) {
  std::string flow = "x: " + std::string(kDeep, '[') + std::string(kDeep, ']') + "\n";
  std::string flow_maps;
  for (int i = 0; i < kDeep; ++i) flow_maps += "{a: ";
  flow_maps = "x: " + flow_maps + "1" + std::string(kDeep, '}') + "\n";
  std::string block = "x:\n";
  for (int i = 0; i < kDeep; ++i) block += "- ";
  block += "1\n";
  const std::string action = "name: run\nentry_point: run.sh\n";
  for (const auto& [what, deep] : std::vector<std::pair<std::string, std::string>>{
           {"flow sequences", flow}, {"flow mappings", flow_maps}, {"block sequences", block}}) {
    PackInspection in_action =
        detail::InspectPackText("/packs/p", "ref: p\n", {{"run", action + deep}});
    ASSERT_TRUE(in_action.pack.has_value()) << what;
    ASSERT_EQ(in_action.pack->bad_actions.size(), 1u) << what;
    const std::string& reason = in_action.pack->bad_actions[0].reason;
    EXPECT_TRUE(IsOneCleanLine(reason)) << what;
    EXPECT_EQ(reason.rfind("/packs/p/actions/run.yaml:", 0), 0u) << reason;
    EXPECT_NE(reason.find(": nested deeper than 64 levels"), std::string::npos) << reason;

    PackInspection in_pack =
        detail::InspectPackText("/packs/p", "ref: p\n" + deep, {{"run", action}});
    EXPECT_FALSE(in_pack.pack.has_value()) << what;
    ASSERT_FALSE(in_pack.diagnostics.empty()) << what;
    const Diagnostic& first = in_pack.diagnostics[0];
    EXPECT_EQ(first.file, "/packs/p/pack.yaml") << what;
    EXPECT_GE(first.line, 2) << what;
    EXPECT_EQ(first.detail, "nested deeper than 64 levels") << what;
    for (const Diagnostic& d : in_pack.diagnostics) EXPECT_TRUE(IsOneCleanLine(d.Text()));
  }
}

}  // namespace
}  // namespace packvisor
