// The software RSA AK: its public area is a restricted RSASSA SHA-256 key whose modulus is the
// key's, so its quotes verify with the key a verifier derives from the public area alone.

#include "common/tpm/software_rsa_ak.h"

#include <gtest/gtest.h>

#include "common/tpm/attest.h"
#include "common/tpm/software_quote.h"
#include "common/tpm/tpm_marshal.h"
#include "common/tpm/tpm_public.h"

namespace vigil::tpm {
namespace {

TEST(SoftwareRsaAkTest, PublicAreaIsARestrictedRsassaSigningKey) {
  auto ak = SoftwareRsaAk::Create();
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto parsed = ParseTpm2bPublic(ak->tpm2b_public);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const TPMT_PUBLIC& a = parsed->area;
  EXPECT_EQ(a.type, TPM2_ALG_RSA);
  EXPECT_EQ(a.parameters.rsaDetail.keyBits, 2048);
  EXPECT_EQ(a.parameters.rsaDetail.scheme.scheme, TPM2_ALG_RSASSA);
  EXPECT_EQ(a.parameters.rsaDetail.scheme.details.rsassa.hashAlg, TPM2_ALG_SHA256);
  EXPECT_NE(a.objectAttributes & TPMA_OBJECT_RESTRICTED, 0u);
  EXPECT_NE(a.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT, 0u);
  auto name = ComputeName(*parsed);
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, ak->name);
}

TEST(SoftwareRsaAkTest, QuoteVerifiesWithTheKeyOfThePublicAreaOnly) {
  auto ak = SoftwareRsaAk::Create();
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto attest = MarshalQuoteAttest({.qualified_signer = ak->name}, {{0, std::string(32, '\0')}});
  ASSERT_TRUE(attest.ok()) << attest.status();
  auto sig = ak->Sign(*attest);
  ASSERT_TRUE(sig.ok()) << sig.status();
  auto decoded = UnmarshalTPMT_SIGNATURE(*sig);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->sigAlg, TPM2_ALG_RSASSA);
  auto parsed = ParseTpm2bPublic(ak->tpm2b_public);
  ASSERT_TRUE(parsed.ok());
  auto key = PublicKeyOf(parsed->area);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(VerifySignature(key->get(), *decoded, *attest).ok());
  std::string altered = *attest;
  altered.back() ^= 1;
  EXPECT_FALSE(VerifySignature(key->get(), *decoded, altered).ok());
}

}  // namespace
}  // namespace vigil::tpm
