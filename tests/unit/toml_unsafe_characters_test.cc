// Regression tests of the config_toml and runtime_toml fuzz targets' first finding: toml++ 3.3
// reaches __builtin_unreachable() (undefined behaviour, reported by UBSan) when it asks whether
// some non-ASCII characters are whitespace, e.g. a "§" (U+00A7) outside a string. Such text is
// refused before toml++ sees it (TomlUnsafeCharacterLine); the same characters in strings and
// comments are fine.
#include <gtest/gtest.h>

#include <string>

#include "envs/document_limits.h"
#include "envs/runtime.h"
#include "supervisor/config/config_text.h"

namespace packvisor {
namespace {

TEST(TomlUnsafeCharacterLine, FindsTrappingCharactersOutsideStringsAndComments) {
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\n\xc2\xa7 b = 2\n"), 2);      // U+00A7
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1 \xd1\x90\n"), 1);             // U+0450
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\nb = 2 \xef\xbc\x81\n"), 0);  // U+FF01: not asked
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"caf\xc3\xa9\" # \xc2\xa7\n"), 0);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = '\xc2\xa7'\nb = '''\n\xc2\xa7'''\n"), 0);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"\"\"\n\xc2\xa7\"\"\"\n"), 0);
  // In a multi-line basic string toml++ asks about the character after a backslash, and about
  // the first one after a line-ending backslash's whitespace.
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"\"\"x\\\xc2\xa7\"\"\"\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"\"\"x\\\n\n   \xc2\xa7\"\"\"\n"), 3);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"\"\"x\\\n y\xc2\xa7\"\"\"\n b \xc2\xa7"), 3);
}

// The second finding: toml++ also looks at the characters of a string it refuses as unterminated.
TEST(ConfigToml, NonAsciiCharacterInAnUnterminatedStringIsRefusedNotUndefinedBehaviour) {
  EXPECT_EQ(TomlUnsafeCharacterLine("y = [[[1,2[\x1f an[=([[\"\xd1\x90\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\nb = \"\"\"\n\xc2\xa7"), 3);
  auto config = ParseConfigText("[[s1b]]\ny = [[\"\xd1\x90\n", "/etc/packvisor/packvisor.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message().rfind("invalid configuration /etc/packvisor/packvisor.toml:2: "
                                           "a non-ASCII character",
                                           0),
            0u)
      << config.error().message();
}

TEST(ConfigToml, NonAsciiCharacterOutsideAStringIsRefusedNotUndefinedBehaviour) {
  auto config = ParseConfigText("\xc2\xa7 = 1\n", "/etc/packvisor/packvisor.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            "invalid configuration /etc/packvisor/packvisor.toml:1: a non-ASCII character "
            "outside a string or comment, or after a backslash in a multi-line string (refused "
            "before parsing: the TOML library mishandles it)");
  auto fine = ParseConfigText("# \xc2\xa7\n[sandbox]\nset_env = { A = \"\xc2\xa7\" }\n",
                              "/etc/packvisor/packvisor.toml");
  ASSERT_TRUE(fine.ok()) << fine.error().message();
  EXPECT_EQ(fine->sandbox.set_env.at("A"), "\xc2\xa7");
}

TEST(RuntimeToml, NonAsciiCharacterOutsideAStringIsRefusedNotUndefinedBehaviour) {
  auto runtime = envs::ParseRuntimeDefinition(" \xc2\xa7 5). Format: x\nname = \"shell\"\n",
                                              "/etc/packvisor/runtimes/shell.toml");
  ASSERT_FALSE(runtime.ok());
  EXPECT_EQ(runtime.error().message().rfind("/etc/packvisor/runtimes/shell.toml:1: syntax: a "
                                            "non-ASCII character outside a string",
                                            0),
            0u)
      << runtime.error().message();
}

}  // namespace
}  // namespace packvisor
