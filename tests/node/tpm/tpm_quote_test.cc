// Quotes from the node's AK on a software TPM, checked independently: OpenSSL over the AK
// public key, and tpm2_checkquote from tpm2-tools on the exported pieces.
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/tpm2_tools_format.h"
#include "common/digest.h"
#include "common/openssl_util.h"
#include "common/tpm/tpm_marshal.h"
#include "gtest/gtest.h"
#include "node/agent/tpm_sealer.h"
#include "node/tpm/node_tpm.h"
#include "tests/testing/swtpm_fixture.h"

namespace vigil::node {
namespace {

using testing::SwtpmFixture;

// The AK's public key as OpenSSL sees it, built from the TPMT_PUBLIC alone.
EvpPkeyPtr PublicKey(const TPMT_PUBLIC& p) {
  OpenSslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> bld(OSSL_PARAM_BLD_new());
  BignumPtr n, e;
  std::string point;
  const char* type = nullptr;
  if (p.type == TPM2_ALG_RSA) {
    type = "RSA";
    n.reset(BN_bin2bn(p.unique.rsa.buffer, p.unique.rsa.size, nullptr));
    e.reset(BN_new());
    BN_set_word(e.get(), p.parameters.rsaDetail.exponent ? p.parameters.rsaDetail.exponent : 65537);
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
  } else {
    type = "EC";
    point = "\x04";
    point.append(reinterpret_cast<const char*>(p.unique.ecc.x.buffer), p.unique.ecc.x.size);
    point.append(reinterpret_cast<const char*>(p.unique.ecc.y.buffer), p.unique.ecc.y.size);
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                     point.size());
  }
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld.get());
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  EVP_PKEY_fromdata_init(ctx.get());
  EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params);
  OSSL_PARAM_free(params);
  return EvpPkeyPtr(key);
}

// Verifies a TPMT_SIGNATURE (ECDSA or RSASSA, SHA-256) over `message` with OpenSSL.
bool VerifyTpmSignature(EVP_PKEY* key, const TPMT_SIGNATURE& sig, std::string_view message) {
  std::string der;
  if (sig.sigAlg == TPM2_ALG_ECDSA) {
    OpenSslPtr<ECDSA_SIG, ECDSA_SIG_free> es(ECDSA_SIG_new());
    ECDSA_SIG_set0(es.get(),
                   BN_bin2bn(sig.signature.ecdsa.signatureR.buffer,
                             sig.signature.ecdsa.signatureR.size, nullptr),
                   BN_bin2bn(sig.signature.ecdsa.signatureS.buffer,
                             sig.signature.ecdsa.signatureS.size, nullptr));
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(es.get(), &out);
    der.assign(reinterpret_cast<char*>(out), len);
    OPENSSL_free(out);
  } else if (sig.sigAlg == TPM2_ALG_RSASSA) {
    der.assign(reinterpret_cast<const char*>(sig.signature.rsassa.sig.buffer),
               sig.signature.rsassa.sig.size);
  } else {
    return false;
  }
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  return EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream(path, std::ios::binary) << data;
}

class TpmQuoteTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto swtpm = SwtpmFixture::Start();
    ASSERT_TRUE(swtpm.ok()) << swtpm.status();
    swtpm_ = std::move(*swtpm);
    tpm::NodeTpm::Options o;
    o.tcti = swtpm_->tcti();
    o.state_dir = swtpm_->scratch_dir() + "/state";
    o.ak_algorithm = GetParam();
    auto node = tpm::NodeTpm::Open(o);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
  }
  std::unique_ptr<SwtpmFixture> swtpm_;
  std::unique_ptr<tpm::NodeTpm> node_;
};

TEST_P(TpmQuoteTest, ReadPcrsReturnsAllTwentyFourInOrder) {
  std::vector<uint32_t> all;
  for (uint32_t i = 24; i-- > 0;) all.push_back(i);
  auto pcrs = node_->ReadPcrs(all);
  ASSERT_TRUE(pcrs.ok()) << pcrs.status();
  ASSERT_EQ(pcrs->size(), 24u);
  for (uint32_t i = 0; i < 24; ++i) EXPECT_EQ((*pcrs)[i].index, i);
}

TEST_P(TpmQuoteTest, SealedQuoteVerifiesIndependently) {
  ASSERT_TRUE(node_->ExtendPcr(16, Sha256("measured thing")).ok());
  TpmSealer sealer(node_.get(), nullptr, {16, 0, 1, 2, 3, 4, 5, 6, 7});
  v1::Challenge challenge;
  challenge.set_nonce(std::string(32, '\x5a'));
  auto evidence = sealer.Seal("report bytes", challenge, 0);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  EXPECT_EQ(evidence->payload(), "report bytes");
  EXPECT_EQ(evidence->nonce(), challenge.nonce());
  const v1::Quote& q = evidence->quote();

  auto attest = UnmarshalTPMS_ATTEST(q.attest());
  ASSERT_TRUE(attest.ok()) << attest.status();
  EXPECT_EQ(attest->magic, TPM2_GENERATED_VALUE);
  EXPECT_EQ(attest->type, TPM2_ST_ATTEST_QUOTE);
  Sha256Digest extra = TpmSealer::QualifyingData(challenge.nonce(), "report bytes");
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(attest->extraData.buffer), attest->extraData.size),
      std::string(DigestBytes(extra)));
  auto ak_name = UnmarshalTPM2B_NAME(node_->ak_name());
  ASSERT_TRUE(ak_name.ok());
  // qualifiedSigner is the AK's qualified name (TPM 2.0 Part 1, 16: a hash over the
  // parent's qualified name and the AK's name), not its name.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(attest->qualifiedSigner.name),
                        attest->qualifiedSigner.size),
            node_->ak_qualified_name());
  EXPECT_NE(node_->ak_qualified_name(),
            std::string(reinterpret_cast<const char*>(ak_name->name), ak_name->size));

  // PCR values: ascending, PCR 16 is the extend, and their hash is the quoted pcrDigest.
  ASSERT_EQ(q.pcr_values_size(), 9);
  std::string concat;
  for (int i = 0; i < q.pcr_values_size(); ++i) {
    EXPECT_EQ(q.pcr_values(i).index(), i < 8 ? uint32_t(i) : 16u);
    concat += q.pcr_values(i).digest();
  }
  EXPECT_EQ(q.pcr_values(8).digest(),
            std::string(DigestBytes(
                Sha256Concat({std::string(32, '\0'), DigestBytes(Sha256("measured thing"))}))));
  const TPM2B_DIGEST& pcr_digest = attest->attested.quote.pcrDigest;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(pcr_digest.buffer), pcr_digest.size),
            std::string(DigestBytes(Sha256(concat))));

  // Signature with OpenSSL over the AK public key.
  auto ak = UnmarshalTPM2B_PUBLIC(node_->ak_public());
  ASSERT_TRUE(ak.ok());
  EvpPkeyPtr key = PublicKey(ak->publicArea);
  ASSERT_NE(key, nullptr);
  auto sig = UnmarshalTPMT_SIGNATURE(q.signature());
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_TRUE(VerifyTpmSignature(key.get(), *sig, q.attest()));
  std::string tampered = q.attest();
  tampered.back() ^= 1;
  EXPECT_FALSE(VerifyTpmSignature(key.get(), *sig, tampered));

  // tpm2_checkquote, the independent peer, on the exported pieces.
  std::string dir = swtpm_->scratch_dir();
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.get()), 1);
  char* pem = nullptr;
  long pem_len = BIO_get_mem_data(bio.get(), &pem);
  WriteFile(dir + "/ak.pem", std::string_view(pem, pem_len));
  WriteFile(dir + "/quote.msg", q.attest());
  WriteFile(dir + "/quote.sig", q.signature());
  // The PCR file in tpm2-tools' serialized format (what tpm2_checkquote -f reads).
  std::vector<std::pair<uint32_t, std::string>> values;
  for (const v1::PcrValue& v : q.pcr_values()) values.emplace_back(v.index(), v.digest());
  auto pcr_file = cli::Sha256PcrFile(values);
  ASSERT_TRUE(pcr_file.ok()) << pcr_file.status();
  auto serialized = cli::SerializePcrs(*pcr_file);
  ASSERT_TRUE(serialized.ok()) << serialized.status();
  WriteFile(dir + "/quote.pcrs", *serialized);
  std::string check =
      absl::StrCat("tpm2_checkquote -u ", dir, "/ak.pem -m ", dir, "/quote.msg -s ", dir,
                   "/quote.sig -f ", dir, "/quote.pcrs -g sha256 -q ", HexEncode(extra));
  EXPECT_EQ(std::system((check + " >" + dir + "/check.log 2>&1").c_str()), 0)
      << check << "\n"
      << ReadAll(dir + "/check.log");
  std::string wrong_nonce = absl::StrCat(
      "tpm2_checkquote -u ", dir, "/ak.pem -m ", dir, "/quote.msg -s ", dir, "/quote.sig -f ", dir,
      "/quote.pcrs -g sha256 -q ", HexEncode(Sha256("other")), " >/dev/null 2>&1");
  EXPECT_NE(std::system(wrong_nonce.c_str()), 0);
}

TEST_P(TpmQuoteTest, ChallengeSelectionWinsAndEmptyNonceIsRefused) {
  TpmSealer sealer(node_.get(), nullptr, {15});
  v1::Challenge challenge;
  EXPECT_EQ(sealer.Seal("p", challenge, 0).status().code(), absl::StatusCode::kInvalidArgument);
  challenge.set_nonce("n");
  challenge.add_pcr_selection(10);
  challenge.add_pcr_selection(3);
  auto evidence = sealer.Seal("p", challenge, 0);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  ASSERT_EQ(evidence->quote().pcr_values_size(), 2);
  EXPECT_EQ(evidence->quote().pcr_values(0).index(), 3u);
  EXPECT_EQ(evidence->quote().pcr_values(1).index(), 10u);
}

INSTANTIATE_TEST_SUITE_P(AkTypes, TpmQuoteTest, ::testing::Values("ecc", "rsa"));

}  // namespace
}  // namespace vigil::node
