#include "verifier/quote_appraiser.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/status_macros.h"
#include "common/tpm/attest.h"
#include "common/tpm/tpm_marshal.h"
#include "verifier/log_appraiser.h"
#include "verifier/policy_binding.h"
#include "verifier/spool_ledger.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::verifier {
namespace {

using v1::AppraisalReason;

using Failure = AppraisalFailure;

// TPMS_CLOCK_INFO.safe: NO (0) when the clock may have been reported before (it went back).
constexpr TPMI_YES_NO kClockSafe = 1;

std::string_view Bytes(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

// Checks the PCR selection and digest; on success `values` maps index -> 32-byte value.
std::optional<Failure> CheckPcrs(const TPMS_QUOTE_INFO& quote, const v1::Quote& q,
                                 const IssuedChallenge& challenge,
                                 std::map<uint32_t, std::string>* values) {
  auto quoted = tpm::Sha256PcrIndices(quote.pcrSelect);
  if (!quoted.ok()) {
    return Failure{v1::PCR_SELECTION_MISMATCH, std::string(quoted.status().message())};
  }
  std::vector<uint32_t> supplied;
  for (const v1::PcrValue& v : q.pcr_values()) {
    if (!supplied.empty() && v.index() <= supplied.back()) {
      return Failure{v1::PCR_SELECTION_MISMATCH, "PCR values are not in ascending order"};
    }
    supplied.push_back(v.index());
  }
  std::vector<uint32_t> asked(challenge.pcr_selection.begin(), challenge.pcr_selection.end());
  std::sort(asked.begin(), asked.end());
  asked.erase(std::unique(asked.begin(), asked.end()), asked.end());
  if (*quoted != supplied || supplied != asked) {
    return Failure{v1::PCR_SELECTION_MISMATCH,
                   "quoted PCRs, supplied PCR values and the challenge's selection differ"};
  }
  std::string concat;
  for (const v1::PcrValue& v : q.pcr_values()) {
    // Fixed-size values: otherwise bytes could move between PCRs with the same digest.
    if (v.digest().size() != 32) {
      return Failure{v1::PCR_DIGEST_MISMATCH,
                     absl::StrCat("PCR ", v.index(), " value is not 32 bytes")};
    }
    concat += v.digest();
    (*values)[v.index()] = v.digest();
  }
  if (Bytes(quote.pcrDigest.buffer, quote.pcrDigest.size) != DigestBytes(Sha256(concat))) {
    return Failure{v1::PCR_DIGEST_MISMATCH, "pcrDigest is not the hash of the supplied PCR values"};
  }
  return std::nullopt;
}

// Clock, resetCount and restartCount against the AK's previous accepted quote.
std::optional<Failure> CheckClock(const TPMS_CLOCK_INFO& now,
                                  const std::optional<QuoteClock>& prev) {
  if (!prev.has_value()) return std::nullopt;
  if (now.resetCount < prev->reset_count) {
    return Failure{v1::RESET_COUNT_DECREASED,
                   absl::StrCat("resetCount ", now.resetCount, " < ", prev->reset_count)};
  }
  if (now.resetCount == prev->reset_count) {
    if (now.restartCount < prev->restart_count) {
      return Failure{v1::RESTART_COUNT_DECREASED,
                     absl::StrCat("restartCount ", now.restartCount, " < ", prev->restart_count)};
    }
    // Within one TPM reset the clock only moves forward. After a reset (a reboot) it may
    // legitimately fall back if the TPM lost power before saving it; resetCount vouches.
    if (now.clock <= prev->clock) {
      return Failure{v1::CLOCK_NOT_ADVANCED,
                     absl::StrCat("clock ", now.clock, " <= previous ", prev->clock)};
    }
  }
  return std::nullopt;
}

}  // namespace

absl::Status QuoteAppraiser::CheckOptions(const Options& options) {
  if (options.measurement_pcr < 8 || options.measurement_pcr > 23) {
    return absl::InvalidArgumentError(absl::StrCat("measurement PCR ", options.measurement_pcr,
                                                   " is not one of 8-23 (0-7 are the boot's)"));
  }
  if ((options.measurement_pcr == 16 || options.measurement_pcr == 23) &&
      !options.allow_resettable_pcr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "measurement PCR ", options.measurement_pcr,
        " is resettable (anyone on the node can reset it and replay a clean log); it may only "
        "be used in tests (--allow-resettable-pcr)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<QuoteAppraiser>> QuoteAppraiser::Create(
    NodeRegistry* registry, const ReferenceValues* reference_values,
    const BootReferenceValues* boot_reference_values, Options options, const PolicySet* policies) {
  RETURN_IF_ERROR(CheckOptions(options));
  return std::unique_ptr<QuoteAppraiser>(
      new QuoteAppraiser(registry, reference_values, boot_reference_values, options, policies));
}

QuoteAppraiser::QuoteAppraiser(NodeRegistry* registry, const ReferenceValues* reference_values,
                               const BootReferenceValues* boot_reference_values, Options options,
                               const PolicySet* policies)
    : registry_(registry),
      reference_values_(reference_values),
      boot_reference_values_(boot_reference_values),
      options_(options),
      policies_(policies) {}

uint64_t QuoteAppraiser::LogEntriesAcknowledged(const std::string& node_id) const {
  std::shared_ptr<NodeState> state = registry_->Find(node_id);
  if (state == nullptr) return 0;
  absl::MutexLock lock(&state->mu);
  return state->log_entries();
}

std::optional<Failure> QuoteAppraiser::CheckSignedQuote(const AppraisalInput& input,
                                                        const Sha256Digest& payload_digest,
                                                        const TPMS_ATTEST& attest,
                                                        const TPMT_SIGNATURE& signature,
                                                        const NodeState& state) const {
  const v1::Evidence& evidence = *input.evidence;
  const std::string& ak_name = state.node().ak_name;
  const std::string_view signer = Bytes(attest.qualifiedSigner.name, attest.qualifiedSigner.size);
  const std::string& pinned = state.qualified_signer;
  if (signer != ak_name && signer != pinned) {
    std::string owner = registry_->NodeIdForAk(std::string(signer));
    if (!owner.empty() && owner != input.node_id) {
      return Failure{v1::AK_UNKNOWN,
                     absl::StrCat("quote names the AK of node ", owner.substr(0, 12))};
    }
  }

  if (absl::Status st = tpm::VerifySignature(state.ak_key(), signature, evidence.quote().attest());
      !st.ok()) {
    return Failure{v1::SIGNATURE_INVALID, std::string(st.message())};
  }
  if (attest.magic != TPM2_GENERATED_VALUE) {
    return Failure{v1::ATTEST_MAGIC_INVALID, "TPMS_ATTEST.magic is not TPM_GENERATED_VALUE"};
  }
  if (attest.type != TPM2_ST_ATTEST_QUOTE) {
    return Failure{v1::ATTEST_TYPE_INVALID, "TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE"};
  }
  // qualifiedSigner is the AK's qualified name (H(parent's QN || name)): it must equal the
  // one computed at enrollment from the node's SRK, or, for a node enrolled without its SRK,
  // have the AK name's algorithm and size and equal the one pinned at the AK's first
  // accepted quote (persisted like the clock).
  if (!state.node().ak_qualified_name.empty()) {
    if (signer != state.node().ak_qualified_name) {
      return Failure{v1::QUALIFIED_SIGNER_MISMATCH,
                     "qualifiedSigner is not the AK's qualified name under the SRK it enrolled "
                     "with: the quoting key is not that AK under that parent"};
    }
  } else if (signer.size() != ak_name.size() ||
             signer.substr(0, 2) != std::string_view(ak_name).substr(0, 2) ||
             (!pinned.empty() && signer != pinned)) {
    return Failure{v1::QUALIFIED_SIGNER_MISMATCH, "qualifiedSigner is not the node's AK"};
  }
  const Sha256Digest expected_extra =
      Sha256Concat({input.challenge->nonce, DigestBytes(payload_digest)});
  if (Bytes(attest.extraData.buffer, attest.extraData.size) != DigestBytes(expected_extra)) {
    return Failure{v1::EXTRA_DATA_MISMATCH, "extraData is not SHA-256(nonce || SHA-256(payload))"};
  }
  return std::nullopt;
}

std::optional<Failure> QuoteAppraiser::AppraiseLog(
    const v1::Evidence& evidence, const TPMS_CLOCK_INFO& clock, const NodeState& state,
    const std::map<uint32_t, std::string>& pcr_values, MeasurementState* next,
    std::vector<v1::MeasurementLogEntry>* epoch) const {
  const std::optional<QuoteClock>& prev = state.last_clock;
  TpmLifecycle lifecycle = TpmLifecycle::kUnknownOrReset;
  if (prev.has_value() && clock.resetCount == prev->reset_count) {
    lifecycle =
        clock.restartCount > prev->restart_count ? TpmLifecycle::kRestarted : TpmLifecycle::kSame;
  }
  // A new TPM reset (a reboot) starts a new measurement log from record 0.
  static const MeasurementState kNothingHeld;
  const MeasurementState& held = lifecycle != TpmLifecycle::kUnknownOrReset || !prev.has_value()
                                     ? state.measurements
                                     : kNothingHeld;
  std::vector<v1::MeasurementLogEntry> fresh;
  if (auto f = ExtendLog(evidence.log_entries(), held, &fresh)) return f;
  return CheckMeasurementLog(held, fresh, pcr_values, options_.measurement_pcr, lifecycle,
                             *reference_values_, policies_, next, epoch);
}

std::optional<Failure> QuoteAppraiser::AppraiseBoot(
    const std::map<uint32_t, std::string>& pcr_values, std::string* note) const {
  if (boot_reference_values_ == nullptr || boot_reference_values_->empty()) {
    *note =
        "boot PCRs not appraised: the verifier has no boot reference values "
        "(--boot-reference-values), so the boot chain is not affirmed";
    return std::nullopt;
  }
  std::map<uint32_t, std::string> boot;
  for (const auto& [index, value] : pcr_values) {
    if (index < 8) boot[index] = value;
  }
  absl::StatusOr<std::string> node_class = boot_reference_values_->Match(boot);
  if (!node_class.ok()) {
    return Failure{v1::BOOT_PCR_MISMATCH, std::string(node_class.status().message())};
  }
  *note = absl::StrCat("boot PCRs match node class ", EscapeUntrusted(*node_class, 80));
  return std::nullopt;
}

void QuoteAppraiser::Advance(const std::string& node_id, const TPMS_CLOCK_INFO& clock,
                             std::string_view signer, MeasurementState measurements,
                             const v1::Evidence& evidence, NodeState& state) {
  state.last_clock = QuoteClock{clock.clock, clock.resetCount, clock.restartCount};
  // The spooled batches the verified log delta measured join the node's ledger in the same
  // state change as the log itself, so one registry commit persists both: a commit between
  // the two would persist the log without them, and after a restart the node's resent entries
  // (below the held count, not replayed) could no longer add them.
  const uint64_t held_before = state.measurements.entries;
  AddMeasuredBatches(state.spool_batches, evidence.log_entries(),
                     measurements.entries >= held_before ? held_before : 0);
  state.measurements = std::move(measurements);
  if (state.qualified_signer.empty()) {
    state.qualified_signer = std::string(signer);
    registry_->RecordQualifiedSigner(node_id, state.qualified_signer);
  }
  registry_->MarkDirty(node_id);
}

v1::Verdict QuoteAppraiser::Appraise(const AppraisalInput& input) {
  const v1::Evidence& evidence = *input.evidence;
  v1::Verdict verdict;
  const Sha256Digest payload_digest = Sha256(evidence.payload());
  verdict.set_evidence_sha256(HexEncode(payload_digest));
  verdict.set_appraised_unix_nano(absl::ToUnixNanos(absl::Now()));
  auto reject = [&](const Failure& f) {
    verdict.set_status(v1::TRUST_REJECTED);
    verdict.add_reasons(f.reason);
    verdict.set_detail(f.detail);
    spdlog::warn("appraisal node={} rejected: {}: {}", input.node_id.substr(0, 12),
                 v1::AppraisalReason_Name(f.reason), f.detail);
    return verdict;
  };

  if (!evidence.has_quote())
    return reject({v1::EVIDENCE_UNQUOTED, "evidence carries no TPM quote"});
  if (input.challenge == nullptr)
    return reject({v1::NONCE_UNKNOWN, "no challenge for this evidence"});
  const v1::Quote& q = evidence.quote();
  auto attest = UnmarshalTPMS_ATTEST(q.attest());
  if (!attest.ok()) return reject({v1::QUOTE_MALFORMED, std::string(attest.status().message())});
  auto signature = UnmarshalTPMT_SIGNATURE(q.signature());
  if (!signature.ok())
    return reject({v1::QUOTE_MALFORMED, std::string(signature.status().message())});

  std::shared_ptr<NodeState> state = registry_->Find(input.node_id);
  if (state == nullptr) return reject({v1::AK_UNKNOWN, "node is not enrolled: no AK bound to it"});
  absl::MutexLock lock(&state->mu);
  if (auto f = CheckSignedQuote(input, payload_digest, *attest, *signature, *state)) {
    return reject(*f);
  }
  std::map<uint32_t, std::string> pcr_values;
  if (auto f = CheckPcrs(attest->attested.quote, q, *input.challenge, &pcr_values)) {
    return reject(*f);
  }
  if (auto f = CheckClock(attest->clockInfo, state->last_clock)) return reject(*f);
  MeasurementState measurements;
  std::vector<v1::MeasurementLogEntry> epoch;
  if (auto f =
          AppraiseLog(evidence, attest->clockInfo, *state, pcr_values, &measurements, &epoch)) {
    return reject(*f);
  }
  std::string detail_note;
  if (auto f = AppraiseBoot(pcr_values, &detail_note)) return reject(*f);

  // The payload is parsed once: by the wrapping appraiser when there is one.
  v1::RuntimeReport parsed;
  const v1::RuntimeReport* report_or_null = input.report;
  if (report_or_null == nullptr && parsed.ParseFromString(evidence.payload())) {
    report_or_null = &parsed;
  }
  if (!CheckReportPayload(input.node_id, report_or_null, verdict)) return verdict;
  const v1::RuntimeReport& report = *report_or_null;
  std::string ima_note;
  if (auto f = CheckImaEntry(epoch, report.ima(), &ima_note)) return reject(*f);
  if (!ima_note.empty()) absl::StrAppend(&detail_note, "; ", ima_note);
  BoundPolicy bound;
  if (auto f = CheckPolicyBinding(epoch, report.policy_digest(), *input.challenge,
                                  *reference_values_, policies_, &bound)) {
    return reject(*f);
  }
  verdict.set_policy_digest(bound.sha256);
  for (std::string& id : bound.policy_ids) verdict.add_policy_ids(std::move(id));

  Advance(input.node_id, attest->clockInfo,
          Bytes(attest->qualifiedSigner.name, attest->qualifiedSigner.size),
          std::move(measurements), evidence, *state);
  if (attest->clockInfo.safe != kClockSafe) {
    // Nonces keep the evidence fresh; what safe = NO weakens is the clock's monotonicity, so
    // the evidence is accepted (the state above advances) but not affirmed.
    verdict.set_status(v1::TRUST_WARNING);
    verdict.add_reasons(v1::CLOCK_UNSAFE);
    verdict.set_detail(absl::StrCat(
        "TPM clock not safe (TPMS_CLOCK_INFO.safe = NO: it may have gone back since a power "
        "loss); ",
        detail_note));
    spdlog::warn("appraisal node={} warning: CLOCK_UNSAFE", input.node_id.substr(0, 12));
    return verdict;
  }
  verdict.set_status(v1::TRUST_AFFIRMING);
  verdict.set_detail(detail_note);
  return verdict;
}

}  // namespace vigil::verifier
