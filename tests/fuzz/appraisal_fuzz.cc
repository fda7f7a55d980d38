// libFuzzer harness for appraisal as a whole: bytes -> v1::Evidence (protobuf) -> the
// verifier's RuntimeAppraiser over QuoteAppraiser, with a software AK enrolled for one node,
// reference values for the node's start sequence, and one reference policy. Deterministic:
// each input gets a fresh in-memory registry, so no state carries over between inputs.
// Must never crash or trip a sanitizer. Checks: the verdict names the node and has a status;
// its detail holds no control characters (attacker text in it is escaped); whatever the
// harness did not sign is rejected (the AK's key exists only in this process); rejected
// evidence has a reason and affirmed evidence none.
//
// To reach the checks behind the signature, an input can ask the harness to seal it like
// a node would: the flags in byte 0 are applied in this order:
//   bit 2: bind the report to the reference policy: RuntimeReport.policy_digest and every
//          policy-bundle log entry's digest become the reference bundle's digest;
//   bit 1: set the quoted measurement PCR (15) to the replay of the log entries;
//   bit 0: seal the quote: extraData = SHA-256(nonce || SHA-256(payload)), qualifiedSigner =
//          the AK's name, pcrDigest = SHA-256 of the selected PCR values, re-signed by the AK.
// The rest of the input is the serialized Evidence. The challenge is the evidence's own
// nonce, PCRs 0 and 15, the reference bundle, and the node's own policy acceptable.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/policy/parser.h"
#include "common/tpm/attest.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/tpm_marshal.h"
#include "tests/fuzz/fuzz_check.h"
#include "verifier/log_appraiser.h"
#include "verifier/node_registry.h"
#include "verifier/policy_set.h"
#include "verifier/quote_appraiser.h"
#include "verifier/reference_values.h"
#include "verifier/runtime_appraiser.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using ::vigil::fuzz::Check;

using vigil::verifier::AppraisalInput;
using vigil::verifier::IssuedChallenge;

constexpr uint32_t kMeasurementPcr = 15;
const char kNodeId[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char kPolicy[] = R"(apiVersion: vigil.dev/v1
kind: RuntimePolicy
metadata:
  name: fuzz
  revision: 1
spec:
  workloads:
    - name: agent
      selectors: ["exe=/opt/agent/*"]
  rules:
    - {id: nnp, kind: no_new_privs, controls: {nist_800_53: [AC-6(10)]}}
    - {id: caps, kind: capabilities, absent: [CAP_SYS_ADMIN], controls: {nist_800_53: [AC-6]}}
)";

struct Fixture {
  vigil::tpm::SoftwareAk ak;
  vigil::verifier::ReferenceValues references;
  vigil::verifier::PolicySet policies;
  std::string bundle_sha256;  // hex
};

Fixture& Fixed() {
  static Fixture* fixture = [] {
    spdlog::set_level(spdlog::level::off);  // every rejection is logged
    auto* f = new Fixture;
    absl::StatusOr<vigil::tpm::SoftwareAk> ak = vigil::tpm::SoftwareAk::Create();
    Check(ak.ok());
    f->ak = std::move(*ak);
    for (const std::string& type : vigil::verifier::StartSequence()) {
      f->references.Add(type, std::string(vigil::DigestBytes(vigil::Sha256(type))), "fuzz");
    }
    absl::StatusOr<std::vector<vigil::policy::Policy>> parsed =
        vigil::policy::ParsePoliciesOrError(kPolicy, "fuzz.yaml");
    Check(parsed.ok() && f->policies.Reset(std::move(*parsed)).ok());
    f->bundle_sha256 = f->policies.Current()->bundle.sha256();
    return f;
  }();
  return *fixture;
}

void BindToBundle(const Fixture& f, vigil::v1::Evidence& evidence) {
  vigil::v1::RuntimeReport report;
  if (report.ParseFromString(evidence.payload())) {
    report.set_policy_digest(f.bundle_sha256);
    evidence.set_payload(report.SerializeAsString());
  }
  absl::StatusOr<std::string> digest = vigil::HexDecode(f.bundle_sha256);
  Check(digest.ok());
  for (vigil::v1::MeasurementLogEntry& e : *evidence.mutable_log_entries()) {
    if (e.event_type() == vigil::kEventPolicyBundle) e.set_digest(*digest);
  }
}

void SetMeasurementPcr(vigil::v1::Evidence& evidence) {
  absl::StatusOr<vigil::Sha256Digest> replayed =
      vigil::ReplayPcr(evidence.log_entries(), kMeasurementPcr);
  if (!replayed.ok()) return;
  for (vigil::v1::PcrValue& v : *evidence.mutable_quote()->mutable_pcr_values()) {
    if (v.index() == kMeasurementPcr) v.set_digest(std::string(vigil::DigestBytes(*replayed)));
  }
}

void Seal(const Fixture& f, vigil::v1::Evidence& evidence) {
  vigil::v1::Quote& q = *evidence.mutable_quote();
  absl::StatusOr<TPMS_ATTEST> attest = vigil::UnmarshalTPMS_ATTEST(q.attest());
  if (!attest.ok()) return;
  const vigil::Sha256Digest extra = vigil::Sha256Concat(
      {evidence.nonce(), vigil::DigestBytes(vigil::Sha256(evidence.payload()))});
  attest->extraData.size = static_cast<UINT16>(extra.size());
  std::memcpy(attest->extraData.buffer, extra.data(), extra.size());
  attest->qualifiedSigner.size = static_cast<UINT16>(f.ak.name.size());
  std::memcpy(attest->qualifiedSigner.name, f.ak.name.data(), f.ak.name.size());
  if (attest->type == TPM2_ST_ATTEST_QUOTE) {
    absl::StatusOr<std::vector<uint32_t>> indices =
        vigil::tpm::Sha256PcrIndices(attest->attested.quote.pcrSelect);
    if (indices.ok()) {
      std::string selected;
      for (uint32_t index : *indices) {
        for (const vigil::v1::PcrValue& v : q.pcr_values()) {
          if (v.index() == index) {
            selected += v.digest();
            break;
          }
        }
      }
      const vigil::Sha256Digest digest = vigil::Sha256(selected);
      attest->attested.quote.pcrDigest.size = static_cast<UINT16>(digest.size());
      std::memcpy(attest->attested.quote.pcrDigest.buffer, digest.data(), digest.size());
    }
  }
  absl::StatusOr<std::string> marshalled = vigil::MarshalTPMS_ATTEST(*attest);
  if (!marshalled.ok()) return;
  absl::StatusOr<std::string> signature = f.ak.Sign(*marshalled);
  Check(signature.ok());
  q.set_attest(*marshalled);
  q.set_signature(*signature);
}

bool NoControlCharacters(const std::string& s) {
  for (char c : s) {
    if ((c >= 0 && c < 0x20) || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = Fixed();
  const uint8_t flags = data[0];
  vigil::v1::Evidence evidence;
  if (!evidence.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;

  const bool sealed = (flags & 1) != 0 && evidence.has_quote();
  if ((flags & 4) != 0) BindToBundle(f, evidence);
  if ((flags & 2) != 0) SetMeasurementPcr(evidence);
  if (sealed) Seal(f, evidence);

  absl::StatusOr<std::unique_ptr<vigil::verifier::NodeRegistry>> registry =
      vigil::verifier::NodeRegistry::Open(":memory:");
  Check(registry.ok());
  Check((*registry)->Bind({kNodeId, "ek", f.ak.tpm2b_public, f.ak.name, absl::Now()}).ok());
  vigil::verifier::QuoteAppraiser::Options quote_options;
  quote_options.measurement_pcr = kMeasurementPcr;
  absl::StatusOr<std::unique_ptr<vigil::verifier::QuoteAppraiser>> quote_appraiser =
      vigil::verifier::QuoteAppraiser::Create(registry->get(), &f.references, nullptr,
                                              quote_options, &f.policies);
  Check(quote_appraiser.ok());
  vigil::verifier::RuntimeAppraiser::Options runtime_options;
  runtime_options.policies = &f.policies;
  vigil::verifier::RuntimeAppraiser appraiser(quote_appraiser->get(), runtime_options);

  IssuedChallenge challenge;
  challenge.nonce = evidence.nonce();
  challenge.expires = absl::Now() + absl::Hours(1);
  challenge.pcr_selection = {0, kMeasurementPcr};
  challenge.policy_sha256 = {f.bundle_sha256};
  challenge.node_policy_acceptable = true;
  const vigil::v1::Verdict verdict =
      appraiser.Appraise(AppraisalInput{kNodeId, &challenge, &evidence});

  Check(verdict.node_id() == kNodeId);
  Check(verdict.status() != vigil::v1::TRUST_STATUS_UNSPECIFIED);
  Check(NoControlCharacters(verdict.detail()));
  if (!sealed) Check(verdict.status() == vigil::v1::TRUST_REJECTED);
  if (verdict.status() == vigil::v1::TRUST_REJECTED) Check(verdict.reasons_size() > 0);
  if (verdict.status() == vigil::v1::TRUST_AFFIRMING) Check(verdict.reasons_size() == 0);
  return 0;
}
