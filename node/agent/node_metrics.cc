#include "node/agent/node_metrics.h"

#include <string>
#include <utility>

#include "common/metrics/metrics_server.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "vigil/v1/attestation.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {
namespace {

constexpr char kDroppedName[] = "vigil_node_events_dropped_total";
constexpr char kDroppedHelp[] =
    "Events lost before they reached a report, by where they were lost (the report's "
    "probes.dropped_events).";

}  // namespace

class NodeMetrics::MeteredEventSource final : public EventSource {
 public:
  MeteredEventSource(EventSource* inner, NodeMetrics* m) : inner_(inner), m_(m) {}

  void Drain(std::vector<v1::RuntimeEvent>* out) override {
    const size_t before = out->size();
    inner_->Drain(out);
    for (size_t i = before; i < out->size(); ++i) {
      const int kind = (*out)[i].kind();
      if (kind >= 0 && static_cast<size_t>(kind) < m_->events_by_kind_.size() &&
          m_->events_by_kind_[kind] != nullptr) {
        m_->events_by_kind_[kind]->Increment();
      }
    }
  }
  v1::ProbeStatus Status() const override { return inner_->Status(); }
  std::vector<int> MonitoredPids() const override { return inner_->MonitoredPids(); }
  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }

 private:
  EventSource* const inner_;
  NodeMetrics* const m_;
};

NodeMetrics::NodeMetrics(metrics::Registry* registry) : registry_(registry) {
  const google::protobuf::EnumDescriptor* kinds = v1::EventKind_descriptor();
  for (int i = 0; i < kinds->value_count(); ++i) {
    const int number = kinds->value(i)->number();
    if (number <= 0 || number > 1024) continue;  // 0: unspecified, never an event's kind
    if (events_by_kind_.size() <= static_cast<size_t>(number)) {
      events_by_kind_.resize(number + 1, nullptr);
    }
    events_by_kind_[number] = registry->AddCounter(
        "vigil_node_events_total", "Events the BPF probes delivered to the node, by kind.",
        {{"kind", metrics::EnumLabelValue(kinds->value(i)->name(), "EVENT_KIND_")}});
  }
  quote_seconds_ = registry->AddHistogram("vigil_node_quote_duration_seconds",
                                          "Time the TPM took for one TPM2_Quote call.",
                                          metrics::LatencyBuckets());
  quote_failures_ =
      registry->AddCounter("vigil_node_quote_failures_total", "TPM2_Quote calls that failed.");
  snapshot_seconds_ = registry->AddHistogram(
      "vigil_node_snapshot_duration_seconds",
      "Time to find the monitored processes and snapshot each from /proc, once per report or "
      "spool batch.",
      metrics::LatencyBuckets());
}

NodeMetrics::~NodeMetrics() = default;

EventSource* NodeMetrics::Meter(EventSource* inner) {
  if (inner == nullptr) return nullptr;
  sources_.push_back(std::make_unique<MeteredEventSource>(inner, this));
  return sources_.back().get();
}

TpmSealer::QuoteObserver NodeMetrics::QuoteObserver() {
  return [this](absl::Duration elapsed, const absl::Status& outcome) {
    quote_seconds_->ObserveDuration(elapsed);
    if (!outcome.ok()) quote_failures_->Increment();
  };
}

std::function<void(absl::Duration)> NodeMetrics::SnapshotObserver() {
  return [this](absl::Duration elapsed) { snapshot_seconds_->ObserveDuration(elapsed); };
}

void NodeMetrics::WatchLosses(const EventSource* probes, const ReportBuilder* builder) {
  if (probes != nullptr) {
    // The reasons the source counts (ring buffer full, its own queue full, ...), as it names
    // them in every report.
    const v1::ProbeStatus now = probes->Status();
    for (const auto& [reason, count] : now.dropped_events()) {
      registry_->AddCounterFunc(
          kDroppedName, kDroppedHelp, {{"reason", reason}}, [probes, reason = reason] {
            const v1::ProbeStatus status = probes->Status();
            const auto it = status.dropped_events().find(reason);
            return it == status.dropped_events().end() ? 0.0 : static_cast<double>(it->second);
          });
    }
  }
  registry_->AddCounterFunc(kDroppedName, kDroppedHelp, {{"reason", "report_queue_full"}},
                            [builder] { return static_cast<double>(builder->events_dropped()); });
  registry_->AddCounterFunc(
      "vigil_node_report_processes_left_out_total",
      "Process snapshots left out of reports to fit the message size bound (each such report "
      "says so in an observation gap).",
      {}, [builder] { return static_cast<double>(builder->processes_left_out()); });
}

void NodeMetrics::WatchSpool(const spool::Spool* spool) {
  registry_->AddGaugeFunc("vigil_node_spool_bytes", "Bytes of the spool's batch files.", {},
                          [spool] { return static_cast<double>(spool->bytes()); });
  registry_->AddGaugeFunc("vigil_node_spool_batches",
                          "Batches in the spool, waiting to be sent or answered.", {},
                          [spool] { return static_cast<double>(spool->size()); });
  struct Loss {
    const char* reason;
    uint64_t spool::SpoolCounters::*member;
  };
  for (const Loss& loss : {Loss{"spool_full", &spool::SpoolCounters::dropped_batches},
                           Loss{"corrupt", &spool::SpoolCounters::corrupt_batches},
                           Loss{"refused", &spool::SpoolCounters::refused_batches}}) {
    registry_->AddCounterFunc(
        "vigil_node_spool_batches_dropped_total",
        "Batches that left the spool unaccepted: dropped to stay under the size bound, set "
        "aside as corrupt, or set aside because the verifier refused them. Kept across "
        "restarts.",
        {{"reason", loss.reason}},
        [spool, member = loss.member] { return static_cast<double>(spool->counters().*member); });
  }
  registry_->AddCounterFunc(kDroppedName, kDroppedHelp, {{"reason", "spool_full"}}, [spool] {
    return static_cast<double>(spool->counters().dropped_events);
  });
}

void NodeMetrics::WatchClient(const AttestClient* client) {
  using Stats = AttestClient::Stats;
  struct Field {
    const char* name;
    const char* help;
    uint64_t Stats::*member;
  };
  for (const Field& f : {
           Field{"vigil_node_reports_sent_total", "Reports sent as evidence.",
                 &Stats::evidence_sent},
           Field{"vigil_node_reports_acknowledged_total",
                 "Reports the verifier acknowledged with a verdict.", &Stats::acks_received},
           Field{"vigil_node_attest_streams_opened_total",
                 "Attest streams opened: the first, then one per reconnection attempt.",
                 &Stats::streams_opened},
           Field{"vigil_node_spool_batches_written_total",
                 "Spool batches this process wrote while no stream was up.",
                 &Stats::batches_spooled},
           Field{"vigil_node_spool_batches_sent_total",
                 "Spool batches sent to the verifier (again after a stream broke before the "
                 "answer).",
                 &Stats::batches_sent},
           Field{"vigil_node_spool_batches_answered_total",
                 "Spool batches the verifier answered (accepted or refused).",
                 &Stats::batches_answered},
           Field{"vigil_node_reports_unacknowledged_spooled_total",
                 "Reports sent on a stream that ended before their acknowledgement, written to "
                 "the spool to be sent again.",
                 &Stats::unacknowledged_spooled},
       }) {
    registry_->AddCounterFunc(f.name, f.help, {}, [client, member = f.member] {
      return static_cast<double>(client->stats().*member);
    });
  }
  registry_->AddGaugeFunc(
      "vigil_node_attest_connected",
      "1 while an Attest stream is up and the verifier has acknowledged evidence on it.", {},
      [client] { return client->stats().connected ? 1.0 : 0.0; });

  const std::string policy_help = "Policy bundles the verifier sent, by whether they applied.";
  registry_->AddCounterFunc("vigil_node_policy_bundles_total", policy_help,
                            {{"outcome", "applied"}}, [client] {
                              const Stats s = client->stats();
                              return static_cast<double>(s.policies_received - s.policies_refused);
                            });
  registry_->AddCounterFunc(
      "vigil_node_policy_bundles_total", policy_help, {{"outcome", "refused"}},
      [client] { return static_cast<double>(client->stats().policies_refused); });
  const std::string renewal_help =
      "Node certificate renewals, installed or failed (refused, unanswered, or not "
      "requestable).";
  registry_->AddCounterFunc(
      "vigil_node_certificate_renewals_total", renewal_help, {{"outcome", "installed"}},
      [client] { return static_cast<double>(client->stats().renewals_installed); });
  registry_->AddCounterFunc(
      "vigil_node_certificate_renewals_total", renewal_help, {{"outcome", "failed"}},
      [client] { return static_cast<double>(client->stats().renewals_failed); });

  const google::protobuf::EnumDescriptor* statuses = v1::TrustStatus_descriptor();
  for (int i = 0; i < statuses->value_count(); ++i) {
    const int number = statuses->value(i)->number();
    if (number == v1::TRUST_STATUS_UNSPECIFIED) continue;
    registry_->AddGaugeFunc(
        "vigil_node_verdict_status",
        "1 for the trust status of the latest verdict the verifier acknowledged, 0 for the "
        "others (all 0 before the first).",
        {{"status", metrics::EnumLabelValue(statuses->value(i)->name(), "TRUST_")}},
        [client, number] { return client->stats().last_status == number ? 1.0 : 0.0; });
  }
}

absl::StatusOr<std::unique_ptr<HttpListener>> ServeNodeMetrics(const std::string& address,
                                                               const metrics::Registry* registry) {
  if (address.empty()) return std::unique_ptr<HttpListener>();
  ASSIGN_OR_RETURN(std::unique_ptr<HttpListener> listener,
                   metrics::StartMetricsServer(address, registry));
  spdlog::info("metrics on {}", metrics::MetricsUrl(address, listener->port()));
  return listener;
}

}  // namespace vigil::node
