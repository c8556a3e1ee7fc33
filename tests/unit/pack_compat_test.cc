// Packs of the original platform (SPEC §4, issue 11): ignored keys and did-you-mean, bad actions
// beside good ones, the JSON-Schema form of parameters, and the checks `pack validate` adds
// (parameters a script reads without declaring them, scripts the sandbox user cannot read).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "supervisor/packs/pack_checks.h"
#include "supervisor/packs/pack_yaml.h"
#include "supervisor/packs/packs.h"
#include "tests/support/pack_builder.h"

namespace packvisor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Contains;
using testing::Joined;
using testing::kFixtures;
using testing::PackBuilder;
using testing::Runtimes;

// --- Unknown keys ----------------------------------------------------------------------------

TEST(UnknownKeys, AnyKeyAtEveryLevelIsIgnoredWithANote) {
  PackBuilder p;
  p.Write("pack.yaml",
          "ref: p\nis_standard: true\nzz_made_up_42: {nested: [1, 2]}\nconf_schema: {a: 1}\n");
  p.Action(
      "name: run\nentry_point: run.sh\ndefault_execution_permission_set_refs: [core.admin]\n"
      "accesses_mcp: true\nlog_retention_days: 3\nartifact_retention_days: 4\n"
      "log_retention_policy: days\nsomething_new_in_2027: x\n"
      "parameters:\n  who: {type: string, position: 0, frobnicate: yes, x-ui: {w: 1}}\n");
  PackInspection inspection = InspectPack(p.dir(), &Runtimes());
  ASSERT_TRUE(inspection.pack) << Joined(inspection.diagnostics);
  ASSERT_EQ(inspection.pack->actions.size(), 1u) << Joined(inspection.diagnostics);
  EXPECT_EQ(inspection.pack->actions[0].parameters.at("who").type, ParamType::kString);
  std::string all = Joined(inspection.diagnostics);
  EXPECT_EQ(CountErrors(inspection.diagnostics), 0u) << all;
  EXPECT_EQ(Joined(inspection.diagnostics, Severity::kWarning), "") << all;
  for (const char* expected : {
           "pack.yaml:2: note: is_standard: ignored",
           "pack.yaml:3: note: zz_made_up_42: ignored",
           "pack.yaml:4: note: conf_schema: ignored",
           "run.yaml:3: note: default_execution_permission_set_refs: ignored",
           "run.yaml:4: note: accesses_mcp: ignored",
           "run.yaml:5: note: log_retention_days: ignored",
           "run.yaml:6: note: artifact_retention_days: ignored",
           "run.yaml:7: note: log_retention_policy: ignored",
           "run.yaml:8: note: something_new_in_2027: ignored",
           "run.yaml:10: note: parameters.who.position: ignored",
           "run.yaml:10: note: parameters.who.frobnicate: ignored",
           "run.yaml:10: note: parameters.who.x-ui: ignored",
       }) {
    EXPECT_TRUE(Contains(all, expected)) << "missing: " << expected << "\nin:\n" << all;
  }
}

TEST(UnknownKeys, KeysCloseToKnownOnesAreWarningsWithDidYouMean) {
  PackBuilder p;
  p.Write("pack.yaml", "ref: p\nverison: \"1\"\n");
  p.Action(
      "name: run\nentry_piont: run.sh\nentry_point: run.sh\nRunner_Type: shell\n"
      "paramters:\n  a: {type: string}\nparameters:\n  b: {tpye: string, requird: true}\n");
  std::string all = Joined(ValidatePackDir(p.dir(), &Runtimes()));
  for (const char* expected : {
           "pack.yaml:2: warning: verison: unknown key, ignored; did you mean \"version\"?",
           "run.yaml:2: warning: entry_piont: unknown key, ignored; did you mean "
           "\"entry_point\"?",
           "run.yaml:4: warning: Runner_Type: unknown key, ignored; did you mean "
           "\"runner_type\"?",
           "run.yaml:5: warning: paramters: unknown key, ignored; did you mean \"parameters\"?",
           "run.yaml:8: warning: parameters.b.tpye: unknown key, ignored; did you mean "
           "\"type\"?",
           "run.yaml:8: warning: parameters.b.requird: unknown key, ignored; did you mean "
           "\"required\"?",
       }) {
    EXPECT_TRUE(Contains(all, expected)) << "missing: " << expected << "\nin:\n" << all;
  }
  // Warnings do not make the action bad.
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->actions.size(), 1u);
  EXPECT_TRUE(pack->bad_actions.empty());
}

TEST(UnknownKeys, DidYouMeanRule) {
  using detail::DidYouMean;
  std::vector<std::string_view> known = {"ref", "version", "description", "entry_point"};
  EXPECT_EQ(DidYouMean("verion", known), "version");   // a deletion
  EXPECT_EQ(DidYouMean("vresion", known), "version");  // a transposition
  EXPECT_EQ(DidYouMean("entry_piont", known), "entry_point");
  EXPECT_EQ(DidYouMean("entrypont", known), "entry_point");  // two edits
  EXPECT_EQ(DidYouMean("entrpnt", known), "");               // four
  EXPECT_EQ(DidYouMean("refs", known), "ref");
  EXPECT_EQ(DidYouMean("key", known), "");  // two edits from "ref": too far for a short key
  EXPECT_EQ(DidYouMean("label", known), "");
  EXPECT_EQ(DidYouMean(std::string(100000, 'x'), known), "");
  // The original platform's keys are never mistaken for typos, except `entrypoint` (its
  // database's name for entry_point, which packvisor does not read).
  for (const char* original :
       {"label", "tags", "output", "output_schema", "runtime_version", "required_worker_runtimes",
        "worker_selector", "workflow_file", "meta", "pack", "notify", "param_schema",
        "default_execution_permission_set_refs", "accesses_mcp", "log_retention_days",
        "artifact_retention_days", "is_adhoc"}) {
    EXPECT_EQ(DidYouMean(original, ActionYamlKeys()), "") << original;
  }
}

TEST(UnknownKeys, LimitsStayStrict) {
  PackBuilder p;
  p.Action("name: run\nentry_point: run.sh\nlimits: {memory_mb: 64, memroy_mb: 32}\n");
  Result<Pack> pack = LoadPack(p.dir());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  ASSERT_EQ(pack->bad_actions.size(), 1u);
  EXPECT_TRUE(Contains(pack->bad_actions[0].reason,
                       "limits.memroy_mb: unknown key (known: memory_mb, pids, cpu_percent); did "
                       "you mean \"memory_mb\"?"))
      << pack->bad_actions[0].reason;
}

// --- Bad actions -----------------------------------------------------------------------------

TEST(BadActions, OneBadActionNeverHidesTheRest) {
  PackBuilder p;
  p.Action("name: run\nrunner_type: shell\nentry_point: run.sh\n");
  p.Write("actions/tool.yaml", "name: tool\nrunner_type: native\nentry_point: tool\n");
  p.Write("actions/gone.yaml", "name: gone\nrunner_type: shell\nentry_point: gone.sh\n");
  p.Write("actions/escape.yaml", "name: escape\nrunner_type: shell\nentry_point: ../pack.yaml\n");
  p.Write("actions/garbled.yaml", "name: garbled\nentry_point: [x\n");
  p.Write("actions/twice.yaml", "name: twice\nentry_point: run.sh\n");
  p.Write("actions/twice.yml", "name: twice\nentry_point: run.sh\n");
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  ASSERT_EQ(pack->actions.size(), 1u);
  EXPECT_EQ(pack->actions[0].name, "run");
  std::map<std::string, std::string> bad;
  for (const BadAction& action : pack->bad_actions) bad[action.name] = action.reason;
  ASSERT_EQ(bad.size(), 5u);
  for (const auto& [name, reason] : bad) EXPECT_EQ(reason.find('\n'), std::string::npos) << name;
  // The unsupported runner comes first, before its missing file.
  EXPECT_EQ(bad["tool"].rfind(p.dir() + "/actions/tool.yaml:2: runner_type: unknown runtime "
                                        "\"native\"",
                              0),
            0u)
      << bad["tool"];
  EXPECT_TRUE(Contains(bad["tool"], "(and 1 more problem)")) << bad["tool"];
  EXPECT_TRUE(Contains(bad["gone"], "gone.yaml:3: entry_point: \"gone.sh\" does not exist"));
  EXPECT_TRUE(Contains(bad["escape"], "contains '..'")) << bad["escape"];
  EXPECT_TRUE(Contains(bad["garbled"], "garbled.yaml:")) << bad["garbled"];
  EXPECT_TRUE(Contains(bad["twice"], "defines the same action as")) << bad["twice"];

  // ResolveAction reads only the one action: the good one runs, a bad one fails with its reason.
  Result<ResolvedAction> good = ResolveAction(p.base(), "p.run", &Runtimes());
  ASSERT_TRUE(good.ok()) << good.error().message();
  Result<ResolvedAction> native = ResolveAction(p.base(), "p.tool", &Runtimes());
  ASSERT_FALSE(native.ok());
  std::string message = native.error().message();
  EXPECT_NE(native.error().err, ENOENT);
  EXPECT_EQ(message.rfind(p.dir() + "/actions/tool.yaml:2: runner_type: unknown runtime", 0), 0u)
      << message;
  EXPECT_EQ(message.find("does not exist"), std::string::npos) << message;
}

TEST(BadActions, TheOriginalFixture) {
  PackInspection inspection = InspectPack(kFixtures + "/original_core", &Runtimes());
  ASSERT_TRUE(inspection.pack) << Joined(inspection.diagnostics);
  const Pack& pack = *inspection.pack;
  EXPECT_EQ(pack.ref, "original_core");
  EXPECT_EQ(pack.version, "1.2.0");
  EXPECT_EQ(pack.runtime_deps, (std::vector<std::string>{"shell", "python", "native"}));
  std::vector<std::string> good;
  for (const Action& action : pack.actions) good.push_back(action.name + ":" + action.runtime);
  EXPECT_EQ(good, (std::vector<std::string>{"add:python", "echo:shell", "lookup:python"}));
  ASSERT_EQ(pack.bad_actions.size(), 1u);
  EXPECT_EQ(pack.bad_actions[0].name, "native_tool");
  EXPECT_TRUE(Contains(pack.bad_actions[0].reason, "runner_type: unknown runtime \"native\""))
      << pack.bad_actions[0].reason;
  // Errors only for the native action; everything else of the original format is a note.
  EXPECT_EQ(CountErrors(inspection.diagnostics), 2u) << Joined(inspection.diagnostics);
  EXPECT_EQ(Joined(inspection.diagnostics, Severity::kWarning).find("warning:"), std::string::npos)
      << Joined(inspection.diagnostics);
}

// --- The JSON-Schema form of parameters ------------------------------------------------------

constexpr char kSchemaParameters[] =
    "parameters:\n"
    "  type: object\n"
    "  $schema: http://json-schema.org/draft-07/schema#\n"
    "  additionalProperties: false\n"
    "  properties:\n"
    "    a: {type: integer, minimum: 0}\n"
    "    b: {type: integer, default: 0}\n"
    "    op: {type: string, enum: [add, sub], default: add}\n"
    "    token: {type: string, secret: true}\n"
    "  required: [a]\n";

constexpr char kFlatParameters[] =
    "parameters:\n"
    "  a: {type: integer, minimum: 0, required: true}\n"
    "  b: {type: integer, default: 0}\n"
    "  op: {type: string, enum: [add, sub], default: add}\n"
    "  token: {type: string, secret: true}\n";

Action LoadOnlyAction(const PackBuilder& p) {
  Result<Pack> pack = LoadPack(p.dir());
  if (!pack.ok()) ADD_FAILURE() << pack.error().message();
  if (!pack.ok() || pack->actions.size() != 1) {
    ADD_FAILURE() << "expected one good action";
    return Action{};
  }
  return pack->actions[0];
}

TEST(SchemaForm, MeansTheSameAsTheFlatForm) {
  PackBuilder schema;
  schema.Action(std::string("name: run\nentry_point: run.sh\n") + kSchemaParameters);
  PackBuilder flat;
  flat.Action(std::string("name: run\nentry_point: run.sh\n") + kFlatParameters);
  Action from_schema = LoadOnlyAction(schema);
  Action from_flat = LoadOnlyAction(flat);
  ASSERT_EQ(from_schema.parameters.size(), 4u);
  for (const auto& [name, spec] : from_flat.parameters) {
    const ParameterSpec& other = from_schema.parameters.at(name);
    EXPECT_EQ(spec.type, other.type) << name;
    EXPECT_EQ(spec.required, other.required) << name;
    EXPECT_EQ(spec.default_value, other.default_value) << name;
    EXPECT_EQ(spec.enum_values, other.enum_values) << name;
    EXPECT_EQ(spec.secret, other.secret) << name;
    EXPECT_EQ(spec.minimum, other.minimum) << name;
  }
  for (const json& input :
       {json::object(), json{{"a", 1}}, json{{"a", -1}}, json{{"a", "x"}}, json{{"a", 1.5}},
        json{{"a", 1}, {"op", "mul"}}, json{{"a", 1}, {"op", "sub"}, {"b", 2}},
        json{{"a", 1}, {"c", 2}}, json{{"a", nullptr}}}) {
    Result<json> a = ValidateParameters(from_schema, input);
    Result<json> b = ValidateParameters(from_flat, input);
    ASSERT_EQ(a.ok(), b.ok()) << input.dump();
    if (a.ok()) {
      EXPECT_EQ(*a, *b) << input.dump();
    } else {
      EXPECT_EQ(a.error().message(), b.error().message()) << input.dump();
    }
  }
  EXPECT_EQ(ValidateParameters(from_schema, json::object()).error().message(),
            "missing required parameter \"a\"");
}

TEST(SchemaForm, Problems) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nparameters:\n  type: array\n  properties:\n"
      "    a: {type: integer}\n  required: [a, nosuch]\n  requird: [a]\n");
  std::string all = Joined(ValidatePackDir(p.dir()));
  EXPECT_TRUE(Contains(all, "run.yaml:4: error: parameters.type: \"array\": the JSON-Schema form"))
      << all;
  EXPECT_TRUE(Contains(all,
                       "run.yaml:7: error: parameters.required: \"nosuch\" is not one of "
                       "parameters.properties"))
      << all;
  EXPECT_TRUE(Contains(all,
                       "run.yaml:8: warning: parameters.requird: unknown key, ignored; "
                       "did you mean \"required\"?"))
      << all;
  p.Action(
      "name: run\nentry_point: run.sh\nparameters:\n  type: object\n  properties:\n"
      "    a: {type: integer, requried: true}\n    bad-name: {}\n  required: a\n");
  all = Joined(ValidatePackDir(p.dir()));
  EXPECT_TRUE(Contains(all, "run.yaml:6: warning: parameters.properties.a.requried")) << all;
  EXPECT_TRUE(Contains(all, "run.yaml:7: error: parameters.properties.bad-name: not a valid"))
      << all;
  EXPECT_TRUE(Contains(all, "run.yaml:8: error: parameters.required: expected a list")) << all;
  // Without properties the form is valid and declares nothing.
  p.Action("name: run\nentry_point: run.sh\nparameters: {type: object}\n");
  EXPECT_TRUE(LoadOnlyAction(p).parameters.empty());
}

// --- Parameters a script reads without declaring them ----------------------------------------

std::vector<std::string> Uses(const std::string& runtime, const std::string& text) {
  std::vector<std::string> out;
  for (const ParameterUse& use : ScanParameterUses(runtime, text)) {
    out.push_back(use.name + "@" + std::to_string(use.line));
  }
  return out;
}

TEST(UndeclaredParameters, PatternsPerRuntime) {
  EXPECT_EQ(Uses("python",
                 "p = params.get(\"a\")\nq = params['b']\nparams.get( 'c', 1)\n"
                 "parameters[\"d\"]\ninputs.get('e')\nmyparams.get('no')\nx.params['no']\n"
                 "params.get(name)\nparams[0]\nargs.get(\"f\")\n"),
            (std::vector<std::string>{"a@1", "b@2", "c@3", "d@4", "e@5", "f@10"}));
  EXPECT_EQ(Uses("shell", "echo $PARAM_WHO ${PARAM_TIMES:-1}\nPARAM_NO=1\necho $PARAM_\n"),
            (std::vector<std::string>{"WHO@1", "TIMES@1"}));
  EXPECT_EQ(Uses("node",
                 "const a = args.alpha;\nargs['beta']\nargs.map(x => x)\nargs.length\n"
                 "params.gamma\nfoo.args.no\nmyargs.no\n"),
            (std::vector<std::string>{"alpha@1", "beta@2", "gamma@5"}));
  EXPECT_TRUE(Uses("ruby", "params['x']").empty());
}

TEST(UndeclaredParameters, WarnsOncePerNameWithFileAndLine) {
  PackBuilder p;
  p.Write("actions/run.py",
          "import json, sys\nparams = json.loads(sys.stdin.readline())\n"
          "print(params['who'], params.get('colour'))\nprint(params.get('colour'))\n");
  p.Action(
      "name: run\nrunner_type: python\nentry_point: run.py\nparameters:\n  who: {type: string}\n");
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  std::vector<Diagnostic> warnings = FindUndeclaredParameters(pack->actions.at(0));
  ASSERT_EQ(warnings.size(), 1u) << Joined(warnings);
  EXPECT_EQ(warnings[0].severity, Severity::kWarning);
  EXPECT_EQ(warnings[0].TextWithSeverity(),
            pack->dir +
                "/actions/run.py:3: warning: reads parameter \"colour\", which run.yaml "
                "does not declare");

  // Shell names compare upper-cased.
  p.Write("actions/run.sh", "echo \"$PARAM_WHO $PARAM_COLOR\"\n");
  p.Action("name: run\nrunner_type: shell\nentry_point: run.sh\nparameters:\n  who: {}\n");
  pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  warnings = FindUndeclaredParameters(pack->actions.at(0));
  ASSERT_EQ(warnings.size(), 1u) << Joined(warnings);
  EXPECT_TRUE(Contains(warnings[0].detail, "$PARAM_COLOR")) << warnings[0].detail;
}

TEST(UndeclaredParameters, ReadIsBoundedAndNeverFollowsASymlink) {
  PackBuilder p;
  p.Write("actions/run.py",
          std::string(kMaxScriptScanBytes, '#') + "\nparams.get('beyond_the_limit')\n");
  p.Action("name: run\nrunner_type: python\nentry_point: run.py\n");
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_TRUE(FindUndeclaredParameters(pack->actions.at(0)).empty());

  // A symlink in place of the script (say, swapped after loading) is not read.
  testing::ScratchDir outside;
  std::string target = outside.Write("secret.py", "params.get('leaked')\n");
  Action action = pack->actions.at(0);
  action.entry_path = p.dir() + "/actions/link.py";
  fs::create_symlink(target, action.entry_path);
  EXPECT_TRUE(FindUndeclaredParameters(action).empty());
  action.entry_path = target;  // the control: the same text read directly warns
  EXPECT_EQ(FindUndeclaredParameters(action).size(), 1u);
}

// --- Scripts the sandbox user cannot read ----------------------------------------------------

TEST(SandboxCanRead, NeedsOtherReadOnTheFileAndOtherSearchOnTheWay) {
  PackBuilder p;
  p.Write("actions/sub/run.sh", "echo\n");
  p.Action("name: run\nrunner_type: shell\nentry_point: sub/run.sh\n");
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  ASSERT_EQ(pack->actions.size(), 1u);
  const Action& action = pack->actions[0];
  std::string file = pack->dir + "/actions/sub/run.sh";
  // Ids that are neither this file's owner nor its group.
  SandboxIdRange strangers{getuid() + 100000, getuid() + 100010};
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  ASSERT_EQ(chmod((pack->dir + "/actions/sub").c_str(), 0755), 0);
  EXPECT_FALSE(CheckSandboxCanRead(*pack, action, strangers));

  ASSERT_EQ(chmod(file.c_str(), 0600), 0);
  std::optional<Diagnostic> unreadable = CheckSandboxCanRead(*pack, action, strangers);
  ASSERT_TRUE(unreadable);
  EXPECT_EQ(unreadable->severity, Severity::kError);
  EXPECT_TRUE(Contains(unreadable->Text(), "run.yaml:3: entry_point: the sandbox user cannot read"))
      << unreadable->Text();
  EXPECT_TRUE(Contains(unreadable->Text(), file + " (mode 0600")) << unreadable->Text();
  EXPECT_TRUE(Contains(unreadable->Text(), "the read bit (r)")) << unreadable->Text();
  // Owner bits count when the owner could be the sandbox's id.
  SandboxIdRange owner{getuid(), getuid()};
  EXPECT_FALSE(CheckSandboxCanRead(*pack, action, owner));

  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  ASSERT_EQ(chmod((pack->dir + "/actions/sub").c_str(), 0750), 0);
  unreadable = CheckSandboxCanRead(*pack, action, strangers);
  ASSERT_TRUE(unreadable);
  EXPECT_TRUE(Contains(unreadable->Text(), pack->dir + "/actions/sub (mode 0750"))
      << unreadable->Text();
  EXPECT_TRUE(Contains(unreadable->Text(), "the search bit (x)")) << unreadable->Text();
  ASSERT_EQ(chmod((pack->dir + "/actions/sub").c_str(), 0755), 0);
}

}  // namespace
}  // namespace packvisor
