// Appraisal cost against its floor: appraises N distinct quoted evidences (ECDSA P-256 AK,
// SHA-256 bank, a measurement log holding the node's start sequence) with the real QuoteAppraiser
// and NodeRegistry, then runs a bare EVP_DigestVerify of the same N signatures, and prints the
// ratio. The AK is a software key with a TPM public area, so the bench needs no TPM; the signature,
// the structures and every check are the ones real evidence goes through.

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/software_quote.h"
#include "verifier/quote_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using vigil::verifier::AppraisalInput;
using vigil::verifier::IssuedChallenge;

struct Sample {
  vigil::v1::Evidence evidence;
  IssuedChallenge challenge;
  std::string der_signature;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "appraisal bench: %s\n", what.c_str());
  std::exit(1);
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 5000;
  const std::string node_id(64, 'a');
  auto ak = vigil::tpm::SoftwareAk::Create();
  if (!ak.ok()) Die(std::string(ak.status().message()));
  auto registry = vigil::verifier::NodeRegistry::Open(":memory:");
  if (!registry.ok()) Die(std::string(registry.status().message()));
  if (!(*registry)->Bind({node_id, "ek", ak->tpm2b_public, ak->name, absl::Now()}).ok()) {
    Die("bind failed");
  }
  vigil::verifier::ReferenceValues references;
  // The start sequence a node measures: (event type, digest).
  std::vector<std::pair<std::string, std::string>> measurements;
  for (const char* type : {vigil::kEventNodeStart, vigil::kEventNodeBinary, vigil::kEventBpfObject,
                           vigil::kEventBpfProgramTags, vigil::kEventPolicyBundle}) {
    measurements.emplace_back(type, std::string(vigil::DigestBytes(vigil::Sha256(type))));
  }
  vigil::Sha256Digest pcr15{};
  for (const auto& [type, digest] : measurements) {
    references.Add(type, digest, "bench");
    pcr15 = vigil::Sha256Concat({vigil::DigestBytes(pcr15), digest});
  }
  const std::string pcr0(32, '\0');
  const std::string pcr15_bytes(vigil::DigestBytes(pcr15));
  auto created = vigil::verifier::QuoteAppraiser::Create(registry->get(), &references, nullptr,
                                                         {.measurement_pcr = 15});
  if (!created.ok()) Die(std::string(created.status().message()));
  vigil::verifier::QuoteAppraiser& appraiser = **created;

  std::vector<Sample> samples(n);
  for (int i = 0; i < n; ++i) {
    Sample& s = samples[i];
    vigil::v1::RuntimeReport report;
    report.set_node_id(node_id);
    report.set_sequence(i);
    // Measured under the start sequence's policy-bundle record.
    report.set_policy_digest(vigil::HexEncode(vigil::Sha256(vigil::kEventPolicyBundle)));
    s.evidence.set_payload(report.SerializeAsString());
    std::string nonce(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), 32);
    s.evidence.set_nonce(nonce);
    s.challenge = IssuedChallenge{nonce, absl::Now() + absl::Hours(1), {0, 15}, {}};
    vigil::Sha256Digest extra =
        vigil::Sha256Concat({nonce, vigil::DigestBytes(vigil::Sha256(s.evidence.payload()))});
    vigil::tpm::QuoteAttestFields fields{.qualified_signer = ak->name,
                                         .extra_data = vigil::DigestBytes(extra)};
    fields.clock_info.clock = 100000 + static_cast<uint64_t>(i);
    fields.clock_info.resetCount = 1;
    fields.clock_info.safe = 1;
    auto attest = vigil::tpm::MarshalQuoteAttest(fields, {{0, pcr0}, {15, pcr15_bytes}});
    if (!attest.ok()) Die("marshal failed");
    auto sig = ak->Sign(*attest);
    if (!sig.ok()) Die("sign failed");
    vigil::v1::Quote* q = s.evidence.mutable_quote();
    q->set_attest(*attest);
    q->set_signature(*sig);
    auto* v0 = q->add_pcr_values();
    v0->set_index(0);
    v0->set_digest(pcr0);
    auto* v15 = q->add_pcr_values();
    v15->set_index(15);
    v15->set_digest(pcr15_bytes);
    if (i == 0) {
      for (size_t r = 0; r < measurements.size(); ++r) {
        auto* e = s.evidence.add_log_entries();
        e->set_recnum(r);
        e->set_pcr(15);
        e->set_digest(measurements[r].second);
        e->set_event_type(measurements[r].first);
      }
    }
    // The same signature in DER, for the baseline.
    auto der = vigil::tpm::EcdsaSignatureDer(*sig);
    if (!der.ok()) Die("DER encoding failed");
    s.der_signature = *std::move(der);
  }

  auto t0 = std::chrono::steady_clock::now();
  for (const Sample& s : samples) {
    vigil::v1::Verdict v = appraiser.Appraise(AppraisalInput{node_id, &s.challenge, &s.evidence});
    if (v.status() != vigil::v1::TRUST_AFFIRMING) Die("not affirmed: " + v.detail());
  }
  auto t1 = std::chrono::steady_clock::now();
  for (const Sample& s : samples) {
    vigil::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    const std::string& msg = s.evidence.quote().attest();
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, ak->key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(s.der_signature.data()),
                         s.der_signature.size(), reinterpret_cast<const unsigned char*>(msg.data()),
                         msg.size()) != 1) {
      Die("baseline verify failed");
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  const double appraise = Seconds(t1 - t0) / n * 1e6;
  const double verify = Seconds(t2 - t1) / n * 1e6;
  std::printf("evidence appraised:        %d\n", n);
  std::printf("QuoteAppraiser::Appraise:  %8.1f us/evidence (%.0f/s on one core)\n", appraise,
              1e6 / appraise);
  std::printf("EVP_DigestVerify alone:    %8.1f us/signature (%.0f/s on one core)\n", verify,
              1e6 / verify);
  std::printf("ratio appraise/verify:     %8.2f\n", appraise / verify);
  return 0;
}
