#include "node/agent/node_runner.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/pki.h"
#include "common/spiffe.h"
#include "common/status_macros.h"
#include "node/agent/ima_status.h"
#include "node/agent/measurer.h"
#include "node/agent/tpm_sealer.h"
#include "node/probes/bpf_event_source.h"
#include "node/probes/probe_object.h"
#include "spdlog/spdlog.h"

namespace vigil::node {

std::string ProgramTagsString(const v1::ProbeStatus& status) {
  std::map<std::string, std::string> sorted(status.program_tags().begin(),
                                            status.program_tags().end());
  std::string out;
  for (const auto& [name, tag] : sorted) {
    if (!out.empty()) out += ',';
    absl::StrAppend(&out, name, ":", tag);
  }
  return out;
}

absl::StatusOr<std::vector<ReferenceValue>> ComputeReferenceValues(const NodeConfig& config) {
  std::vector<ReferenceValue> out;
  out.push_back({kEventNodeStart, NodeStartDigest(), "start of a vigil-node process"});
  ASSIGN_OR_RETURN(Sha256Digest binary, Sha256File("/proc/self/exe"));
  out.push_back({kEventNodeBinary, binary, absl::StrCat("vigil-node binary (", kNodeVersion, ")")});
  if (config.enable_probes) {
    out.push_back({kEventBpfObject, Sha256(ProbeObjectBytes()), "BPF object vigil_probes"});
    ASSIGN_OR_RETURN(std::unique_ptr<EventSource> probes, MakeEventSource(config, {}));
    std::string tags = ProgramTagsString(probes->Status());
    out.push_back({kEventBpfProgramTags, Sha256(tags), "BPF program tags on this kernel"});
  }
  if (config.policy_path.empty()) {
    out.push_back({kEventNoPolicy, NoPolicyDigest(), "no policy bundle"});
  } else {
    ASSIGN_OR_RETURN(Sha256Digest policy, Sha256File(config.policy_path));
    out.push_back({kEventPolicyBundle, policy, absl::StrCat("policy bundle ", config.policy_path)});
  }
  out.push_back({kEventTpmRestart, TpmRestartDigest(), "new log epoch after a TPM Restart"});
  return out;
}

std::string RenderReferenceValues(const std::vector<ReferenceValue>& values) {
  YAML::Emitter yaml;
  yaml << YAML::BeginMap << YAML::Key << "reference_values" << YAML::Value << YAML::BeginSeq;
  for (const ReferenceValue& v : values) {
    yaml << YAML::BeginMap << YAML::Key << "type" << YAML::Value << v.type << YAML::Key << "digest"
         << YAML::Value << HexEncode(v.digest) << YAML::Key << "description" << YAML::Value
         << YAML::DoubleQuoted << v.description << YAML::EndMap;
  }
  yaml << YAML::EndSeq << YAML::EndMap;
  return absl::StrCat(
      "# Reference values of ", kNodeVersion,
      ": what a genuine start of this build measures\n"
      "# (vigil-verifier --reference-values). Pin them per release; regenerate for a new\n"
      "# build, policy bundle or kernel (the BPF program tags are the kernel's).\n",
      yaml.c_str(), "\n");
}

absl::StatusOr<std::unique_ptr<EvidenceSealer>> MakeSealer(const NodeConfig& config) {
  if (config.tcti == "none") {
    spdlog::warn(
        "running without a TPM: the verifier will refuse this node's evidence as "
        "unquoted");
    return std::make_unique<UnquotedSealer>();
  }
  // Opens the TPM, enrolls when the node has no usable certificate, measures this start.
  ASSIGN_OR_RETURN(std::unique_ptr<TpmEvidenceSealer> sealer, TpmEvidenceSealer::Open(config));
  return std::unique_ptr<EvidenceSealer>(std::move(sealer));
}

absl::Status MeasureStartSequence(Measurer& measurer, const EventSource* probes,
                                  const std::string& policy_path) {
  // In the order the verifier requires. The verifier learns exactly which probe runs: the
  // object's bytes and the kernel's tags of the programs it loaded. Without probes there are
  // no BPF records and the verifier never affirms this node's runtime claims.
  if (probes != nullptr) {
    RETURN_IF_ERROR(measurer.MeasureBpfObject("vigil_probes", ProbeObjectBytes()));
    RETURN_IF_ERROR(measurer.MeasureBpfProgramTags(ProgramTagsString(probes->Status())));
  }
  return measurer.MeasurePolicy(policy_path);
}

absl::StatusOr<std::unique_ptr<EventSource>> MakeEventSource(const NodeConfig& config,
                                                             const std::vector<int>& seed_pids) {
  if (!config.enable_probes) return std::unique_ptr<EventSource>();
  ProbeOptions opts;
  opts.selectors = config.selectors;
  opts.seed_pids = seed_pids;
  opts.syscall_entry_hooks = config.syscall_entry_hooks;
  opts.file_events = true;  // the workload scope
  ASSIGN_OR_RETURN(std::unique_ptr<BpfEventSource> source, BpfEventSource::Start(opts));
  return std::unique_ptr<EventSource>(std::move(source));
}

absl::StatusOr<std::string> NodeIdFromCertificate(const std::string& cert_path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(cert_path));
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(pem));
  ASSIGN_OR_RETURN(std::vector<std::string> uris, UriSans(cert.get()));
  for (const std::string& uri : uris) {
    auto id = ParseSpiffeId(uri);
    if (id.ok() && id->role == SpiffeRole::kNode) return id->name;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(cert_path, ": no spiffe://<trust-domain>/vigil/node/<id> URI SAN"));
}

std::string EffectiveCertPath(const NodeConfig& config) {
  return config.cert_path.empty() ? config.state_dir + "/node.crt" : config.cert_path;
}

std::string EffectiveSpoolDir(const NodeConfig& config) {
  return config.spool_dir.empty() ? config.state_dir + "/spool" : config.spool_dir;
}

std::string EffectiveKeyPath(const NodeConfig& config) {
  return config.key_path.empty() ? config.state_dir + "/node.key" : config.key_path;
}

absl::StatusOr<NodeInfo> ReadNodeInfo(const NodeConfig& config) {
  ASSIGN_OR_RETURN(NodeInfo info, ReadLocalNodeInfo());
  ASSIGN_OR_RETURN(info.node_id, NodeIdFromCertificate(EffectiveCertPath(config)));
  info.node_version = kNodeVersion;
  if (!config.policy_path.empty()) {
    ASSIGN_OR_RETURN(Sha256Digest policy, Sha256File(config.policy_path));
    info.policy_digest = HexEncode(policy);
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  info.ima = ReadImaStatus(ec ? std::string() : exe.string());
  if (!info.ima.present()) spdlog::info("IMA absent: {}", info.ima.absent_reason());
  return info;
}

absl::StatusOr<std::unique_ptr<NodeRunner>> NodeRunner::Create(const NodeConfig& config,
                                                               NodeProcessHooks hooks) {
  if (config.selectors.empty()) {
    return absl::InvalidArgumentError("no selectors: nothing to monitor (use --select)");
  }
  std::unique_ptr<NodeRunner> r(new NodeRunner());
  r->config_ = config;
  // Before the TPM is touched: one process at a time extends this node's PCR and log.
  ASSIGN_OR_RETURN(r->lock_, StateDirLock::Acquire(config.state_dir));
  // A spool that cannot be written is a start-up error, not a surprise during an outage.
  ASSIGN_OR_RETURN(r->spool_,
                   spool::Spool::Open({EffectiveSpoolDir(config), config.spool_max_bytes}));
  // The TPM sealer first: enrollment writes the certificate checked just below.
  ASSIGN_OR_RETURN(r->sealer_, MakeSealer(config));
  const std::string cert = EffectiveCertPath(config), key = EffectiveKeyPath(config);
  // Fail now, with the file named, rather than on every reconnect. The credentials watch
  // the files: the certificate the stream renews is presented from the next connection on.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   MakeNodeChannelCredentials(config.ca_cert_path, cert, key));

  ASSIGN_OR_RETURN(NodeInfo info, ReadNodeInfo(config));

  r->matcher_ = std::make_unique<ProcessMatcher>(config.selectors);
  r->matcher_->set_excluded_pids(std::move(hooks.own_pids));
  SnapshotOptions snap;
  snap.seccomp_syscalls = config.seccomp_syscalls;
  snap.sensitive_paths = config.sensitive_paths;
  snap.filter_reader = std::move(hooks.filter_reader);
  r->snapshotter_ = std::make_unique<Snapshotter>(snap, &r->hashes_);

  std::vector<int> seed;
  for (const MatchedProcess& m : r->matcher_->Scan()) seed.push_back(m.pid);
  ASSIGN_OR_RETURN(r->events_, MakeEventSource(config, seed));
  if (auto* tpm_sealer = dynamic_cast<TpmEvidenceSealer*>(r->sealer_.get());
      tpm_sealer != nullptr) {
    RETURN_IF_ERROR(
        MeasureStartSequence(tpm_sealer->measurer(), r->events_.get(), config.policy_path));
    tpm_sealer->set_quote_observer(r->metrics_.QuoteObserver());
  }
  r->builder_ = std::make_unique<ReportBuilder>(info, r->matcher_.get(), r->snapshotter_.get(),
                                                r->metrics_.Meter(r->events_.get()));
  r->builder_->set_snapshot_observer(r->metrics_.SnapshotObserver());
  // The workload scope: fed on the probes' consumer thread, while the processes still run.
  r->dpkg_ = std::make_unique<DpkgDatabase>();
  r->scope_ = std::make_unique<ScopeTracker>(ScopeLimits{}, &r->hashes_, r->dpkg_.get());
  auto* bpf_events = dynamic_cast<BpfEventSource*>(r->events_.get());
  if (bpf_events != nullptr) {
    bpf_events->SetObserver(
        [scope = r->scope_.get()](const v1::RuntimeEvent& e) { scope->ObserveEvent(e); });
  }
  r->builder_->set_scope_tracker(r->scope_.get(), /*feed_events=*/bpf_events == nullptr);
  r->builder_->set_self_state_source(std::move(hooks.self_state));
  // The verifier's bundles replace the --policy file the node started with.
  PolicyTargets targets;
  targets.matcher = r->matcher_.get();
  targets.snapshotter = r->snapshotter_.get();
  targets.builder = r->builder_.get();
  targets.probes = dynamic_cast<BpfEventSource*>(r->events_.get());
  if (auto* tpm_sealer = dynamic_cast<TpmEvidenceSealer*>(r->sealer_.get());
      tpm_sealer != nullptr) {
    targets.measurer = &tpm_sealer->measurer();
  }
  r->policies_ = std::make_unique<PolicyApplier>(targets, info.policy_digest);

  AttestClientOptions client;
  client.address = config.verifier_address;
  client.fallback_addresses = config.fallback_verifier_addresses;
  client.keepalive.time = absl::Milliseconds(config.keepalive_time_ms);
  client.keepalive.timeout = absl::Milliseconds(config.keepalive_timeout_ms);
  client.credentials =
      [credentials]() -> absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> {
    return credentials;
  };
  client.max_message_bytes = config.max_message_bytes;
  client.default_report_interval = absl::Milliseconds(config.report_interval_ms);
  client.min_report_gap = absl::Milliseconds(config.min_report_gap_ms);
  if (config.cert_renew_below_fraction > 0) {
    client.renewal.cert_path = cert;
    client.renewal.key_path = key;
    client.renewal.ca_cert_path = config.ca_cert_path;
    client.renewal.renew_below_fraction = config.cert_renew_below_fraction;
  }
  r->spool_link_ = std::make_unique<SpoolLink>(r->spool_.get(), r->builder_.get(), targets.measurer,
                                               absl::Milliseconds(config.spool_batch_ms));
  r->client_ = std::make_unique<AttestClient>(client, r->builder_.get(), r->sealer_.get(),
                                              r->policies_.get(), r->spool_link_.get());
  r->metrics_.WatchLosses(r->events_.get(), r->builder_.get());
  r->metrics_.WatchSpool(r->spool_.get());
  r->metrics_.WatchClient(r->client_.get());
  ASSIGN_OR_RETURN(r->metrics_listener_,
                   ServeNodeMetrics(config.metrics_address, &r->metrics_registry_));
  spdlog::info("node {} monitoring {} selector(s), {} process(es) now; probes {}", info.node_id,
               config.selectors.size(), seed.size(), r->events_ ? "on" : "off");
  return r;
}

absl::Status NodeRunner::Run() { return client_->Run(); }

void NodeRunner::Stop() { client_->Shutdown(); }

}  // namespace vigil::node
