// Interoperability with tpm2-tools, both ways, on a real (software) TPM:
//   - quotes made by `tpm2_quote` are accepted by `vigilctl quote verify`, and each kind of
//     tampering is refused with its own reason;
//   - evidence exported by `vigilctl evidence export` is accepted by `tpm2_checkquote`.

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "cli/evidence_command.h"
#include "cli/quote_command.h"
#include "cli/tpm2_tools_format.h"
#include "common/digest.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/swtpm_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "verifier/fleet_service.h"
#include "verifier/node_registry.h"
#include "verifier/results_store.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil {
namespace {

using testing::SwtpmFixture;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class Tpm2ToolsInteropTest : public ::testing::Test {
 public:
  // One TPM, two AKs (ECC and RSA) and their quotes for the whole suite: tpm2-tools
  // commands cost a TPM round trip each.
  static void SetUpTestSuite() {
    auto tpm = SwtpmFixture::Start();
    if (!tpm.ok()) {
      setup_error_ = new std::string(std::string(tpm.status().message()));
      return;
    }
    tpm_ = tpm->release();
    dir_ = new std::string(tpm_->scratch_dir());
    std::string nonce(20, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), nonce.size());
    nonce_hex_ = new std::string(HexEncode(nonce));
    const std::string steps[] = {
        "tpm2_createek -c ek.ctx -G ecc -u ek.pub",
        "tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -n ak.name",
        "tpm2_flushcontext -t",
        "tpm2_readpublic -c ak.ctx -f pem -o ak.pem",
        "tpm2_flushcontext -t",
        "tpm2_quote -c ak.ctx -l sha256:0,1,2,15 -q " + *nonce_hex_ +
            " -m q.msg -s q.sig -o q.pcrs -g sha256",
        "tpm2_flushcontext -t",
        "tpm2_quote -c ak.ctx -l sha256:0,1,2,15 -q " + *nonce_hex_ +
            " -m v.msg -s v.sig -o v.pcrs -F values -g sha256",
        "tpm2_flushcontext -t",
        "tpm2_pcrread sha256:3,4 -o other.pcrs -F serialized",
        "tpm2_createak -C ek.ctx -c rak.ctx -G rsa -g sha256 -s rsassa -u rak.pub -n rak.name",
        "tpm2_flushcontext -t",
        "tpm2_quote -c rak.ctx -l sha256:0,15 -q " + *nonce_hex_ +
            " -m r.msg -s r.sig -o r.pcrs -g sha256",
        "tpm2_flushcontext -t",
    };
    for (const std::string& step : steps) {
      if (int rc = Tools(step); rc != 0) {
        setup_error_ = new std::string(step + " failed:\n" + Slurp(*dir_ + "/tools.log"));
        return;
      }
    }
  }

  static void TearDownTestSuite() {
    delete tpm_;
    tpm_ = nullptr;
  }

  void SetUp() override { ASSERT_EQ(setup_error_, nullptr) << *setup_error_; }

  // Runs a tpm2-tools command line in the scratch directory against the suite's TPM.
  static int Tools(const std::string& command) {
    const std::string line = "cd '" + *dir_ + "' && TPM2TOOLS_TCTI='" + tpm_->tools_tcti() + "' " +
                             command + " >tools.log 2>&1";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  // `vigilctl quote verify` on files of the scratch directory; the exit code and stderr.
  struct Outcome {
    int exit_code;
    std::string message;
  };
  static Outcome Verify(const std::string& ak, const std::string& msg, const std::string& sig,
                        const std::string& pcrs, const std::string& nonce_hex) {
    cli::QuoteVerifyOptions options{Path(ak), Path(msg), Path(sig), Path(pcrs), nonce_hex};
    std::ostringstream out, err;
    const int rc = cli::RunQuoteVerify(options, out, err);
    return {rc, rc == 0 ? out.str() : err.str()};
  }

  // Copies `name` to `copy` with the byte at `offset` flipped (negative: from the end).
  static void Tamper(const std::string& name, const std::string& copy, long offset) {
    std::string bytes = Slurp(Path(name));
    bytes[offset < 0 ? bytes.size() + offset : offset] ^= 0x01;
    Spit(Path(copy), bytes);
  }

  static inline SwtpmFixture* tpm_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline std::string* nonce_hex_ = nullptr;
  static inline std::string* setup_error_ = nullptr;
};

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyAcceptsTpm2QuoteWithPemAk) {
  Outcome o = Verify("ak.pem", "q.msg", "q.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 0) << o.message;
  EXPECT_EQ(o.message, "quote verified\n");
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyAcceptsTpm2bPublicAk) {
  Outcome o = Verify("ak.pub", "q.msg", "q.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 0) << o.message;
  // Another AK's TPM2B_PUBLIC does not verify the signature.
  o = Verify("rak.pub", "q.msg", "q.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("SIGNATURE_INVALID"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyAcceptsValuesFormatPcrs) {
  Outcome o = Verify("ak.pem", "v.msg", "v.sig", "v.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 0) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyAcceptsRsaAk) {
  Outcome o = Verify("rak.pub", "r.msg", "r.sig", "r.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 0) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsTamperedMessage) {
  Tamper("q.msg", "bad.msg", -1);  // the last byte of pcrDigest
  Outcome o = Verify("ak.pem", "bad.msg", "q.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("SIGNATURE_INVALID"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsTamperedSignature) {
  Tamper("q.sig", "bad.sig", -1);  // the last byte of ECDSA s
  Outcome o = Verify("ak.pem", "q.msg", "bad.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("SIGNATURE_INVALID"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsTamperedPcrValue) {
  // Selection (132), list count (4), digest count (4), digest size (2): PCR 0's first byte.
  Tamper("q.pcrs", "bad.pcrs", 132 + 4 + 4 + 2);
  Outcome o = Verify("ak.pem", "q.msg", "q.sig", "bad.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("PCR_DIGEST_MISMATCH"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsPcrFileOfOtherPcrs) {
  Outcome o = Verify("ak.pem", "q.msg", "q.sig", "other.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("PCR_SELECTION_MISMATCH"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsWrongNonce) {
  std::string other = *nonce_hex_;
  other[0] = other[0] == '0' ? '1' : '0';
  Outcome o = Verify("ak.pem", "q.msg", "q.sig", "q.pcrs", other);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("EXTRA_DATA_MISMATCH"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsQuoteOfAnotherAk) {
  Outcome o = Verify("ak.pem", "r.msg", "r.sig", "r.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("SIGNATURE_INVALID"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyRejectsTruncatedMessageAsMalformed) {
  Spit(Path("short.msg"), Slurp(Path("q.msg")).substr(0, 40));
  Outcome o = Verify("ak.pem", "short.msg", "q.sig", "q.pcrs", *nonce_hex_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.message.find("QUOTE_MALFORMED"), std::string::npos) << o.message;
}

TEST_F(Tpm2ToolsInteropTest, QuoteVerifyBadNonceHexIsUsageError) {
  Outcome o = Verify("ak.pem", "q.msg", "q.sig", "q.pcrs", "xyz");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.message.find("--nonce"), std::string::npos) << o.message;
}

// Evidence as vigil-node makes it: a report quoted by the AK with
// extraData = SHA-256(nonce || SHA-256(payload)) over PCRs 0-7 and 15.
void MakeQuotedEvidence(v1::RuntimeReport& report, v1::Evidence& evidence) {
  report.set_hostname("interop-node");
  report.set_sequence(1);
  std::string nonce(32, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), nonce.size());
  evidence.set_nonce(nonce);
  evidence.set_payload(report.SerializeAsString());
  const Sha256Digest payload_digest = Sha256(evidence.payload());
  const std::string qualification = HexEncode(Sha256Concat({nonce, DigestBytes(payload_digest)}));
  ASSERT_EQ(Tpm2ToolsInteropTest::Tools("tpm2_quote -c ak.ctx -l sha256:0,1,2,3,4,5,6,7,15 -q " +
                                        qualification + " -m e.msg -s e.sig -o e.pcrs -g sha256"),
            0)
      << Slurp(Tpm2ToolsInteropTest::Path("tools.log"));
  ASSERT_EQ(Tpm2ToolsInteropTest::Tools("tpm2_flushcontext -t"), 0);
  evidence.mutable_quote()->set_attest(Slurp(Tpm2ToolsInteropTest::Path("e.msg")));
  evidence.mutable_quote()->set_signature(Slurp(Tpm2ToolsInteropTest::Path("e.sig")));
  auto pcrs = cli::ParseSerializedPcrs(Slurp(Tpm2ToolsInteropTest::Path("e.pcrs")));
  ASSERT_TRUE(pcrs.ok()) << pcrs.status();
  const uint32_t indices[] = {0, 1, 2, 3, 4, 5, 6, 7, 15};
  ASSERT_EQ(pcrs->digests.size(), std::size(indices));
  for (size_t i = 0; i < std::size(indices); ++i) {
    v1::PcrValue* v = evidence.mutable_quote()->add_pcr_values();
    v->set_index(indices[i]);
    v->set_digest(pcrs->digests[i]);
  }
}

// The other direction: a quote bound to a report the way vigil-node binds it, stored in the
// verifier's results store, exported, and checked by tpm2_checkquote.
TEST_F(Tpm2ToolsInteropTest, ExportedEvidenceIsAcceptedByTpm2Checkquote) {
  v1::RuntimeReport report;
  v1::Evidence evidence;
  ASSERT_NO_FATAL_FAILURE(MakeQuotedEvidence(report, evidence));
  const std::string& nonce = evidence.nonce();
  const Sha256Digest payload_digest = Sha256(evidence.payload());

  auto store = verifier::ResultsStore::Open(Path("store/vigil.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  v1::Verdict verdict;
  verdict.set_status(v1::TRUST_AFFIRMING);
  (*store)->Record("node-1", evidence, verdict);
  ASSERT_TRUE((*store)->Flush().ok());
  auto latest = (*store)->Latest("node-1");
  ASSERT_TRUE(latest.ok()) << latest.status();

  v1::GetLatestEvidenceResponse response;
  response.set_node_id("node-1");
  *response.mutable_evidence() = latest->evidence;
  *response.mutable_verdict() = latest->verdict;
  response.set_ak_public(Slurp(Path("ak.pub")));
  ASSERT_TRUE(cli::ExportEvidence(response, Path("export")).ok());
  EXPECT_EQ(Tools("tpm2_checkquote -u export/ak.pem -m export/quote.msg -s export/quote.sig "
                  "-f export/quote.pcrs -g sha256 -q $(cat export/extra-data.hex)"),
            0)
      << Slurp(Path("tools.log"));
  // vigilctl's own check agrees.
  Outcome o = Verify("export/ak.pub", "export/quote.msg", "export/quote.sig", "export/quote.pcrs",
                     HexEncode(Sha256Concat({nonce, DigestBytes(payload_digest)})));
  EXPECT_EQ(o.exit_code, 0) << o.message;

  // Evidence whose payload changed after quoting exports an extra-data the quote does not
  // carry: tpm2_checkquote refuses it.
  report.set_hostname("forged");
  *response.mutable_evidence()->mutable_payload() = report.SerializeAsString();
  ASSERT_TRUE(cli::ExportEvidence(response, Path("forged")).ok());
  EXPECT_NE(Tools("tpm2_checkquote -u forged/ak.pem -m forged/quote.msg -s forged/quote.sig "
                  "-f forged/quote.pcrs -g sha256 -q $(cat forged/extra-data.hex)"),
            0);
}

TEST_F(Tpm2ToolsInteropTest, ExportRefusesPcrValuesThatDoNotMatchTheQuote) {
  v1::GetLatestEvidenceResponse response;
  response.set_ak_public(Slurp(Path("ak.pub")));
  v1::Quote* quote = response.mutable_evidence()->mutable_quote();
  quote->set_attest(Slurp(Path("q.msg")));  // quotes PCRs 0, 1, 2 and 15
  quote->set_signature(Slurp(Path("q.sig")));
  for (uint32_t i : {0u, 1u, 2u}) {
    v1::PcrValue* v = quote->add_pcr_values();
    v->set_index(i);
    v->set_digest(std::string(32, '\0'));
  }
  absl::Status st = cli::ExportEvidence(response, Path("missing"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("PCR 15"), absl::string_view::npos) << st;
  response.mutable_evidence()->clear_quote();
  EXPECT_EQ(cli::ExportEvidence(response, Path("unquoted")).code(),
            absl::StatusCode::kFailedPrecondition);
}

// The whole chain an auditor uses: the verifier's store and registry behind the Fleet API
// on a real mutual-TLS server, `vigilctl evidence export` as a separate process with an
// operator's certificate, then tpm2_checkquote.
TEST_F(Tpm2ToolsInteropTest, VigilctlEvidenceExportThroughFleetApiPassesTpm2Checkquote) {
  auto pki = testing::TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  const std::string node_id = testing::TestPki::kNodeId;
  auto store = verifier::ResultsStore::Open(Path("chain/vigil.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto registry = verifier::NodeRegistry::Open(Path("chain/vigil.db"));
  ASSERT_TRUE(registry.ok()) << registry.status();
  verifier::EnrolledNode enrolled;
  enrolled.node_id = node_id;
  enrolled.ek_public = Slurp(Path("ek.pub"));
  enrolled.ak_public = Slurp(Path("ak.pub"));
  enrolled.ak_name = Slurp(Path("ak.name"));
  enrolled.enrolled = absl::Now();
  ASSERT_TRUE((*registry)->Bind(enrolled).ok());

  v1::RuntimeReport report;
  v1::Evidence evidence;
  ASSERT_NO_FATAL_FAILURE(MakeQuotedEvidence(report, evidence));
  v1::Verdict verdict;
  verdict.set_status(v1::TRUST_AFFIRMING);
  (*store)->Record(node_id, evidence, verdict);

  verifier::FleetServiceOptions fleet_options;
  fleet_options.trust_domain = testing::TestPki::kTrustDomain;
  fleet_options.store = store->get();
  fleet_options.registry = registry->get();
  verifier::FleetService fleet(std::move(fleet_options));
  testing::TestVerifierOptions options;
  options.sink = store->get();
  options.services = {&fleet};
  auto server = testing::TestVerifier::Start(**pki, options);
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string vigilctl = vigil::testing::BuildDir() + "/cli/vigilctl";
  const std::string command =
      vigilctl + " evidence export --node " + node_id + " --out '" + Path("chain/export") +
      "' --verifier " + (*server)->address() + " --pki-dir '" + (*pki)->dir() + "' --client " +
      testing::TestPki::kClientName + " >'" + Path("chain/cli.log") + "' 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(Path("chain/cli.log"));
  EXPECT_EQ(Tools("tpm2_checkquote -u chain/export/ak.pem -m chain/export/quote.msg "
                  "-s chain/export/quote.sig -f chain/export/quote.pcrs -g sha256 "
                  "-q $(cat chain/export/extra-data.hex)"),
            0)
      << Slurp(Path("tools.log"));
  EXPECT_EQ(Slurp(Path("chain/export/payload.bin")), evidence.payload());

  // vigilctl quote verify, as a process, on the same files.
  const std::string verify = vigilctl + " quote verify --ak-pub '" + Path("chain/export/ak.pub") +
                             "' --message '" + Path("chain/export/quote.msg") + "' --signature '" +
                             Path("chain/export/quote.sig") + "' --pcrs '" +
                             Path("chain/export/quote.pcrs") + "' --nonce $(cat '" +
                             Path("chain/export/extra-data.hex") + "') >/dev/null 2>&1";
  const int verify_status = std::system(verify.c_str());
  EXPECT_TRUE(WIFEXITED(verify_status) && WEXITSTATUS(verify_status) == 0);
}

}  // namespace
}  // namespace vigil
