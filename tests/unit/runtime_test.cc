#include "envs/runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/scratch_dir.h"

namespace packvisor::envs {
namespace {

namespace fs = std::filesystem;

const std::string kBuiltinDir = PACKVISOR_SOURCE_RUNTIMES_DIR;

using TempDir = testing::ScratchDir;

constexpr char kMinimal[] = R"(name = "ruby"
[interpreter]
binary = "/usr/bin/ruby"
file_extension = ".rb"
)";

Result<RuntimeDefinition> Parse(const std::string& text) {
  return ParseRuntimeDefinition(text, "test.toml");
}

std::string ErrorOf(const std::string& text) {
  Result<RuntimeDefinition> def = Parse(text);
  return def.ok() ? "(loaded)" : def.error().message();
}

TEST(RuntimeDefinition, BuiltinPythonLoads) {
  Result<RuntimeDefinition> def = LoadRuntimeDefinition(kBuiltinDir + "/python.toml");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->name, "python");
  EXPECT_EQ(def->aliases, std::vector<std::string>{"python3"});
  EXPECT_EQ(def->interpreter.binary, "/usr/bin/python3");
  EXPECT_EQ(def->interpreter.args, std::vector<std::string>{"-u"});
  EXPECT_EQ(def->interpreter.file_extension, ".py");
  EXPECT_EQ(def->inline_code.strategy, InlineStrategy::kDirect);
  ASSERT_TRUE(def->environment);
  EXPECT_EQ(
      def->environment->create_command,
      (std::vector<std::string>{"{interpreter}", "-m", "venv", "--without-pip", "{env_dir}"}));
  EXPECT_EQ(def->environment->interpreter_path, "{env_dir}/bin/python3");
  ASSERT_TRUE(def->dependencies);
  EXPECT_EQ(def->dependencies->manifest_file, "requirements.txt");
  ASSERT_EQ(def->env_vars.count("PYTHONPATH"), 1u);
  EXPECT_EQ(def->env_vars.at("PYTHONPATH").operation, EnvVarOperation::kPrepend);
  EXPECT_FALSE(def->allow_io_uring);
}

TEST(RuntimeDefinition, BuiltinShellHasNoEnvironment) {
  Result<RuntimeDefinition> def = LoadRuntimeDefinition(kBuiltinDir + "/shell.toml");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->interpreter.binary, "/bin/bash");
  EXPECT_EQ(def->inline_code.strategy, InlineStrategy::kTempFile);
  EXPECT_TRUE(def->inline_code.shell_helpers);
  EXPECT_FALSE(def->environment);
  EXPECT_FALSE(def->dependencies);
}

TEST(RuntimeDefinition, BuiltinNodeInstallsIntoTheEnvironment) {
  Result<RuntimeDefinition> def = LoadRuntimeDefinition(kBuiltinDir + "/node.toml");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->interpreter.binary, "/usr/bin/node");
  ASSERT_TRUE(def->environment);
  EXPECT_FALSE(def->environment->interpreter_path);
  ASSERT_TRUE(def->dependencies);
  EXPECT_EQ(def->dependencies->manifest_file, "package.json");
  Result<std::vector<std::string>> argv = SubstituteArgv(
      def->dependencies->install_command, SandboxTemplateValues(*def, CommandPhase::kInstall));
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  EXPECT_EQ(argv->front(), "/usr/bin/node");
  // The script: literal braces (written doubled in the TOML), relative paths resolved in the pack.
  EXPECT_NE(argv->at(2).find("{stdio: 'inherit'}"), std::string::npos) << argv->at(2);
  EXPECT_NE(argv->at(2).find("path.posix.resolve(packDir, relative)"), std::string::npos);
  EXPECT_EQ(argv->at(argv->size() - 3), "/pack/package.json");
  EXPECT_EQ(argv->at(argv->size() - 2), "/env");
  EXPECT_EQ(argv->back(), "/pack");
}

TEST(RuntimeDefinition, MinimalDefinitionGetsDefaults) {
  Result<RuntimeDefinition> def = Parse(kMinimal);
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_TRUE(def->aliases.empty());
  EXPECT_EQ(def->inline_code.strategy, InlineStrategy::kDirect);
  EXPECT_EQ(def->inline_code.extension, ".rb");
  EXPECT_FALSE(def->environment);
  EXPECT_EQ(def->source, "test.toml");
}

TEST(RuntimeDefinition, UnknownKeyNamesFileLineAndKey) {
  std::string text = "typo = 1\n" + std::string(kMinimal);
  EXPECT_EQ(ErrorOf(text).rfind("test.toml:1: typo: unknown key", 0), 0u) << ErrorOf(text);
  std::string nested = "name = \"x\"\n[interpreter]\nbinary = \"/bin/x\"\nbinray = \"/y\"\n";
  EXPECT_EQ(ErrorOf(nested).rfind("test.toml:4: interpreter.binray: unknown key", 0), 0u)
      << ErrorOf(nested);
}

TEST(RuntimeDefinition, WrongTypesAreRejected) {
  EXPECT_NE(ErrorOf("name = 3\n").find("test.toml:1: name: expected a string"), std::string::npos);
  std::string args = std::string(kMinimal) + "args = \"-u\"\n";
  EXPECT_NE(ErrorOf(args).find("interpreter.args: expected an array of strings"), std::string::npos)
      << ErrorOf(args);
  std::string uring = "allow_io_uring = \"yes\"\n" + std::string(kMinimal);
  EXPECT_NE(ErrorOf(uring).find("allow_io_uring: expected true or false"), std::string::npos);
}

TEST(RuntimeDefinition, ImpossibleValuesAreRejected) {
  EXPECT_NE(ErrorOf("name = \"Python\"\n[interpreter]\nbinary = \"/b\"\n").find("lower case"),
            std::string::npos);
  EXPECT_NE(ErrorOf("name = \"x\"\n[interpreter]\nbinary = \"python3\"\n").find("absolute"),
            std::string::npos);
  EXPECT_NE(ErrorOf("name = \"x\"\n").find("interpreter: missing"), std::string::npos);
  std::string strategy = std::string(kMinimal) + "[inline]\nstrategy = \"eval\"\n";
  EXPECT_NE(ErrorOf(strategy).find("inline.strategy"), std::string::npos);
  std::string helpers = std::string(kMinimal) + "[inline]\nshell_helpers = true\n";
  EXPECT_NE(ErrorOf(helpers).find("requires strategy = \"temp_file\""), std::string::npos);
  std::string manifest = std::string(kMinimal) +
                         "[dependencies]\nmanifest_file = \"../x\"\ninstall_command = [\"/a\"]\n";
  EXPECT_NE(ErrorOf(manifest).find("dependencies.manifest_file"), std::string::npos);
  std::string reserved = std::string(kMinimal) + "[env_vars]\nPACKVISOR_EXEC_ID = \"x\"\n";
  EXPECT_NE(ErrorOf(reserved).find("reserved"), std::string::npos);
  std::string op =
      std::string(kMinimal) + "[env_vars]\nX = { value = \"a\", operation = \"replace\" }\n";
  EXPECT_NE(ErrorOf(op).find("env_vars.X.operation"), std::string::npos) << ErrorOf(op);
}

TEST(RuntimeDefinition, SyntaxErrorNamesTheLine) {
  std::string error = ErrorOf("name = \"x\"\n[interpreter\n");
  EXPECT_EQ(error.rfind("test.toml:2:", 0), 0u) << error;
}

TEST(RuntimeDefinition, UnknownPlaceholderIsRejectedAtLoad) {
  std::string text =
      std::string(kMinimal) + "[environment]\ncreate_command = [\"/bin/mkdir\", \"{envdir}\"]\n";
  std::string error = ErrorOf(text);
  EXPECT_NE(error.find("test.toml:6: environment.create_command[1]: unknown placeholder {envdir}"),
            std::string::npos)
      << error;
  std::string env = std::string(kMinimal) + "[env_vars]\nRUBYLIB = \"{pack}/lib\"\n";
  EXPECT_NE(ErrorOf(env).find("env_vars.RUBYLIB: unknown placeholder {pack}"), std::string::npos)
      << ErrorOf(env);
}

TEST(RuntimeDefinition, PlaceholdersMustBeAvailable) {
  // {env_dir} without an environment, {manifest_path} without dependencies.
  std::string env = std::string(kMinimal) + "[env_vars]\nGEM_HOME = \"{env_dir}/gems\"\n";
  EXPECT_NE(ErrorOf(env).find("not available here"), std::string::npos) << ErrorOf(env);
  std::string manifest = std::string(kMinimal) +
                         "[environment]\ncreate_command = [\"/bin/cp\", \"{manifest_path}\"]\n";
  EXPECT_NE(ErrorOf(manifest).find("not available here"), std::string::npos);
  std::string self =
      std::string(kMinimal) + "[environment]\ninterpreter_path = \"{interpreter}\"\n";
  EXPECT_NE(ErrorOf(self).find("not available here"), std::string::npos);
}

TEST(RuntimeDefinition, TemplateValuesFollowThePhase) {
  Result<RuntimeDefinition> python = LoadRuntimeDefinition(kBuiltinDir + "/python.toml");
  ASSERT_TRUE(python.ok());
  TemplateValues create = SandboxTemplateValues(*python, CommandPhase::kCreate);
  EXPECT_EQ(create.interpreter, "/usr/bin/python3");
  EXPECT_EQ(create.pack_dir, "/pack");
  EXPECT_EQ(create.env_dir, "/env");
  EXPECT_EQ(create.manifest_path, "/pack/requirements.txt");
  EXPECT_FALSE(create.action_file);
  TemplateValues install = SandboxTemplateValues(*python, CommandPhase::kInstall);
  EXPECT_EQ(install.interpreter, "/env/bin/python3");
  Result<std::vector<std::string>> argv =
      SubstituteArgv(python->environment->create_command, create);
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv,
            (std::vector<std::string>{"/usr/bin/python3", "-m", "venv", "--without-pip", "/env"}));
  TemplateValues run = SandboxTemplateValues(*python, CommandPhase::kExecute, "/pack/actions/x.py");
  EXPECT_EQ(run.action_file, "/pack/actions/x.py");

  Result<RuntimeDefinition> shell = LoadRuntimeDefinition(kBuiltinDir + "/shell.toml");
  ASSERT_TRUE(shell.ok());
  TemplateValues shell_values = SandboxTemplateValues(*shell, CommandPhase::kExecute);
  EXPECT_EQ(shell_values.interpreter, "/bin/bash");
  EXPECT_FALSE(shell_values.env_dir);
  EXPECT_FALSE(shell_values.manifest_path);
}

TEST(RuntimeDefinition, EnvVarsSetPrependAppend) {
  std::string text = std::string(kMinimal) +
                     "[environment]\n"
                     "[env_vars]\n"
                     "A = \"{pack_dir}/a\"\n"
                     "B = { value = \"{env_dir}/b\", operation = \"prepend\" }\n"
                     "C = { value = \"c\", operation = \"append\", separator = \";\" }\n"
                     "D = { value = \"d\", operation = \"prepend\" }\n";
  Result<RuntimeDefinition> def = Parse(text);
  ASSERT_TRUE(def.ok()) << def.error().message();
  std::map<std::string, std::string> env = {{"A", "old"}, {"B", "x:y"}, {"C", "z"}};
  ASSERT_TRUE(ApplyEnvVars(*def, SandboxTemplateValues(*def, CommandPhase::kExecute), &env).ok());
  EXPECT_EQ(env["A"], "/pack/a");
  EXPECT_EQ(env["B"], "/env/b:x:y");
  EXPECT_EQ(env["C"], "z;c");
  EXPECT_EQ(env["D"], "d");  // no dangling separator when there was nothing before
}

TEST(RuntimeRegistry, LoadsBuiltinsAndFindsByNameOrAlias) {
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, std::nullopt);
  ASSERT_TRUE(registry.ok()) << registry.error().message();
  EXPECT_EQ(registry->NameList(), "node, python, shell");
  struct Case {
    const char* query;
    const char* name;
  };
  for (const Case& c : {Case{"shell", "shell"}, Case{"bash", "shell"}, Case{"SH", "shell"},
                        Case{"python", "python"}, Case{"Python3", "python"}, Case{"node", "node"},
                        Case{"nodejs", "node"}, Case{"Node.JS", "node"}}) {
    Result<const RuntimeDefinition*> def = registry->Find(c.query);
    ASSERT_TRUE(def.ok()) << c.query;
    EXPECT_EQ((*def)->name, c.name) << c.query;
  }
  Result<const RuntimeDefinition*> ruby = registry->Find("ruby");
  ASSERT_FALSE(ruby.ok());
  EXPECT_EQ(ruby.error().message(), "unknown runtime \"ruby\" (known: node, python, shell)");
}

TEST(RuntimeRegistry, FindsByExtension) {
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, std::nullopt);
  ASSERT_TRUE(registry.ok());
  EXPECT_EQ((*registry->FindByExtension(".py"))->name, "python");
  EXPECT_EQ((*registry->FindByExtension("PY"))->name, "python");
  EXPECT_EQ((*registry->FindByExtension(".js"))->name, "node");
  EXPECT_EQ((*registry->FindByExtension(".sh"))->name, "shell");
  EXPECT_FALSE(registry->FindByExtension(".rb").ok());
  EXPECT_FALSE(registry->FindByExtension("").ok());
}

TEST(RuntimeRegistry, ExtraDirectoryOverridesByName) {
  TempDir extra;
  extra.Write("my-python.toml",
              "name = \"python\"\naliases = [\"py\"]\n[interpreter]\n"
              "binary = \"/usr/local/bin/python3.12\"\nfile_extension = \".py\"\n");
  extra.Write("ruby.toml", kMinimal);
  extra.Write("notes.txt", "ignored");
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, extra.path());
  ASSERT_TRUE(registry.ok()) << registry.error().message();
  EXPECT_EQ(registry->NameList(), "node, python, ruby, shell");
  EXPECT_EQ((*registry->Find("py"))->interpreter.binary, "/usr/local/bin/python3.12");
  EXPECT_FALSE(registry->Find("python3").ok());  // the override replaced the whole definition
  EXPECT_EQ((*registry->FindByExtension(".rb"))->name, "ruby");
}

TEST(RuntimeRegistry, ConflictsAreErrors) {
  TempDir extra;
  extra.Write("a.toml",
              "name = \"py312\"\naliases = [\"python3\"]\n[interpreter]\n"
              "binary = \"/usr/bin/python3.12\"\n");
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, extra.path());
  ASSERT_FALSE(registry.ok());
  EXPECT_NE(registry.error().message().find("\"python3\" is already"), std::string::npos)
      << registry.error().message();

  TempDir twice;
  twice.Write("a.toml", kMinimal);
  twice.Write("b.toml", kMinimal);
  Result<RuntimeRegistry> dup = RuntimeRegistry::Load(twice.path(), std::nullopt);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("already defined"), std::string::npos);
}

TEST(RuntimeRegistry, AmbiguousExtensionAsksForRunnerType) {
  TempDir extra;
  extra.Write("py312.toml",
              "name = \"py312\"\n[interpreter]\nbinary = \"/usr/bin/python3.12\"\n"
              "file_extension = \".py\"\n");
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, extra.path());
  ASSERT_TRUE(registry.ok()) << registry.error().message();
  Result<const RuntimeDefinition*> def = registry->FindByExtension(".py");
  ASSERT_FALSE(def.ok());
  EXPECT_NE(def.error().message().find("py312, python"), std::string::npos);
}

TEST(RuntimeRegistry, MissingDirectoryAndBadFileAreErrors) {
  EXPECT_FALSE(RuntimeRegistry::Load("/nonexistent/runtimes", std::nullopt).ok());
  EXPECT_FALSE(RuntimeRegistry::Load(kBuiltinDir, std::string("/nonexistent/extra")).ok());
  TempDir extra;
  std::string bad = extra.Write("bad.toml", "name = \"bad\"\nbogus = true\n");
  Result<RuntimeRegistry> registry = RuntimeRegistry::Load(kBuiltinDir, extra.path());
  ASSERT_FALSE(registry.ok());
  EXPECT_EQ(registry.error().message().rfind(bad + ":2: bogus: unknown key", 0), 0u)
      << registry.error().message();
}

TEST(RuntimeDefinition, LimitsTableSetsRequests) {
  Result<RuntimeDefinition> def =
      Parse(std::string(kMinimal) + "[limits]\nmemory_mb = 1024\npids = 64\n");
  ASSERT_TRUE(def.ok()) << def.error().message();
  EXPECT_EQ(def->limits.memory_mb, 1024u);
  EXPECT_EQ(def->limits.pids, 64u);
  EXPECT_FALSE(def->limits.cpu_percent.has_value());
  Result<RuntimeDefinition> none = Parse(kMinimal);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->limits.memory_mb || none->limits.pids || none->limits.cpu_percent);
}

TEST(RuntimeDefinition, LimitsOutOfRangeOrUnknownAreRejected) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "[limits]\npids = 1\n"),
            "test.toml:6: limits.pids: expected a whole number from 2 to 4194304");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "[limits]\nmemory_mb = \"1G\"\n"),
            "test.toml:6: limits.memory_mb: expected a whole number from 1 to 1073741824");
  EXPECT_NE(
      ErrorOf(std::string(kMinimal) + "[limits]\ncpu_percent = 0\n").find("limits.cpu_percent"),
      std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "[limits]\nswap_mb = 1\n")
                .find("test.toml:6: limits.swap_mb: unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace packvisor::envs
