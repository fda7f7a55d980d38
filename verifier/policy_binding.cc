#include "verifier/policy_binding.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/escape.h"
#include "common/measurement_log.h"

namespace vigil::verifier {
namespace {

// Digests in details are cut to this many hex characters.
constexpr size_t kShortDigest = 12;

// A digest for a detail: its first hex characters, "none" for "". `digest` may come from the
// node, so it is escaped.
std::string Short(const std::string& digest) {
  if (digest.empty()) return "none";
  return EscapeUntrusted(digest.substr(0, kShortDigest), 4 * kShortDigest);
}

bool IsPolicyRecord(const v1::MeasurementLogEntry& e) {
  return e.event_type() == kEventPolicyBundle || e.event_type() == kEventNoPolicy;
}

}  // namespace

bool StreamPolicyLog::Sent(const std::string& sha256) {
  if (sha256 == last_sent_) return false;
  last_sent_ = sha256;
  acceptable_.push_back(sha256);
  if (acceptable_.size() > kMaxAcceptable) acceptable_.erase(acceptable_.begin());
  return true;
}

void StreamPolicyLog::ChallengeIssued() {
  acceptable_.clear();
  if (!last_sent_.empty()) acceptable_.push_back(last_sent_);
  node_policy_acceptable_ = last_sent_.empty();
}

void StreamPolicyLog::Bind(IssuedChallenge* challenge) const {
  challenge->policy_sha256 = acceptable_;
  challenge->node_policy_acceptable = node_policy_acceptable_;
}

const v1::MeasurementLogEntry* LatestPolicyRecord(const std::vector<v1::MeasurementLogEntry>& log) {
  const size_t epoch = EpochStart(log);
  for (size_t i = log.size(); i > epoch; --i) {
    if (IsPolicyRecord(log[i - 1])) return &log[i - 1];
  }
  return nullptr;
}

std::optional<AppraisalFailure> CheckPolicyBinding(const std::vector<v1::MeasurementLogEntry>& log,
                                                   const std::string& report_digest,
                                                   const IssuedChallenge& challenge,
                                                   const ReferenceValues& reference_values,
                                                   const PolicySet* policies, BoundPolicy* bound) {
  const v1::MeasurementLogEntry* record = LatestPolicyRecord(log);
  if (record == nullptr) {
    return AppraisalFailure{v1::POLICY_DIGEST_MISMATCH,
                            absl::StrCat("the report claims policy bundle ", Short(report_digest),
                                         " but the log's current epoch measures no policy")};
  }
  const std::string measured =
      record->event_type() == kEventPolicyBundle ? HexEncode(record->digest()) : std::string();
  if (report_digest != measured) {
    return AppraisalFailure{v1::POLICY_DIGEST_MISMATCH,
                            absl::StrCat("the report claims policy bundle ", Short(report_digest),
                                         " but the log's latest policy record (record ",
                                         record->recnum(), ") measures ", Short(measured))};
  }
  const std::vector<std::string>& sent = challenge.policy_sha256;
  if (!measured.empty() && std::find(sent.begin(), sent.end(), measured) != sent.end()) {
    bound->sha256 = measured;
    bound->policy_ids.clear();
    if (policies != nullptr) {
      std::shared_ptr<const PolicySnapshot> snapshot = policies->Find(measured);
      if (snapshot == nullptr) {
        return AppraisalFailure{
            v1::POLICY_DIGEST_MISMATCH,
            absl::StrCat("the evidence is measured under policy bundle ", Short(measured),
                         ", which the verifier sent but no longer holds (more than ",
                         PolicySet::kKeptSnapshots, " policy changes since)")};
      }
      bound->policy_ids.assign(snapshot->bundle.policy_ids().begin(),
                               snapshot->bundle.policy_ids().end());
    }
    return std::nullopt;
  }
  if (challenge.node_policy_acceptable &&
      (measured.empty() || reference_values.Contains(kEventPolicyBundle, record->digest()))) {
    bound->sha256 = measured;
    bound->policy_ids.clear();
    return std::nullopt;
  }
  std::vector<std::string> expected;
  for (const std::string& d : sent) expected.push_back(Short(d));
  std::string what = expected.empty() ? std::string("none") : absl::StrJoin(expected, " or ");
  if (challenge.node_policy_acceptable) {
    absl::StrAppend(&what, expected.empty() ? "" : ", or ",
                    expected.empty() ? " (the node's own policy must be a policy-bundle "
                                       "reference value, or none)"
                                     : "the node's own (a reference value, or none)");
  }
  return AppraisalFailure{v1::POLICY_DIGEST_MISMATCH,
                          absl::StrCat("the evidence is measured under policy bundle ",
                                       Short(measured), " but the verifier sent ", what)};
}

}  // namespace vigil::verifier
