#include "common/pki.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <filesystem>

#include "cli/pki_command.h"
#include "common/spiffe.h"
#include "tests/testing/pki_fixture.h"

namespace vigil {
namespace {

using testing::TestPki;

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }

  mode_t ModeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::unique_ptr<TestPki> pki_;
};

std::string Pem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  return MemBioContents(bio.get());
}

// A CSR for `key` asking for a DNS SAN, a URI SAN naming another node, and CA:TRUE.
X509ReqPtr GreedyCsr(EVP_PKEY* key) {
  X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), X509_REQ_VERSION_1);
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("evil"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name,
                                                   "DNS:evil.example,URI:spiffe://vigil.test/"
                                                   "vigil/node/someone-else"));
  sk_X509_EXTENSION_push(exts,
                         X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "CA:TRUE"));
  X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_sign(req.get(), key, EVP_sha256());
  return req;
}

TEST_F(PkiTest, IssuedCertificatesChainToTheCa) {
  EXPECT_TRUE(VerifyCertificate(pki_->verifier().cert_pem, pki_->ca_cert_pem()).ok());
  EXPECT_TRUE(VerifyCertificate(pki_->node().cert_pem, pki_->ca_cert_pem()).ok());
  EXPECT_TRUE(VerifyCertificate(pki_->client().cert_pem, pki_->ca_cert_pem()).ok());
  // ...and not to a foreign CA, even in the same trust domain.
  absl::StatusOr<CertAndKey> foreign = pki_->IssueForeign(TestPki::NodeUri("n1"));
  ASSERT_TRUE(foreign.ok());
  absl::Status s = VerifyCertificate(foreign->cert_pem, pki_->ca_cert_pem());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
}

TEST_F(PkiTest, ExpiredCertificateDoesNotVerify) {
  absl::Time now = absl::Now();
  absl::StatusOr<CertAndKey> expired = pki_->IssueWithValidity(
      TestPki::NodeUri("old"), Validity{now - absl::Hours(48), now - absl::Hours(24)});
  ASSERT_TRUE(expired.ok()) << expired.status();
  absl::Status s = VerifyCertificate(expired->cert_pem, pki_->ca_cert_pem());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("expired"), absl::string_view::npos) << s;
}

TEST_F(PkiTest, PrivateKeysAreWrittenOwnerOnly) {
  for (const char* name : {"ca.key", "verifier.key"}) {
    EXPECT_EQ(ModeOf(pki_->dir() + "/" + name), 0600u) << name;
  }
  EXPECT_EQ(ModeOf(pki_->dir() + "/node-" + TestPki::kNodeId + ".key"), 0600u);
  EXPECT_EQ(ModeOf(pki_->dir() + "/client-operator.key"), 0600u);
  EXPECT_EQ(ModeOf(pki_->dir() + "/ca.crt"), 0644u);
}

TEST_F(PkiTest, WritePrivateFileNarrowsAnExistingFilesMode) {
  std::string path = pki_->dir() + "/loose.key";
  ASSERT_TRUE(WritePublicFile(path, "old", false).ok());
  ASSERT_EQ(ModeOf(path), 0644u);
  EXPECT_EQ(WritePrivateFile(path, "secret", false).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(WritePrivateFile(path, "secret", true).ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(*ReadFileToString(path), "secret");
}

TEST_F(PkiTest, InitRefusesToReplaceACaWithoutForce) {
  cli::PkiInitOptions init;
  init.dir = pki_->dir();
  init.trust_domain = TestPki::kTrustDomain;
  absl::Status s = cli::InitPkiDirectory(init);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  // The CA is untouched.
  absl::StatusOr<CaMaterial> ca = LoadCa(pki_->dir());
  ASSERT_TRUE(ca.ok());
  EXPECT_EQ(ca->cert_pem, pki_->ca_cert_pem());

  init.force = true;
  ASSERT_TRUE(cli::InitPkiDirectory(init).ok());
  ca = LoadCa(pki_->dir());
  ASSERT_TRUE(ca.ok());
  EXPECT_NE(ca->cert_pem, pki_->ca_cert_pem());
}

TEST_F(PkiTest, IssueReusesTheStoredTrustDomain) {
  absl::StatusOr<CertAndKey> issued = pki_->IssueClient("grc", "auditor");
  ASSERT_TRUE(issued.ok()) << issued.status();
  X509Ptr cert = *CertificateFromPem(issued->cert_pem);
  EXPECT_EQ(*UriSans(cert.get()),
            std::vector<std::string>{"spiffe://vigil.test/vigil/auditor/grc"});
}

TEST_F(PkiTest, SignCsrSetsOnlyTheGivenIdentityAndIgnoresRequestedExtensions) {
  EvpPkeyPtr key = *GenerateKey();
  X509ReqPtr req = GreedyCsr(key.get());
  absl::StatusOr<std::string> pem =
      SignCsr(pki_->ca(), Pem(req.get()), TestPki::NodeUri("n7"), absl::Hours(1));
  ASSERT_TRUE(pem.ok()) << pem.status();
  X509Ptr cert = *CertificateFromPem(*pem);

  EXPECT_EQ(*UriSans(cert.get()), std::vector<std::string>{TestPki::NodeUri("n7")});
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_NE(sans, nullptr);
  EXPECT_EQ(sk_GENERAL_NAME_num(sans.get()), 1);  // no DNS name from the CSR
  EXPECT_EQ(X509_check_ca(cert.get()), 0);        // CA:TRUE from the CSR ignored
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);  // the CSR's key
  EXPECT_TRUE(VerifyCertificate(*pem, pki_->ca_cert_pem()).ok());

  // A 128-bit random serial: two signings differ.
  std::string again = *SignCsr(pki_->ca(), Pem(req.get()), TestPki::NodeUri("n7"), absl::Hours(1));
  X509Ptr cert2 = *CertificateFromPem(again);
  EXPECT_NE(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(cert.get()), X509_get0_serialNumber(cert2.get())), 0);
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  EXPECT_LE(BN_num_bits(serial.get()), 128);
  EXPECT_GT(BN_num_bits(serial.get()), 64);
}

TEST_F(PkiTest, SignCsrRefusesABadSignature) {
  absl::StatusOr<KeyAndCsr> csr = MakeKeyAndCsr("node");
  ASSERT_TRUE(csr.ok()) << csr.status();
  // Re-sign the request body with a different key: the embedded public key no longer
  // verifies the signature.
  BioPtr bio = MemBioOver(csr->csr_pem);
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(req, nullptr);
  EvpPkeyPtr other = *GenerateKey();
  ASSERT_GT(X509_REQ_sign(req.get(), other.get(), EVP_sha256()), 0);
  absl::StatusOr<std::string> cert =
      SignCsr(pki_->ca(), Pem(req.get()), TestPki::NodeUri("n1"), absl::Hours(1));
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(cert.status().message().find("signature"), absl::string_view::npos);
}

TEST_F(PkiTest, SignCsrRefusesGarbageAndForeignTrustDomains) {
  absl::StatusOr<KeyAndCsr> csr = MakeKeyAndCsr("node");
  ASSERT_TRUE(csr.ok());
  EXPECT_EQ(
      SignCsr(pki_->ca(), "not a csr", TestPki::NodeUri("n1"), absl::Hours(1)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      SignCsr(pki_->ca(), csr->csr_pem, "spiffe://other.td/vigil/node/n1", absl::Hours(1)).ok());
  EXPECT_FALSE(
      SignCsr(pki_->ca(), csr->csr_pem, "spiffe://vigil.test/vigil/admin/x", absl::Hours(1)).ok());
  EXPECT_TRUE(SignCsr(pki_->ca(), csr->csr_pem, TestPki::NodeUri("n1"), absl::Hours(1)).ok());
}

TEST_F(PkiTest, ServerCertificateCarriesHostsAsDnsAndIpSans) {
  absl::StatusOr<CertAndKey> server =
      IssueServerCertificate(pki_->ca(), "v", {"localhost", "127.0.0.1", "::1", "verifier.example"},
                             Validity::FromNow(absl::Hours(1)));
  ASSERT_TRUE(server.ok()) << server.status();
  X509Ptr cert = *CertificateFromPem(server->cert_pem);
  EXPECT_EQ(X509_check_host(cert.get(), "verifier.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  // A SAN that would smuggle another name in is refused.
  EXPECT_FALSE(IssueServerCertificate(pki_->ca(), "v", {"a,URI:spiffe://x/vigil/node/y"},
                                      Validity::FromNow(absl::Hours(1)))
                   .ok());
}

TEST_F(PkiTest, LoadCaRefusesAMismatchedKey) {
  std::string dir = pki_->dir();
  EvpPkeyPtr other = *GenerateKey();
  ASSERT_TRUE(WritePrivateFile(dir + "/ca.key", *PrivateKeyToPem(other.get()), true).ok());
  absl::StatusOr<CaMaterial> ca = LoadCa(dir);
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kInvalidArgument) << ca.status();
}

}  // namespace
}  // namespace vigil
