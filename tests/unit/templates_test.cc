#include "envs/templates.h"

#include <gtest/gtest.h>

namespace packvisor::envs {
namespace {

TemplateValues AllValues() {
  TemplateValues values;
  values.pack_dir = "/pack";
  values.env_dir = "/env";
  values.interpreter = "/env/bin/python3";
  values.manifest_path = "/pack/requirements.txt";
  values.action_file = "/pack/actions/hello.py";
  return values;
}

TEST(Templates, SubstitutesEveryVariable) {
  Result<std::string> out =
      Substitute("{pack_dir}|{env_dir}|{interpreter}|{manifest_path}|{action_file}", AllValues());
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, "/pack|/env|/env/bin/python3|/pack/requirements.txt|/pack/actions/hello.py");
}

TEST(Templates, TextWithoutPlaceholdersIsUnchanged) {
  Result<std::string> out = Substitute("-m venv --copies", AllValues());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "-m venv --copies");
}

TEST(Templates, SubstitutionIsOnePass) {
  TemplateValues values = AllValues();
  values.pack_dir = "/weird/{env_dir}/{interpreter}";
  Result<std::string> out = Substitute("{pack_dir}/lib:{env_dir}", values);
  ASSERT_TRUE(out.ok());
  // The value of {pack_dir} is copied verbatim: its "{env_dir}" is not expanded again.
  EXPECT_EQ(*out, "/weird/{env_dir}/{interpreter}/lib:/env");
}

TEST(Templates, DoubledBracesAreLiteral) {
  Result<std::string> out = Substitute("${{HOME}} {{env_dir}} {env_dir}", AllValues());
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, "${HOME} {env_dir} /env");
}

TEST(Templates, UnknownPlaceholderIsRejected) {
  Result<TemplateVarSet> used = ValidateTemplate("{envdir}/bin/python3");
  ASSERT_FALSE(used.ok());
  EXPECT_NE(used.error().message().find("unknown placeholder {envdir}"), std::string::npos)
      << used.error().message();
  EXPECT_NE(used.error().message().find("{env_dir}"), std::string::npos);
  EXPECT_FALSE(Substitute("{home}", AllValues()).ok());
}

TEST(Templates, StrayBracesAreRejected) {
  EXPECT_FALSE(ValidateTemplate("{").ok());
  EXPECT_FALSE(ValidateTemplate("a}b").ok());
  EXPECT_FALSE(ValidateTemplate("{pack_dir").ok());
  EXPECT_FALSE(ValidateTemplate("${HOME}").ok());
  EXPECT_FALSE(ValidateTemplate("{}").ok());
}

TEST(Templates, ValidateReportsUsedVariables) {
  Result<TemplateVarSet> used = ValidateTemplate("{env_dir}/x {manifest_path}");
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, Bit(TemplateVar::kEnvDir) | Bit(TemplateVar::kManifestPath));
  EXPECT_EQ(*ValidateTemplate("plain"), 0u);
}

TEST(Templates, ValidateRestrictsToAllowedVariables) {
  Result<TemplateVarSet> used =
      ValidateTemplate("{interpreter}", Bit(TemplateVar::kEnvDir) | Bit(TemplateVar::kPackDir));
  ASSERT_FALSE(used.ok());
  EXPECT_NE(used.error().message().find("not available here"), std::string::npos)
      << used.error().message();
}

TEST(Templates, MissingValueIsAnError) {
  TemplateValues values;
  values.pack_dir = "/pack";
  Result<std::string> out = Substitute("{manifest_path}", values);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("{manifest_path} has no value"), std::string::npos);
}

TEST(Templates, ArgvElementsStaySeparate) {
  TemplateValues values = AllValues();
  values.env_dir = "/env dir; rm -rf /";
  Result<std::vector<std::string>> argv =
      SubstituteArgv({"{interpreter}", "-m", "venv", "{env_dir}"}, values);
  ASSERT_TRUE(argv.ok());
  ASSERT_EQ(argv->size(), 4u);
  EXPECT_EQ((*argv)[3], "/env dir; rm -rf /");
}

TEST(Templates, ArgvErrorNamesTheElement) {
  Result<std::vector<std::string>> argv = SubstituteArgv({"ok", "{nope}"}, AllValues());
  ASSERT_FALSE(argv.ok());
  EXPECT_NE(argv.error().message().find("argv[1]"), std::string::npos);
}

}  // namespace
}  // namespace packvisor::envs
