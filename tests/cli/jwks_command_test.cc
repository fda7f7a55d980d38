#include "cli/jwks_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/cli/fake_fleet.h"

namespace vigil::cli {
namespace {

class JwksCommandFleetTest : public testing::FakeFleetTest {};

TEST_F(JwksCommandFleetTest, PrintsOrWritesTheKeySet) {
  fleet_.jwks_json = R"({"keys":[{"kty":"EC","crv":"P-256","kid":"k1"}]})";
  std::string out, err;
  ASSERT_EQ(RunVigilctl("jwks" + ConnectionFlags(), &out, &err), 0) << err;
  EXPECT_EQ(out, fleet_.jwks_json + "\n");

  const std::string path = pki_->dir() + "/jwks.json";
  std::ofstream(path) << "old";
  ASSERT_EQ(RunVigilctl("jwks --out " + path + ConnectionFlags(), &out, &err), 0) << err;
  EXPECT_EQ(out, "");
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), fleet_.jwks_json);
  EXPECT_EQ(fleet_.CallCount("GetJwks"), 2);
}

}  // namespace
}  // namespace vigil::cli
