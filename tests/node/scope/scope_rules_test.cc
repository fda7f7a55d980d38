#include "node/scope/scope_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vigil::node::scope {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct KindCase {
  const char* path;
  const char* kind;  // nullptr: not an interpreter
};

class InterpreterByExecutableTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(InterpreterByExecutableTest, RecognisesByBaseName) {
  auto m = InterpreterByExecutable(GetParam().path);
  if (GetParam().kind == nullptr) {
    EXPECT_FALSE(m.has_value()) << GetParam().path << " -> " << (m ? m->kind : "");
  } else {
    ASSERT_TRUE(m.has_value()) << GetParam().path;
    EXPECT_EQ(m->kind, GetParam().kind);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, InterpreterByExecutableTest,
    ::testing::Values(KindCase{"/usr/bin/python3.11", "python"},
                      KindCase{"/usr/bin/python3", "python"}, KindCase{"/opt/py/pypy3", "python"},
                      KindCase{"/usr/bin/perl5.36.0", "perl"}, KindCase{"/usr/bin/ruby3.1", "ruby"},
                      KindCase{"/usr/bin/nodejs", "node"}, KindCase{"/usr/local/bin/node", "node"},
                      KindCase{"/usr/bin/lua5.4", "lua"}, KindCase{"/usr/bin/luajit-2.1", "lua"},
                      KindCase{"/usr/bin/dash", "sh"}, KindCase{"/bin/sh", "sh"},
                      KindCase{"/usr/bin/bash", "bash"}, KindCase{"/usr/bin/zsh", "zsh"},
                      KindCase{"/usr/lib/jvm/bin/java", "java"},
                      KindCase{"/usr/local/bin/wasmtime", "wasm"},
                      KindCase{"/usr/bin/wasmer", "wasm"}, KindCase{"/usr/bin/php8.2", "php"},
                      KindCase{"/usr/bin/tclsh8.6", "tcl"}, KindCase{"/usr/bin/gawk", "awk"},
                      KindCase{"/usr/bin/python3.11 (deleted)", "python"},
                      KindCase{"/usr/bin/pythonista", nullptr}, KindCase{"/usr/bin/shred", nullptr},
                      KindCase{"/usr/bin/curl", nullptr}, KindCase{"/usr/bin/nodeinfo", nullptr},
                      KindCase{"", nullptr}, KindCase{"/", nullptr}));

class InterpreterByLibraryTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(InterpreterByLibraryTest, RecognisesByLibraryName) {
  auto m = InterpreterByLibrary(GetParam().path);
  if (GetParam().kind == nullptr) {
    EXPECT_FALSE(m.has_value()) << GetParam().path;
  } else {
    ASSERT_TRUE(m.has_value()) << GetParam().path;
    EXPECT_EQ(m->kind, GetParam().kind);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, InterpreterByLibraryTest,
    ::testing::Values(KindCase{"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "python"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libperl.so.5.36", "perl"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1", "ruby"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libnode.so.108", "node"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/liblua5.4.so.0", "lua"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libluajit-5.1.so.2", "lua"},
                      KindCase{"/usr/lib/jvm/java-17/lib/server/libjvm.so", "java"},
                      KindCase{"/opt/wasm/libwasmtime.so", "wasm"},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libc.so.6", nullptr},
                      KindCase{"/usr/lib/x86_64-linux-gnu/libperlio.so", nullptr},
                      KindCase{"/usr/lib/python3.11/lib-dynload/_ssl.cpython-311.so", nullptr},
                      KindCase{"libpython3.11", nullptr}));

TEST(ScriptsFromArgvTest, FindsTheScriptOrInlineCode) {
  EXPECT_THAT(ScriptsFromArgv("sh", {"sh", "-c", "echo hi"}), ElementsAre("-c"));
  EXPECT_THAT(ScriptsFromArgv("python", {"python3", "-u", "/opt/a/main.py", "--x"}),
              ElementsAre("/opt/a/main.py"));
  EXPECT_THAT(ScriptsFromArgv("python", {"python3", "-m", "http.server"}),
              ElementsAre("-m http.server"));
  EXPECT_THAT(ScriptsFromArgv("python", {"python3", "-W", "ignore", "run.py"}),
              ElementsAre("run.py"));
  EXPECT_THAT(ScriptsFromArgv("perl", {"perl", "-e", "print 1"}), ElementsAre("-c"));
  EXPECT_THAT(ScriptsFromArgv("java", {"java", "-cp", "/x", "-jar", "/opt/app.jar"}),
              ElementsAre("/opt/app.jar"));
  EXPECT_THAT(ScriptsFromArgv("wasm", {"wasmtime", "run", "mod.wasm"}), ElementsAre("mod.wasm"));
  EXPECT_THAT(ScriptsFromArgv("awk", {"awk", "{print}", "f"}), ElementsAre("-c"));
  EXPECT_THAT(ScriptsFromArgv("bash", {"bash", "--", "s.sh"}), ElementsAre("s.sh"));
  EXPECT_THAT(ScriptsFromArgv("python", {"python3"}), IsEmpty());
  EXPECT_THAT(ScriptsFromArgv("python", {}), IsEmpty());
  EXPECT_THAT(ScriptsFromArgv("python", {"python3", "-m"}), ElementsAre("-m"));
  EXPECT_THAT(ScriptsFromArgv("java", {"java", "-jar"}), IsEmpty());
  std::string long_name(5000, 'a');
  auto s = ScriptsFromArgv("sh", {"sh", long_name});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].size(), 256u) << "scripts are bounded";
}

TEST(ClassifyReadTest, PolicyThenSecretPatternsThenModeThenConfig) {
  std::vector<SensitivePath> policy = {{"/srv/agent/token*", "secret"}};
  auto c = ClassifyRead("/srv/agent/token.bin", 0100644, policy);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "secret");
  EXPECT_EQ(c->reason, "policy:/srv/agent/token*");

  c = ClassifyRead("/etc/ssl/private/server.key", 0100644, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "secret");
  EXPECT_EQ(c->reason, "pattern:*.key");

  c = ClassifyRead("/home/a/app/.env", 0100644, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "secret");

  c = ClassifyRead("/home/a/.aws/credentials", 0100644, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->reason, "pattern:*credentials*");

  c = ClassifyRead("/var/lib/app/blob.bin", 0100600, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "secret");
  EXPECT_EQ(c->reason, "mode:0600");

  c = ClassifyRead("/etc/shadow", 0100640, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "secret") << "mode wins over /etc/*";
  EXPECT_EQ(c->reason, "mode:0640");

  c = ClassifyRead("/etc/nginx/nginx.conf", 0100644, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "config");
  EXPECT_EQ(c->reason, "pattern:/etc/*");

  c = ClassifyRead("/opt/app/settings.yaml", 0100644, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->classification, "config");

  EXPECT_FALSE(ClassifyRead("/var/lib/app/data.bin", 0100644, {}).has_value());
  EXPECT_FALSE(ClassifyRead("/var/lib/app/data.bin", 0, {}).has_value()) << "mode unknown";
}

TEST(SqliteTest, CompanionsAndExtensions) {
  auto c = SqliteCompanion("state.db-wal");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->first, "state.db");
  EXPECT_EQ(c->second, "-wal");
  c = SqliteCompanion("cache-journal");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->first, "cache");
  EXPECT_EQ(c->second, "-journal");
  EXPECT_TRUE(SqliteCompanion("x-shm").has_value());
  EXPECT_FALSE(SqliteCompanion("-wal").has_value()) << "no database name";
  EXPECT_FALSE(SqliteCompanion("state.db").has_value());
  EXPECT_TRUE(LooksLikeSqlite("state.db"));
  EXPECT_TRUE(LooksLikeSqlite("x.sqlite3"));
  EXPECT_FALSE(LooksLikeSqlite(".db"));
  EXPECT_FALSE(LooksLikeSqlite("notes.txt"));
}

}  // namespace
}  // namespace vigil::node::scope
