#include "common/tpm/software_quote.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "common/digest.h"
#include "common/openssl_util.h"
#include "common/tpm/attest.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"

namespace vigil::tpm {
namespace {

TEST(SoftwareQuoteTest, AttestCarriesTheFieldsAndDigestOfTheSelectedPcrs) {
  const std::string pcr0(32, '\x01');
  const std::string pcr15(32, '\x02');
  QuoteAttestFields fields{.qualified_signer = "signer-name", .extra_data = "qualifying"};
  fields.clock_info.clock = 42;
  fields.clock_info.resetCount = 3;
  fields.clock_info.restartCount = 4;
  fields.clock_info.safe = 1;
  auto marshalled = MarshalQuoteAttest(fields, {{15, pcr15}, {0, pcr0}});
  ASSERT_TRUE(marshalled.ok()) << marshalled.status();
  auto attest = UnmarshalTPMS_ATTEST(*marshalled);
  ASSERT_TRUE(attest.ok()) << attest.status();
  EXPECT_EQ(attest->magic, TPM2_GENERATED_VALUE);
  EXPECT_EQ(attest->type, TPM2_ST_ATTEST_QUOTE);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(attest->qualifiedSigner.name),
                        attest->qualifiedSigner.size),
            "signer-name");
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(attest->extraData.buffer), attest->extraData.size),
      "qualifying");
  EXPECT_EQ(attest->clockInfo.clock, 42u);
  EXPECT_EQ(attest->clockInfo.resetCount, 3u);
  EXPECT_EQ(attest->clockInfo.restartCount, 4u);
  auto indices = Sha256PcrIndices(attest->attested.quote.pcrSelect);
  ASSERT_TRUE(indices.ok()) << indices.status();
  EXPECT_EQ(*indices, (std::vector<uint32_t>{0, 15}));
  const Sha256Digest expected = Sha256(pcr0 + pcr15);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(attest->attested.quote.pcrDigest.buffer),
                        attest->attested.quote.pcrDigest.size),
            DigestBytes(expected));
}

TEST(SoftwareQuoteTest, RefusesMalformedPcrValues) {
  EXPECT_FALSE(MarshalQuoteAttest({}, {{24, std::string(32, '\0')}}).ok());
  EXPECT_FALSE(MarshalQuoteAttest({}, {{0, std::string(20, '\0')}}).ok());
}

TEST(SoftwareQuoteTest, SignatureVerifiesAsTpmtAndAsDer) {
  auto ak = SoftwareAk::Create();
  ASSERT_TRUE(ak.ok()) << ak.status();
  auto attest = MarshalQuoteAttest({.qualified_signer = ak->name}, {{0, std::string(32, '\0')}});
  ASSERT_TRUE(attest.ok()) << attest.status();
  auto sig = ak->Sign(*attest);
  ASSERT_TRUE(sig.ok()) << sig.status();
  auto decoded = UnmarshalTPMT_SIGNATURE(*sig);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(VerifySignature(ak->key.get(), *decoded, *attest).ok());
  auto der = EcdsaSignatureDer(*sig);
  ASSERT_TRUE(der.ok()) << der.status();
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, ak->key.get()), 1);
  EXPECT_EQ(
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der->data()), der->size(),
                       reinterpret_cast<const unsigned char*>(attest->data()), attest->size()),
      1);
  EXPECT_FALSE(EcdsaSignatureDer("garbage").ok());
}

}  // namespace
}  // namespace vigil::tpm
