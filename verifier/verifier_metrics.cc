#include "verifier/verifier_metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "verifier/attestation_service.h"
#include "verifier/enrollment_service.h"
#include "verifier/results/webhook_notifier.h"

namespace vigil::verifier {

class VerifierMetrics::MeteredAppraiser final : public EvidenceAppraiser {
 public:
  MeteredAppraiser(EvidenceAppraiser* inner, VerifierMetrics* m) : inner_(inner), m_(m) {}

  v1::Verdict Appraise(const AppraisalInput& input) override {
    const absl::Time start = absl::Now();
    v1::Verdict verdict = inner_->Appraise(input);
    m_->appraisal_seconds_->ObserveDuration(absl::Now() - start);
    m_->reports_->Increment();
    const int status = verdict.status();
    if (status >= 0 && static_cast<size_t>(status) < m_->verdicts_by_status_.size() &&
        m_->verdicts_by_status_[status] != nullptr) {
      m_->verdicts_by_status_[status]->Increment();
    }
    for (int reason : verdict.reasons()) {
      if (reason >= 0 && static_cast<size_t>(reason) < m_->verdicts_by_reason_.size() &&
          m_->verdicts_by_reason_[reason] != nullptr) {
        m_->verdicts_by_reason_[reason]->Increment();
      }
    }
    return verdict;
  }

  uint64_t LogEntriesAcknowledged(const std::string& node_id) const override {
    return inner_->LogEntriesAcknowledged(node_id);
  }

 private:
  EvidenceAppraiser* const inner_;
  VerifierMetrics* const m_;
};

class VerifierMetrics::MeteredSink final : public ResultSink {
 public:
  MeteredSink(ResultSink* inner, VerifierMetrics* m) : inner_(inner), m_(m) {}

  void Record(const std::string& node_id, const v1::Evidence& evidence,
              const v1::Verdict& verdict) override {
    inner_->Record(node_id, evidence, verdict);
  }

  void RecordDurable(const std::string& node_id, const v1::Evidence& evidence,
                     const v1::Verdict& verdict,
                     std::function<void(absl::Status)> on_durable) override {
    const absl::Time start = absl::Now();
    VerifierMetrics* m = m_;
    // A spooled batch is counted once it is stored, by its verdict's status.
    metrics::Counter* spooled =
        verdict.from_spool() ? m->SpoolBatchCounter(verdict.status()) : nullptr;
    inner_->RecordDurable(node_id, evidence, verdict,
                          [m, start, spooled, on_durable = std::move(on_durable)](absl::Status st) {
                            m->store_seconds_->ObserveDuration(absl::Now() - start);
                            if (!st.ok()) m->store_failures_->Increment();
                            if (st.ok() && spooled != nullptr) spooled->Increment();
                            on_durable(std::move(st));
                          });
  }

  void SetConnected(const std::string& node_id, bool connected) override {
    inner_->SetConnected(node_id, connected);
  }

 private:
  ResultSink* const inner_;
  VerifierMetrics* const m_;
};

VerifierMetrics::VerifierMetrics(metrics::Registry* registry) : registry_(registry) {
  reports_ = registry->AddCounter("vigil_verifier_reports_total",
                                  "Evidence messages appraised (each answers one challenge).");
  const google::protobuf::EnumDescriptor* statuses = v1::TrustStatus_descriptor();
  for (int i = 0; i < statuses->value_count(); ++i) {
    const int number = statuses->value(i)->number();
    if (number < 0 || number > 64) continue;
    if (verdicts_by_status_.size() <= static_cast<size_t>(number)) {
      verdicts_by_status_.resize(number + 1, nullptr);
    }
    verdicts_by_status_[number] = registry->AddCounter(
        "vigil_verifier_verdicts_total", "Verdicts by overall trust status.",
        {{"status", metrics::EnumLabelValue(statuses->value(i)->name(), "TRUST_")}});
    spool_batches_by_status_.resize(verdicts_by_status_.size(), nullptr);
    spool_batches_by_status_[number] = registry->AddCounter(
        "vigil_verifier_spool_batches_total",
        "Spooled batches stored, by their verdict's trust status (rejected: refused, the node "
        "sets the batch aside). A batch delivered again after it was stored is not counted "
        "again.",
        {{"status", metrics::EnumLabelValue(statuses->value(i)->name(), "TRUST_")}});
  }
  const google::protobuf::EnumDescriptor* reasons = v1::AppraisalReason_descriptor();
  for (int i = 0; i < reasons->value_count(); ++i) {
    const int number = reasons->value(i)->number();
    if (number <= 0 || number > 1024) continue;  // 0: unspecified, never a reason
    if (verdicts_by_reason_.size() <= static_cast<size_t>(number)) {
      verdicts_by_reason_.resize(number + 1, nullptr);
    }
    verdicts_by_reason_[number] = registry->AddCounter(
        "vigil_verifier_verdict_reasons_total",
        "Reasons verdicts gave for not affirming evidence, one count per reason per verdict.",
        {{"reason", metrics::EnumLabelValue(reasons->value(i)->name(), "")}});
  }
  appraisal_seconds_ = registry->AddHistogram(
      "vigil_verifier_appraisal_duration_seconds",
      "Time to appraise one piece of evidence (quote, log, policies, signing).",
      metrics::LatencyBuckets());
  store_seconds_ = registry->AddHistogram(
      "vigil_verifier_store_write_duration_seconds",
      "Time from handing a verdict to the store until it is durable (group commit included).",
      metrics::LatencyBuckets());
  store_failures_ = registry->AddCounter("vigil_verifier_store_write_failures_total",
                                         "Verdicts the store could not make durable.");
}

VerifierMetrics::~VerifierMetrics() = default;

EvidenceAppraiser* VerifierMetrics::Meter(EvidenceAppraiser* inner) {
  appraisers_.push_back(std::make_unique<MeteredAppraiser>(inner, this));
  return appraisers_.back().get();
}

ResultSink* VerifierMetrics::Meter(ResultSink* inner) {
  sinks_.push_back(std::make_unique<MeteredSink>(inner, this));
  return sinks_.back().get();
}

void VerifierMetrics::WatchAttestation(const AttestationService* service) {
  registry_->AddGaugeFunc("vigil_verifier_attest_streams", "Attest streams open now.", {},
                          [service] { return static_cast<double>(service->OpenStreams()); });
  registry_->AddGaugeFunc(
      "vigil_verifier_appraisals_held",
      "Streams whose evidence waits for a place in the full appraisal queue (each reads "
      "nothing meanwhile).",
      {}, [service] { return static_cast<double>(service->HeldAppraisals()); });
  const std::string help =
      "Attest streams and messages refused by a limit (docs/verifier.md, \"Limits\").";
  registry_->AddCounterFunc(
      "vigil_verifier_attest_refusals_total", help, {{"limit", "max_streams"}},
      [service] { return static_cast<double>(service->counters().streams_refused_total); });
  registry_->AddCounterFunc(
      "vigil_verifier_attest_refusals_total", help, {{"limit", "max_streams_per_node"}},
      [service] { return static_cast<double>(service->counters().streams_refused_per_node); });
  registry_->AddCounterFunc(
      "vigil_verifier_attest_refusals_total", help, {{"limit", "evidence_rate"}},
      [service] { return static_cast<double>(service->counters().rate_limited); });
}

void VerifierMetrics::WatchEnroller(const Enroller* enroller) {
  registry_->AddGaugeFunc("vigil_verifier_enrollments_pending",
                          "Enrollments begun and not yet completed or expired.", {},
                          [enroller] { return static_cast<double>(enroller->pending()); });
  const std::string help =
      "BeginEnrollment calls refused or pending enrollments evicted by a limit.";
  registry_->AddCounterFunc("vigil_verifier_enrollment_refusals_total", help,
                            {{"limit", "max_pending_enrollments"}},
                            [enroller] { return static_cast<double>(enroller->refused_full()); });
  registry_->AddCounterFunc("vigil_verifier_enrollment_refusals_total", help,
                            {{"limit", "max_pending_enrollments_per_ek"}},
                            [enroller] { return static_cast<double>(enroller->evicted_per_ek()); });
}

void VerifierMetrics::WatchWebhooks(const WebhookNotifier* notifier, size_t targets) {
  struct Field {
    const char* name;
    const char* help;
    uint64_t WebhookStats::*member;
  };
  for (const Field& f : {
           Field{"vigil_verifier_webhook_deliveries_total", "Status changes delivered.",
                 &WebhookStats::delivered},
           Field{"vigil_verifier_webhook_failures_total",
                 "Delivery attempts that failed (connection error, timeout, non-2xx answer).",
                 &WebhookStats::failed_attempts},
           Field{"vigil_verifier_webhook_abandoned_total",
                 "Status changes given up on after the last attempt.", &WebhookStats::abandoned},
           Field{"vigil_verifier_webhook_dropped_total",
                 "Status changes dropped unsent because the target's queue was full.",
                 &WebhookStats::dropped},
       }) {
    for (size_t i = 0; i < targets; ++i) {
      registry_->AddCounterFunc(f.name, f.help, {{"target", absl::StrCat(i)}},
                                [notifier, i, member = f.member] {
                                  return static_cast<double>(notifier->stats(i).*member);
                                });
    }
  }
}

metrics::Counter* VerifierMetrics::SpoolBatchCounter(int status) const {
  if (status < 0 || static_cast<size_t>(status) >= spool_batches_by_status_.size()) return nullptr;
  return spool_batches_by_status_[status];
}

}  // namespace vigil::verifier
