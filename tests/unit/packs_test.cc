#include "supervisor/packs/packs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>

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
using TempDir = testing::ScratchDir;

// The all-or-nothing view: the pack's own error, else the reason of its first bad action.
Result<Pack> LoadWhole(const std::string& dir, const envs::RuntimeRegistry* runtimes = nullptr) {
  Result<Pack> pack = LoadPack(dir, runtimes);
  if (pack.ok() && !pack->bad_actions.empty()) {
    return Failure("", "", pack->bad_actions.front().reason);
  }
  return pack;
}

// --- The valid fixture -----------------------------------------------------------------------

TEST(LoadPack, LoadsTheHelloFixture) {
  Result<Pack> pack = LoadWhole(kFixtures + "/hello", &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->ref, "hello");
  EXPECT_EQ(pack->version, "1.0.0");
  EXPECT_EQ(pack->description, "Fixture pack for unit tests");
  EXPECT_EQ(pack->runtime_deps, (std::vector<std::string>{"shell", "python", "node"}));
  EXPECT_EQ(pack->dir, fs::canonical(kFixtures + "/hello").string());
  ASSERT_EQ(pack->actions.size(), 4u);
  EXPECT_EQ(pack->actions[0].name, "byext");
  EXPECT_EQ(pack->actions[1].name, "greet");
  EXPECT_EQ(pack->actions[2].name, "nodehello");
  EXPECT_EQ(pack->actions[3].name, "pyhello");

  const Action* greet = pack->FindAction("greet");
  ASSERT_NE(greet, nullptr);
  EXPECT_EQ(greet->action_ref, "hello.greet");
  EXPECT_EQ(greet->runner_type, "bash");
  EXPECT_EQ(greet->runtime, "shell");
  EXPECT_EQ(greet->entry_point, "greet.sh");
  EXPECT_EQ(greet->entry_path, pack->dir + "/actions/greet.sh");
  EXPECT_EQ(greet->sandbox_entry_path, "/pack/actions/greet.sh");
  EXPECT_EQ(greet->parameter_delivery, ParameterDelivery::kFile);
  EXPECT_EQ(greet->parameter_format, ParameterFormat::kDotenv);
  EXPECT_EQ(greet->output_format, OutputFormat::kText);
  EXPECT_EQ(greet->timeout_seconds, 30);
  EXPECT_FALSE(greet->network);
  EXPECT_TRUE(greet->enabled);
  ASSERT_EQ(greet->parameters.size(), 4u);
  const ParameterSpec& who = greet->parameters.at("who");
  EXPECT_EQ(who.type, ParamType::kString);
  EXPECT_TRUE(who.required);
  EXPECT_EQ(who.description, "whom to greet");
  const ParameterSpec& times = greet->parameters.at("times");
  EXPECT_EQ(times.default_value, json(1));
  EXPECT_EQ(times.minimum, 1.0);
  EXPECT_EQ(times.maximum, 10.0);
  EXPECT_EQ(greet->parameters.at("color").enum_values, (std::vector<json>{"red", "green", "blue"}));
  EXPECT_TRUE(greet->parameters.at("token").secret);
}

TEST(LoadPack, ConvertsDefaultsByDeclaredType) {
  Result<Pack> pack = LoadWhole(kFixtures + "/hello", &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  const Action* py = pack->FindAction("pyhello");
  ASSERT_NE(py, nullptr);
  EXPECT_EQ(py->action_ref, "hello.pyhello");  // from `ref: hello.pyhello`
  EXPECT_EQ(py->runtime, "python");            // runner_type "Python3": alias, any case
  EXPECT_EQ(py->output_format, OutputFormat::kJson);
  EXPECT_EQ(py->network, NetworkMode::kNone);
  EXPECT_EQ(py->parameters.at("ratio").default_value, json(0.5));
  EXPECT_EQ(py->parameters.at("flags").default_value, json::array({"a", "b"}));
  EXPECT_EQ(py->parameters.at("options").default_value,
            json::parse(R"({"verbose": true, "level": 2})"));
  EXPECT_EQ(py->parameters.at("dry_run").default_value, json(false));   // `no`, a boolean
  EXPECT_EQ(py->parameters.at("version").default_value, json("1.10"));  // a string, not 1.1

  const Action* node = pack->FindAction("nodehello");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->runtime, "node");  // runner_type "node.js"
  EXPECT_FALSE(node->enabled);
  EXPECT_EQ(node->sandbox_entry_path, "/pack/actions/lib/nodehello.js");
  EXPECT_EQ(node->output_format, OutputFormat::kJsonl);
}

TEST(LoadPack, UntypedDefaultsFollowTheYamlCoreSchema) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nparameters:\n"
      "  hex: {default: 0x1F}\n  oct: {default: 0o17}\n  neg: {default: -7}\n"
      "  exp: {default: 1e3}\n  frac: {default: .5}\n  quoted: {default: \"12\"}\n"
      "  big: {default: 99999999999999999999}\n  dots: {default: 1.2.3}\n"
      "  yes: {default: yes}\n  t: {default: true}\n  nothing: {default: ~}\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  const auto& params = pack->actions[0].parameters;
  EXPECT_EQ(params.at("hex").default_value, json(31));
  EXPECT_EQ(params.at("oct").default_value, json(15));
  EXPECT_EQ(params.at("neg").default_value, json(-7));
  EXPECT_EQ(params.at("exp").default_value, json(1000.0));
  EXPECT_EQ(params.at("frac").default_value, json(0.5));
  EXPECT_EQ(params.at("quoted").default_value, json("12"));
  EXPECT_EQ(params.at("big").default_value, json(1e20));
  EXPECT_EQ(params.at("dots").default_value, json("1.2.3"));
  EXPECT_EQ(params.at("yes").default_value, json("yes"));  // YAML 1.2: only true/false
  EXPECT_EQ(params.at("t").default_value, json(true));
  EXPECT_FALSE(params.at("nothing").default_value);
}

TEST(LoadPack, RunnerTypeAbsentChoosesByExtension) {
  Result<Pack> pack = LoadWhole(kFixtures + "/hello", &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  const Action* byext = pack->FindAction("byext");
  ASSERT_NE(byext, nullptr);
  EXPECT_EQ(byext->runner_type, "");
  EXPECT_EQ(byext->runtime, "python");  // byext.PY: case-insensitive extension
}

TEST(LoadPack, RunnerTypeIsAuthoritativeOverTheExtension) {
  PackBuilder p;
  p.Write("actions/run.py", "print(1)\n");
  p.Action("name: run\nrunner_type: shell\nentry_point: run.py\n");
  Result<Pack> pack = LoadWhole(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->actions[0].runtime, "shell");
}

TEST(LoadPack, WithoutRegistryRuntimeIsLeftEmpty) {
  Result<Pack> pack = LoadWhole(kFixtures + "/broken_runner");
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->actions[0].runner_type, "ruby");
  EXPECT_EQ(pack->actions[0].runtime, "");
}

// --- Broken fixtures -------------------------------------------------------------------------

TEST(LoadPack, UnknownRunnerTypeNamesTheFile) {
  // The pack loads; its one action is bad, with the reason.
  Result<Pack> pack = LoadPack(kFixtures + "/broken_runner", &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_TRUE(pack->actions.empty());
  ASSERT_EQ(pack->bad_actions.size(), 1u);
  std::string file = fs::canonical(kFixtures + "/broken_runner").string() + "/actions/rb.yaml";
  EXPECT_EQ(pack->bad_actions[0].name, "rb");
  EXPECT_EQ(pack->bad_actions[0].source, file);
  EXPECT_EQ(pack->bad_actions[0].reason,
            file + ":3: runner_type: unknown runtime \"ruby\" (known: node, python, shell)");
}

TEST(LoadPack, RefMustMatchTheDirectoryName) {
  Result<Pack> pack = LoadWhole(kFixtures + "/broken_ref");
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(),
                       "pack.yaml:1: ref: \"Foo\" does not match ^[a-z0-9][a-z0-9_-]{0,63}$"))
      << pack.error().message();

  PackBuilder p;
  p.Write("pack.yaml", "ref: other\n");
  p.Action("name: run\nentry_point: run.sh\n");
  Result<Pack> other = LoadWhole(p.dir());
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(Contains(other.error().message(),
                       "pack.yaml:1: ref: \"other\" does not match the directory name \"p\""))
      << other.error().message();
}

TEST(LoadPack, MalformedYamlNamesFileAndLine) {
  Result<Pack> pack = LoadWhole(kFixtures + "/broken_yaml");
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "/actions/bad.yaml:"));
  EXPECT_TRUE(Contains(pack.error().message(), "YAML:")) << pack.error().message();
}

TEST(LoadPack, EscapingEntryPointsAreRejected) {
  std::vector<Diagnostic> problems = ValidatePackDir(kFixtures + "/broken_escape");
  std::string all = Joined(problems);
  ASSERT_EQ(problems.size(), 3u) << all;
  EXPECT_TRUE(Contains(all, "abs.yaml:3: error: entry_point: \"/etc/passwd\" is absolute")) << all;
  EXPECT_TRUE(Contains(all, "gone.yaml:3: error: entry_point: \"gone.sh\" does not exist")) << all;
  EXPECT_TRUE(Contains(all, "up.yaml:3: error: entry_point: \"../pack.yaml\" contains '..'"))
      << all;
}

TEST(LoadPack, EntryPointSymlinkOutOfThePackIsRejected) {
  PackBuilder p;
  fs::create_symlink("/etc/passwd", p.dir() + "/actions/passwd.sh");
  p.Action("name: run\nrunner_type: shell\nentry_point: passwd.sh\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(),
                       "run.yaml:3: entry_point: \"passwd.sh\" resolves to /etc/passwd, outside "
                       "the pack's actions/ directory"))
      << pack.error().message();
}

TEST(LoadPack, EntryPointSymlinkedDirectoryOutOfThePackIsRejected) {
  PackBuilder p;
  fs::create_symlink("/etc", p.dir() + "/actions/etc");
  p.Action("name: run\nentry_point: etc/passwd\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "outside the pack's actions/ directory"));
}

TEST(LoadPack, EntryPointOutsideActionsButInsideThePackIsRejected) {
  PackBuilder p;
  p.Write("lib/tool.sh", "echo\n");
  fs::create_symlink("../lib/tool.sh", p.dir() + "/actions/tool.sh");
  p.Action("name: run\nentry_point: tool.sh\n");
  EXPECT_FALSE(LoadWhole(p.dir()).ok());
}

TEST(LoadPack, EntryPointSymlinkWithinActionsIsAccepted) {
  PackBuilder p;
  fs::create_symlink("run.sh", p.dir() + "/actions/alias.sh");
  p.Action("name: run\nentry_point: alias.sh\n");
  Result<Pack> pack = LoadWhole(p.dir(), &Runtimes());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->actions[0].sandbox_entry_path, "/pack/actions/run.sh");
  EXPECT_EQ(pack->actions[0].runtime, "shell");
}

TEST(LoadPack, EntryPointMustBeAFile) {
  PackBuilder p;
  fs::create_directories(p.dir() + "/actions/dir");
  p.Action("name: run\nentry_point: dir\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "is not a regular file"));
}

TEST(LoadPack, ActionsDirectorySymlinkedOutOfThePackIsRejected) {
  TempDir outside;
  outside.Write("run.sh", "echo\n");
  outside.Write("run.yaml", "name: run\nentry_point: run.sh\n");
  TempDir base;
  base.Write("p/pack.yaml", "ref: p\n");
  fs::create_symlink(outside.path(), base.path() + "/p/actions");
  Result<Pack> pack = LoadWhole(base.path() + "/p");
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "outside the pack")) << pack.error().message();
}

TEST(LoadPack, YamlFilesMustNotBeSymlinks) {
  PackBuilder p;
  std::string real = p.Write("real.yaml", "name: run\nentry_point: run.sh\n");
  fs::create_symlink(real, p.dir() + "/actions/run.yaml");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "is a symbolic link")) << pack.error().message();
}

TEST(LoadPack, BillionLaughsIsRefusedQuickly) {
  auto start = std::chrono::steady_clock::now();
  Result<Pack> pack = LoadWhole(kFixtures + "/broken_bomb");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "lol.yaml:"));
  EXPECT_TRUE(Contains(pack.error().message(), "nodes once aliases are expanded (refused)"))
      << pack.error().message();
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(LoadPack, BombInAParameterDefaultIsRefused) {
  PackBuilder p;
  std::string text = "name: run\nentry_point: run.sh\nparameters:\n  x:\n    type: array\n";
  text += "    default: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
  text += "  y:\n    type: array\n    default: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n";
  text += "  z:\n    type: array\n    default: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
  text += "  w:\n    type: array\n    default: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
  p.Action(text);
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "aliases are expanded")) << pack.error().message();
}

TEST(LoadPack, SmallAliasesAreFine) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nparameters:\n"
      "  a: &spec\n    type: string\n    default: hi\n  b: *spec\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  EXPECT_EQ(pack->actions[0].parameters.at("b").default_value, json("hi"));
}

TEST(LoadPack, OversizedAndDeepYamlIsRefused) {
  PackBuilder p;
  p.Action("name: run\nentry_point: run.sh\ndescription: \"" + std::string(kMaxYamlBytes, 'x') +
           "\"\n");
  Result<Pack> big = LoadWhole(p.dir());
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(Contains(big.error().message(), "larger than 1048576 bytes"));

  p.Action("name: run\nentry_point: run.sh\nmeta: " + std::string(200, '[') +
           std::string(200, ']') + "\n");
  Result<Pack> deep = LoadWhole(p.dir());
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(Contains(deep.error().message(), "nested deeper than 64 levels"))
      << deep.error().message();
}

TEST(LoadPack, MultipleDocumentsAreRefused) {
  PackBuilder p;
  p.Action("name: run\nentry_point: run.sh\n---\nname: other\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "more than one YAML document"));
}

TEST(LoadPack, OriginalPlatformKeysAreIgnoredTyposWarned) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nlabel: Run\ntags: [a]\noutput: {type: object}\n"
      "worker_selector: {a: b}\nworker_tolerations: []\nruntime_version: \">=3.12\"\n"
      "required_worker_runtimes: [python]\n");
  EXPECT_TRUE(LoadWhole(p.dir()).ok());
  p.Action("name: run\nentrypoint: run.sh\n");
  std::string all = Joined(ValidatePackDir(p.dir()));
  EXPECT_TRUE(Contains(all,
                       "run.yaml:2: warning: entrypoint: unknown key, ignored; did you mean "
                       "\"entry_point\"?"))
      << all;
  EXPECT_TRUE(Contains(all, "error: entry_point: missing")) << all;
}

TEST(LoadPack, ActionNameMustMatchTheFileAndRef) {
  PackBuilder p;
  p.Action("name: walk\nentry_point: run.sh\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(),
                       "run.yaml:1: name: \"walk\" does not match the file name \"run.yaml\""))
      << pack.error().message();
  p.Action("ref: q.run\nentry_point: run.sh\n");
  EXPECT_TRUE(Contains(Joined(ValidatePackDir(p.dir())), "is not of the form p.<name>"));
  p.Action("ref: p.run\nname: run\nentry_point: run.sh\n");
  EXPECT_TRUE(LoadWhole(p.dir()).ok());
}

TEST(LoadPack, BadFieldValuesAreReported) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nparameter_delivery: env\nparameter_format: xml\n"
      "output_format: csv\ntimeout_seconds: -5\nnetwork: bridge\nenabled: maybe\n"
      "parameters:\n"
      "  bad-name: {type: string}\n"
      "  t: {type: float}\n"
      "  n: {type: integer, default: abc}\n"
      "  e: {type: integer, enum: [1, two]}\n"
      "  m: {type: string, minimum: 3}\n"
      "  r: {type: integer, minimum: 5, maximum: 1}\n"
      "  d: {type: integer, default: 20, maximum: 10}\n"
      "  k: {type: string, requried: true}\n");
  std::string all = Joined(ValidatePackDir(p.dir()));
  for (const char* expected :
       {"run.yaml:3: error: parameter_delivery: \"env\" is not one of: stdin, file",
        "run.yaml:4: error: parameter_format: \"xml\" is not one of: json, dotenv, yaml",
        "run.yaml:5: error: output_format: \"csv\" is not one of: text, json, yaml, jsonl",
        "run.yaml:6: error: timeout_seconds: expected a whole number",
        "run.yaml:7: error: network: \"bridge\" is not one of: none, host",
        "run.yaml:8: error: enabled: expected true or false",
        "run.yaml:10: error: parameters.bad-name: not a valid parameter name",
        "run.yaml:11: error: parameters.t.type: \"float\" is not one of",
        "run.yaml:12: error: parameters.n.default: expected integer, got string",
        "run.yaml:13: error: parameters.e.enum: expected integer, got string",
        "run.yaml:14: error: parameters.m: minimum/maximum apply only",
        "run.yaml:15: error: parameters.r.minimum: greater than maximum",
        "run.yaml:16: error: parameters.d.default: must be <= 10",
        "run.yaml:17: warning: parameters.k.requried: unknown key, ignored; did you mean "
        "\"required\"?"}) {
    EXPECT_TRUE(Contains(all, expected)) << "missing: " << expected << "\nin:\n" << all;
  }
}

TEST(LoadPack, OddShapesAreProblemsNotCrashes) {
  PackBuilder p;
  for (const char* text : {
           "name: [run]\nentry_point: run.sh\n",
           "name: run\nentry_point: {a: b}\n",
           "name: run\nentry_point: run.sh\nparameters: [a, b]\n",
           "name: run\nentry_point: run.sh\nparameters: {a: [1]}\n",
           "name: run\nentry_point: run.sh\nparameters: {a: {type: [x]}}\n",
           "name: run\nentry_point: run.sh\nparameters: {a: {enum: x}}\n",
           "name: run\nentry_point: run.sh\nparameters: {a: {default: {? [k] : v}}}\n",
           "name: run\nentry_point: run.sh\n? [complex]\n: key\n",
           "name: run\nname: run\nentry_point: run.sh\n",
           "name: run\nentry_point: run.sh\ntimeout_seconds: \"30\"\n",
           "name: run\nentry_point: \"run.sh\\0x\"\n",
           "- just\n- a list\n",
           "",
           "name: run\nentry_point: run.sh\nparameters: {a: *undefined}\n",
       }) {
    p.Action(text);
    Result<Pack> pack = LoadWhole(p.dir(), &Runtimes());
    EXPECT_FALSE(pack.ok()) << text;
    if (!pack.ok()) {
      EXPECT_EQ(pack.error().message().find('\n'), std::string::npos) << pack.error().message();
      EXPECT_TRUE(Contains(pack.error().message(), "run.yaml")) << pack.error().message();
    }
  }
}

TEST(ValidatePackDir, ValidPackHasNoProblems) {
  // pyhello.yaml's `label:` is ignored with a note, nothing else.
  std::vector<Diagnostic> diagnostics = ValidatePackDir(kFixtures + "/hello", &Runtimes());
  EXPECT_EQ(Joined(diagnostics, Severity::kWarning), "");
  EXPECT_TRUE(Contains(Joined(diagnostics), "pyhello.yaml:2: note: label: ignored"))
      << Joined(diagnostics);
}

TEST(ValidatePackDir, ReportsEveryProblemOnePerLine) {
  PackBuilder p;
  p.Write("pack.yaml", "ref: P\nbogus: 1\n");
  p.Action("name: run\nrunner_type: cobol\nentry_point: run.sh\n");
  p.Write("actions/two.yaml", "name: two\nentry_point: ../two.sh\n");
  std::vector<Diagnostic> problems = ValidatePackDir(p.dir(), &Runtimes());
  std::string all = Joined(problems);
  ASSERT_EQ(problems.size(), 4u) << all;
  EXPECT_EQ(CountErrors(problems), 3u) << all;
  for (const Diagnostic& d : problems) EXPECT_EQ(d.Text().find('\n'), std::string::npos);
  EXPECT_TRUE(Contains(all, "pack.yaml:1: error: ref: \"P\""));
  EXPECT_TRUE(Contains(all, "pack.yaml:2: note: bogus: ignored"));
  EXPECT_TRUE(Contains(all, "run.yaml:2: error: runner_type: unknown runtime \"cobol\""));
  EXPECT_TRUE(Contains(all, "two.yaml:2: error: entry_point: \"../two.sh\" contains '..'"));

  // A broken pack.yaml breaks the pack: the first error, and how many more.
  Result<Pack> pack = LoadPack(p.dir(), &Runtimes());
  ASSERT_FALSE(pack.ok());
  EXPECT_TRUE(Contains(pack.error().message(), "pack.yaml:1: ref: \"P\""))
      << pack.error().message();
  EXPECT_TRUE(Contains(pack.error().message(), "(and 2 more problems)")) << pack.error().message();
}

TEST(ValidatePackDir, NonStringKeysAreReportedOncePerLine) {
  PackBuilder p;
  p.Action(
      "name: run\nentry_point: run.sh\nparameters:\n  a: {type: string, ,,,,,,,,}\n"
      "  b:\n    ? [x]\n    : 1\n    ? [y]\n    : 2\n");
  std::vector<Diagnostic> problems = ValidatePackDir(p.dir(), &Runtimes());
  std::string all = Joined(problems);
  size_t reports = 0;
  for (const Diagnostic& d : problems) {
    if (Contains(d.Text(), "mapping keys must be strings")) ++reports;
  }
  EXPECT_EQ(reports, 3u) << all;
  EXPECT_TRUE(Contains(all, "run.yaml:4: error: parameters.a: mapping keys must be strings"))
      << all;
  EXPECT_TRUE(Contains(all, "run.yaml:6: error: parameters.b: mapping keys must be strings"))
      << all;
  EXPECT_TRUE(Contains(all, "run.yaml:8: error: parameters.b: mapping keys must be strings"))
      << all;
}

TEST(ValidatePackDir, MissingPiecesAreReported) {
  TempDir base;
  EXPECT_TRUE(
      Contains(Joined(ValidatePackDir(base.path() + "/nope")), "nope: error: pack not found"));
  EXPECT_TRUE(InspectPack(base.path() + "/nope").not_found);
  Result<Pack> missing = LoadPack(base.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().err, ENOENT);
  base.Write("empty/.keep", "");
  std::string all = Joined(ValidatePackDir(base.path() + "/empty"));
  EXPECT_TRUE(Contains(all, "empty/pack.yaml: error: missing")) << all;
  EXPECT_TRUE(Contains(all, "actions: error: missing")) << all;
  EXPECT_FALSE(InspectPack(base.path() + "/empty").not_found);
}

TEST(ValidatePackDir, ExtensionFallbackWithoutAMatchNamesTheFile) {
  PackBuilder p;
  p.Write("actions/run.rb", "puts 1\n");
  p.Action("name: run\nentry_point: run.rb\n");
  std::string all = Joined(ValidatePackDir(p.dir(), &Runtimes()));
  EXPECT_TRUE(Contains(all,
                       "run.yaml:2: error: runner_type: absent, and no runtime handles files "
                       "ending in \".rb\""))
      << all;
}

// --- Listing and resolving -------------------------------------------------------------------

TEST(ListPacks, ListsPacksWithBadActionsAndReportsBrokenOnes) {
  Result<PackListing> listing = ListPacks(kFixtures, &Runtimes());
  ASSERT_TRUE(listing.ok()) << listing.error().message();
  std::map<std::string, const Pack*> packs;
  for (const Pack& pack : listing->packs) packs[pack.ref] = &pack;
  // A bad action leaves its pack listed, with the action marked bad.
  for (const char* ref : {"hello", "broken_bomb", "broken_escape", "broken_runner", "broken_yaml",
                          "original_core", "original_outputs"}) {
    ASSERT_TRUE(packs.count(ref)) << ref;
  }
  EXPECT_TRUE(packs["hello"]->bad_actions.empty());
  EXPECT_EQ(packs["broken_escape"]->bad_actions.size(), 3u);
  EXPECT_EQ(packs["broken_runner"]->bad_actions.size(), 1u);
  EXPECT_TRUE(Contains(packs["broken_bomb"]->bad_actions.at(0).reason, "aliases are expanded"))
      << packs["broken_bomb"]->bad_actions.at(0).reason;
  // A broken pack.yaml hides the pack (there is nothing to list).
  EXPECT_FALSE(packs.count("broken_ref"));
  ASSERT_EQ(listing->broken.size(), 1u);
  EXPECT_TRUE(Contains(listing->broken[0].reason, "broken_ref/pack.yaml:1: ref:"))
      << listing->broken[0].reason;
  EXPECT_FALSE(ListPacks("/nonexistent/packs").ok());
}

TEST(ParseActionRef, SplitsAtTheFirstDot) {
  Result<ActionRef> ref = ParseActionRef("hello.greet");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->pack, "hello");
  EXPECT_EQ(ref->action, "greet");
  EXPECT_FALSE(ParseActionRef("hello").ok());
  EXPECT_FALSE(ParseActionRef("../etc.passwd").ok());
  EXPECT_FALSE(ParseActionRef("hello.a.b").ok());  // the action part "a.b" is not a name
  EXPECT_FALSE(ParseActionRef("hello./x").ok());
  EXPECT_FALSE(ParseActionRef("Hello.x").ok());
}

TEST(ResolveAction, LoadsOneAction) {
  Result<ResolvedAction> resolved = ResolveAction(kFixtures, "hello.greet", &Runtimes());
  ASSERT_TRUE(resolved.ok()) << resolved.error().message();
  EXPECT_EQ(resolved->pack.ref, "hello");
  EXPECT_TRUE(resolved->pack.actions.empty());
  EXPECT_EQ(resolved->action.action_ref, "hello.greet");
  EXPECT_EQ(resolved->action.runtime, "shell");
  Result<ResolvedAction> yml = ResolveAction(kFixtures, "hello.byext", &Runtimes());
  ASSERT_TRUE(yml.ok()) << yml.error().message();
  EXPECT_EQ(yml->action.runtime, "python");
}

TEST(ResolveAction, NotFoundIsEnoent) {
  Result<ResolvedAction> pack = ResolveAction(kFixtures, "nope.greet");
  ASSERT_FALSE(pack.ok());
  EXPECT_EQ(pack.error().err, ENOENT);
  EXPECT_TRUE(Contains(pack.error().message(), "pack \"nope\" not found"));
  Result<ResolvedAction> action = ResolveAction(kFixtures, "hello.nope");
  ASSERT_FALSE(action.ok());
  EXPECT_EQ(action.error().err, ENOENT);
  EXPECT_TRUE(Contains(action.error().message(), "no such action in pack \"hello\""));
  Result<ResolvedAction> broken = ResolveAction(kFixtures, "broken_runner.rb", &Runtimes());
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().err, ENOENT);
  EXPECT_TRUE(Contains(broken.error().message(), "rb.yaml:3: runner_type: unknown runtime"));
}

TEST(ChooseRuntime, ByRunnerTypeOrExtension) {
  Action action;
  action.source = "x.yaml";
  action.entry_point = "x.js";
  action.entry_point_line = 2;
  Result<const envs::RuntimeDefinition*> by_ext = ChooseRuntime(action, Runtimes());
  ASSERT_TRUE(by_ext.ok());
  EXPECT_EQ((*by_ext)->name, "node");
  action.runner_type = "SH";
  action.runner_type_line = 3;
  EXPECT_EQ((*ChooseRuntime(action, Runtimes()))->name, "shell");
  action.runner_type = "native";
  Result<const envs::RuntimeDefinition*> native = ChooseRuntime(action, Runtimes());
  ASSERT_FALSE(native.ok());
  EXPECT_EQ(native.error().message(),
            "x.yaml:3: runner_type: unknown runtime \"native\" (known: node, python, shell); the "
            "original platform's native runner (a binary run directly) is not supported: "
            "packvisor runs scripts through a runtime's interpreter");
}

TEST(EffectiveNetwork, OnlyTheOperatorGrantsTheHostNetwork) {
  Action action;
  action.source = "x.yaml";
  EXPECT_EQ(*EffectiveNetwork(action, "p", {}), NetworkMode::kNone);
  EXPECT_EQ(*EffectiveNetwork(action, "p", {"core", "p"}), NetworkMode::kHost);
  action.network = NetworkMode::kNone;
  EXPECT_EQ(*EffectiveNetwork(action, "p", {"p"}), NetworkMode::kNone);
  action.network = NetworkMode::kHost;
  action.network_line = 7;
  EXPECT_EQ(*EffectiveNetwork(action, "p", {"p"}), NetworkMode::kHost);
  Result<NetworkMode> refused = EffectiveNetwork(action, "p", {"core"});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.error().message(), "x.yaml:7: network: \"host\" is not granted"));
  EXPECT_TRUE(Contains(refused.error().message(), "sandbox.host_network_packs"));
}

// --- Parameters ------------------------------------------------------------------------------

class ParametersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<ResolvedAction> resolved = ResolveAction(kFixtures, "hello.greet");
    ASSERT_TRUE(resolved.ok()) << resolved.error().message();
    action_ = resolved->action;
  }
  std::string ErrorOf(const json& params) {
    Result<json> out = ValidateParameters(action_, params);
    return out.ok() ? "(valid)" : out.error().message();
  }
  Action action_;
};

TEST_F(ParametersTest, FillsDefaults) {
  Result<json> out = ValidateParameters(action_, {{"who", "world"}});
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, json::parse(R"({"who": "world", "times": 1, "color": "red"})"));
}

TEST_F(ParametersTest, GivenValuesWin) {
  Result<json> out = ValidateParameters(
      action_, {{"who", "x"}, {"times", 3}, {"color", "blue"}, {"token", "s3cr3t"}});
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ((*out)["times"], 3);
  EXPECT_EQ((*out)["color"], "blue");
  EXPECT_EQ((*out)["token"], "s3cr3t");
}

TEST_F(ParametersTest, MissingRequired) {
  EXPECT_EQ(ErrorOf(json::object()), "missing required parameter \"who\"");
  EXPECT_EQ(ErrorOf({{"who", nullptr}}), "missing required parameter \"who\"");
}

TEST_F(ParametersTest, MissingRequiredSecretSaysWhereSecretsComeFrom) {
  action_.parameters["token"].required = true;
  EXPECT_EQ(ErrorOf({{"who", "x"}}),
            "missing required secret \"token\": give it with --secrets-file or --secrets-stdin");
}

TEST_F(ParametersTest, NullIsNoValue) {
  // The default fills it; without a default it stays null (delivered as null, dotenv name='').
  Result<json> out =
      ValidateParameters(action_, {{"who", "x"}, {"times", nullptr}, {"token", nullptr}});
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, json::parse(R"({"who": "x", "times": 1, "color": "red", "token": null})"));
}

TEST_F(ParametersTest, WrongType) {
  EXPECT_EQ(ErrorOf({{"who", 5}}), "parameter \"who\": expected string, got integer");
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"times", "3"}}),
            "parameter \"times\": expected integer, got string");
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"times", 2.5}}),
            "parameter \"times\": expected integer, got number");
  Result<json> whole = ValidateParameters(action_, {{"who", "x"}, {"times", 2.0}});
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE((*whole)["times"].is_number_integer());
}

TEST_F(ParametersTest, EnumMinimumMaximum) {
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"color", "pink"}}),
            "parameter \"color\": not one of the allowed values (\"red\", "
            "\"green\", \"blue\")");
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"times", 0}}), "parameter \"times\": must be >= 1");
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"times", 11}}), "parameter \"times\": must be <= 10");
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"times", 10}}), "(valid)");
}

TEST_F(ParametersTest, UnknownParameterIsRejected) {
  EXPECT_EQ(ErrorOf({{"who", "x"}, {"whom", "y"}}),
            "unknown parameter \"whom\" (accepted: color, times, token, who)");
}

TEST_F(ParametersTest, NotAnObject) {
  EXPECT_EQ(ErrorOf(json::array()), "parameters must be a JSON object, got array");
}

TEST_F(ParametersTest, ErrorsNeverContainTheValue) {
  action_.parameters["token"].enum_values = {"a", "b"};
  std::string error = ErrorOf({{"who", "x"}, {"token", "hunter2"}});
  EXPECT_TRUE(Contains(error, "parameter \"token\"")) << error;
  EXPECT_FALSE(Contains(error, "hunter2")) << error;
  EXPECT_FALSE(Contains(ErrorOf({{"who", "x"}, {"token", 12345}}), "12345"));
}

TEST(Parameters, UntypedAcceptsAnything) {
  Action action;
  action.action_ref = "p.a";
  action.parameters["any"] = ParameterSpec{};
  for (const json& value : {json(1), json("s"), json::array(), json::object(), json(true)}) {
    Result<json> out = ValidateParameters(action, {{"any", value}});
    ASSERT_TRUE(out.ok()) << value.dump();
    EXPECT_EQ((*out)["any"], value);
  }
  Result<json> none = ValidateParameters(action, json::object());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, json::object());
}

TEST(Parameters, NumberBoolObjectArray) {
  Action action;
  action.action_ref = "p.a";
  ParameterSpec number;
  number.type = ParamType::kNumber;
  number.minimum = 0.5;
  action.parameters["n"] = number;
  ParameterSpec boolean;
  boolean.type = ParamType::kBoolean;
  action.parameters["b"] = boolean;
  ParameterSpec object;
  object.type = ParamType::kObject;
  action.parameters["o"] = object;
  ParameterSpec array;
  array.type = ParamType::kArray;
  action.parameters["a"] = array;
  EXPECT_TRUE(ValidateParameters(
                  action, {{"n", 1}, {"b", true}, {"o", json::object()}, {"a", json::array({1})}})
                  .ok());
  EXPECT_FALSE(ValidateParameters(action, {{"n", 0.25}}).ok());
  EXPECT_FALSE(ValidateParameters(action, {{"b", "true"}}).ok());
  EXPECT_FALSE(ValidateParameters(action, {{"o", json::array()}}).ok());
  EXPECT_FALSE(ValidateParameters(action, {{"a", json::object()}}).ok());
}

TEST(LoadPack, ActionLimitsAreRead) {
  PackBuilder p;
  p.Action("name: run\nentry_point: run.sh\nlimits:\n  memory_mb: 64\n  cpu_percent: 50\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_TRUE(pack.ok()) << pack.error().message();
  const Action& action = pack->actions.at(0);
  EXPECT_EQ(action.limits.memory_mb, 64u);
  EXPECT_EQ(action.limits.cpu_percent, 50u);
  EXPECT_FALSE(action.limits.pids.has_value());
}

TEST(LoadPack, BadActionLimitsNameTheFileLineAndKey) {
  PackBuilder p;
  p.Action("name: run\nentry_point: run.sh\nlimits:\n  memory_mb: lots\n  pids: 1\n  swap: 3\n");
  Result<Pack> pack = LoadWhole(p.dir());
  ASSERT_FALSE(pack.ok());
  std::string message = pack.error().message();
  EXPECT_TRUE(Contains(message, "run.yaml:4: limits.memory_mb: expected a whole number from 1"))
      << message;
  PackBuilder q;
  q.Action("name: run\nentry_point: run.sh\nlimits: 64\n");
  Result<Pack> scalar = LoadWhole(q.dir());
  ASSERT_FALSE(scalar.ok());
  EXPECT_TRUE(Contains(scalar.error().message(), "run.yaml:3: limits: expected a mapping"))
      << scalar.error().message();
}

}  // namespace
}  // namespace packvisor
