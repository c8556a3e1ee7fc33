// Regression tests of the config_toml and runtime_toml fuzz targets' findings: toml++ 3.3 reaches
// __builtin_unreachable() (undefined behaviour, reported by UBSan) when it asks whether some
// non-ASCII characters are whitespace: a "§" (U+00A7) outside a string, a Cyrillic letter in an
// unterminated string, after a backslash in a multi-line string, in a closed string on the way to
// another error. packvisor's TOML files therefore hold non-ASCII characters only in comments
// (TomlUnsafeCharacterLine); a string writes them as \uXXXX escapes.
#include <gtest/gtest.h>

#include <string>

#include "envs/document_limits.h"
#include "envs/runtime.h"
#include "supervisor/config/config_text.h"

namespace packvisor {
namespace {

TEST(TomlUnsafeCharacterLine, FindsNonAsciiOutsideCommentsOnly) {
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\n\xc2\xa7 b = 2\n"), 2);  // U+00A7
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1 \xd1\x90\n"), 1);         // U+0450
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\nb = 2 \xef\xbc\x81\n"), 2);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"caf\xc3\xa9\"\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 'x'\nb = '''\n\xc2\xa7'''\n"), 3);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"\"\"x\\\n\n   \xc2\xa7\"\"\"\n"), 3);
  // Comments may hold anything; a '#' in a string starts no comment.
  EXPECT_EQ(TomlUnsafeCharacterLine("# SPEC \xc2\xa7"
                                    "5\na = \"caf\\u00e9\" # \xc2\xa7\n"),
            0);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = \"#\xc2\xa7\"\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = '''\n#'''\nb = \"\xc2\xa7\"\n"), 3);
  EXPECT_EQ(TomlUnsafeCharacterLine("\xEF\xBB\xBF"
                                    "a = 1\n"),
            0);  // a byte order mark
}

// Found by config_toml and runtime_toml in CI's first 30 s runs (with assertions on): an escape
// character in a [table] header trips toml++'s internal assertion; TOML allows no control
// character but tab anyway, so every one is refused before parsing.
TEST(ConfigToml, ControlCharacterInATableHeaderIsRefusedBeforeTheTomlLibraryAsserts) {
  EXPECT_EQ(TomlUnsafeCharacterLine("[\x1bsandbo}.a.b]]\nx = 1\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\nb = \"x\x7f\"\n"), 2);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\t# tab\r\nb = 2\n"), 0);
  auto config = ParseConfigText("[\x1bsandbo}.a.b]]\nx = 1\n", "/etc/packvisor/packvisor.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message().rfind(
                "invalid configuration /etc/packvisor/packvisor.toml:1: a control or non-ASCII", 0),
            0u)
      << config.error().message();
}

// Found by config_toml: toml++ also looks at the characters of a string it refuses as
// unterminated, and at those of a closed string on the way to another error.
TEST(ConfigToml, NonAsciiCharacterInAnUnterminatedStringIsRefusedNotUndefinedBehaviour) {
  EXPECT_EQ(TomlUnsafeCharacterLine("y = [[[1,2[\x1f an[=([[\"\xd1\x90\n"), 1);
  EXPECT_EQ(TomlUnsafeCharacterLine("a = 1\nb = \"\"\"\n\xc2\xa7"), 3);
  for (const char* text : {"[[s1b]]\ny = [[\"\xd1\x90\n", "[[s1b]]\nx = [\"\xd0\x80\x07\"]\n",
                           "[[s1b]]\nx =0\"/usr/bin\xd1\x8cua\"\n"}) {
    auto config = ParseConfigText(text, "/etc/packvisor/packvisor.toml");
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(
        config.error().message().rfind("invalid configuration /etc/packvisor/packvisor.toml:2: a "
                                       "control or non-ASCII character",
                                       0),
        0u)
        << config.error().message();
  }
}

TEST(ConfigToml, NonAsciiCharacterOutsideAStringIsRefusedNotUndefinedBehaviour) {
  auto config = ParseConfigText("\xc2\xa7 = 1\n", "/etc/packvisor/packvisor.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(),
            "invalid configuration /etc/packvisor/packvisor.toml:1: a control or non-ASCII "
            "character outside a comment (write the latter as a \\uXXXX escape in a \"basic "
            "string\"; refused before parsing: the TOML library mishandles some)");
  auto fine = ParseConfigText("# \xc2\xa7\n[sandbox]\nset_env = { A = \"\\u00a7\" }\n",
                              "/etc/packvisor/packvisor.toml");
  ASSERT_TRUE(fine.ok()) << fine.error().message();
  EXPECT_EQ(fine->sandbox.set_env.at("A"), "\xc2\xa7");
}

TEST(RuntimeToml, NonAsciiCharacterOutsideAStringIsRefusedNotUndefinedBehaviour) {
  auto runtime = envs::ParseRuntimeDefinition(" \xc2\xa7 5). Format: x\nname = \"shell\"\n",
                                              "/etc/packvisor/runtimes/shell.toml");
  ASSERT_FALSE(runtime.ok());
  EXPECT_EQ(runtime.error().message().rfind("/etc/packvisor/runtimes/shell.toml:1: syntax: a "
                                            "control or non-ASCII character outside a comment",
                                            0),
            0u)
      << runtime.error().message();
}

}  // namespace
}  // namespace packvisor
