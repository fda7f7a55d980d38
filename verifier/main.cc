// vigil-verifier: appraises the evidence vigil-nodes stream to it over mutual TLS.

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/allocator/allocator.h"
#include "common/http/http_listener.h"
#include "common/logging.h"
#include "common/metrics/metrics.h"
#include "common/metrics/metrics_server.h"
#include "common/pki.h"
#include "verifier/admission_server.h"
#include "verifier/attestation_service.h"
#include "verifier/certificate_renewer.h"
#include "verifier/config.h"
#include "verifier/console/console_server.h"
#include "verifier/ek_verifier.h"
#include "verifier/enrollment_service.h"
#include "verifier/fleet_service.h"
#include "verifier/node_registry.h"
#include "verifier/policy_loader.h"
#include "verifier/policy_set.h"
#include "verifier/quote_appraiser.h"
#include "verifier/reference_values.h"
#include "verifier/result_sink.h"
#include "verifier/results/ear_signer.h"
#include "verifier/results/webhook_notifier.h"
#include "verifier/runtime_appraiser.h"
#include "verifier/server.h"
#include "verifier/spool_batch_appraiser.h"
#include "verifier/state_durable_sink.h"
#include "verifier/store/postgres_ear_keys.h"
#include "verifier/store/postgres_store.h"
#include "verifier/store/postgres_util.h"
#include "verifier/store/sqlite_store.h"
#include "verifier/verifier_metrics.h"
#include "verifier/webhook_feed.h"

namespace {

using vigil::verifier::VerifierConfig;

// A CLI11 validator for absl durations ("5s", "500ms", "1m"), positive unless `zero_allowed`.
CLI::Validator DurationValidator(bool zero_allowed = false) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        absl::Duration d;
        if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() ||
            (d == absl::ZeroDuration() && !zero_allowed)) {
          return absl::StrCat("expected a ", zero_allowed ? "" : "positive ",
                              "duration such as 5s or 500ms, got \"", text, "\"");
        }
        return "";
      },
      "DURATION");
}

absl::Duration ParsedDuration(const std::string& text) {
  absl::Duration d;
  absl::ParseDuration(text, &d);  // Validated by DurationValidator.
  return d;
}

// Waits for SIGTERM or SIGINT (blocked in every thread before gRPC starts any).
int AwaitStopSignal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

// Everything a running verifier holds, wired from its config. Members refer to earlier ones
// (and go away in the reverse order), so it is built in place and never moved.
struct Verifier {
  vigil::verifier::DiscardingResultSink discarding_sink;
  vigil::verifier::ResultSink* sink = &discarding_sink;
  // Counted from the start; served when --metrics-address is given. Declared before what it
  // meters, so the metered appraiser and sink outlive the service that calls them.
  vigil::metrics::Registry metrics_registry;
  vigil::verifier::VerifierMetrics metrics{&metrics_registry};
  std::unique_ptr<vigil::verifier::Store> store;
  std::unique_ptr<vigil::verifier::NodeRegistry> registry;
  // What the Attest streams record into: `sink` once the node's appraisal state is durable.
  std::unique_ptr<vigil::verifier::StateDurableSink> state_sink;
  vigil::verifier::ReferenceValues reference_values;
  vigil::verifier::BootReferenceValues boot_reference_values;
  vigil::verifier::PolicySet policies;
  std::unique_ptr<vigil::verifier::QuoteAppraiser> appraiser;
  // With --store: where the replicas publish their EAR keys' public halves.
  std::unique_ptr<vigil::verifier::PostgresEarKeyTable> ear_key_table;
  std::unique_ptr<vigil::verifier::EarSigner> ear_signer;
  std::function<bool(const std::string&)> is_revoked;
  std::unique_ptr<vigil::verifier::RuntimeAppraiser> runtime_appraiser;
  // Feeds the spool ledger from the stream's verified logs; appraises spooled batches.
  std::unique_ptr<vigil::verifier::SpoolAppraisal> spool;
  std::unique_ptr<vigil::verifier::WebhookNotifier> webhooks;
  std::unique_ptr<vigil::verifier::WebhookFeed> webhook_feed;
  // Same-key renewal of node certificates on the Attest stream needs the CA key.
  absl::StatusOr<vigil::CaMaterial> renewal_ca = absl::FailedPreconditionError("no --pki-dir");
  std::unique_ptr<vigil::verifier::CertificateRenewerImpl> renewer;
  std::unique_ptr<vigil::verifier::AttestationService> attestation_service;
  vigil::verifier::ServerOptions server_options;
  // Enrollment: EK trust, credential activation, node certificates signed by the CA.
  absl::StatusOr<vigil::CaMaterial> ca = absl::FailedPreconditionError("no CA");
  std::unique_ptr<vigil::verifier::EkVerifier> ek_verifier;
  std::unique_ptr<vigil::verifier::Enroller> enroller;
  std::unique_ptr<vigil::verifier::EnrollmentService> enrollment_service;
  std::unique_ptr<vigil::verifier::FleetService> fleet_service;
  std::unique_ptr<vigil::verifier::AdmissionServer> admission;
  std::unique_ptr<vigil::verifier::console::ConsoleServer> console;
  std::unique_ptr<vigil::HttpListener> metrics_listener;
};

// The functions below log what fails and return the exit code: 0 to go on, 2 for a bad flag
// or a file named by one, 1 for any other failure.

// The result store (SQLite at --db, or PostgreSQL at --store) and the node registry.
int OpenStores(const VerifierConfig& config, Verifier* v) {
  vigil::verifier::StoreOptions store_options;
  store_options.retention_max_age = config.retention_max_age;
  store_options.retention_max_verdicts_per_node = config.retention_max_verdicts_per_node;
  store_options.commit_window = config.commit_window;
  vigil::verifier::SqliteStore* sqlite_store = nullptr;
  if (!config.store_url.empty()) {
    // Shared by every replica; a server that cannot be reached now is a startup error.
    absl::StatusOr<std::unique_ptr<vigil::verifier::PostgresStore>> opened =
        vigil::verifier::PostgresStore::Open(config.store_url, store_options);
    if (!opened.ok()) {
      spdlog::error("{}", std::string(opened.status().message()));
      return 1;
    }
    spdlog::info("store: PostgreSQL at {}", vigil::verifier::pg::DescribeTarget(config.store_url));
    v->sink = opened->get();
    v->store = *std::move(opened);
  } else if (!config.db_path.empty()) {
    // The store is the ResultSink and backs the Fleet API. Opened first: it creates the file
    // 0600 and its directory 0700.
    absl::StatusOr<std::unique_ptr<vigil::verifier::SqliteStore>> opened =
        vigil::verifier::SqliteStore::Open(config.db_path, store_options);
    if (!opened.ok()) {
      spdlog::error("{}", std::string(opened.status().message()));
      return 1;
    }
    v->sink = opened->get();
    sqlite_store = opened->get();
    v->store = *std::move(opened);
  } else {
    spdlog::warn("no --db or --store: verdicts are only logged and the Fleet API is off");
  }
  if (v->store != nullptr && config.retention_max_age == absl::ZeroDuration() &&
      config.retention_max_verdicts_per_node == 0) {
    // Every report adds a verdict row (~6 KB with a realistic policy): a fleet of 10,000
    // nodes reporting every minute adds ~90 GB a day.
    spdlog::warn(
        "store: no retention limit, so every verdict is kept and the store grows with each "
        "report (~6 KB); set --retention-max-age or --retention-per-node (docs/store.md)");
  }
  // Enrolled nodes (EK/AK bindings, approvals, per-AK clocks, measurement logs) share the
  // SQLite file with the results; without --db they last as long as the process.
  // With --store they are in PostgreSQL, shared by the replicas.
  absl::StatusOr<std::unique_ptr<vigil::verifier::NodeRegistry>> registry =
      !config.store_url.empty() ? vigil::verifier::NodeRegistry::OpenPostgres(config.store_url)
                                : vigil::verifier::NodeRegistry::Open(
                                      config.db_path.empty() ? ":memory:" : config.db_path);
  if (!registry.ok()) {
    spdlog::error("{}", std::string(registry.status().message()));
    return 1;
  }
  v->registry = *std::move(registry);
  v->registry->SetCommitWindow(config.commit_window);
  if (sqlite_store != nullptr) {
    // One file: the nodes' appraisal state commits in the store's transactions, with the
    // verdicts it was appraised for.
    if (absl::Status st = v->registry->CommitWith(sqlite_store); !st.ok()) {
      spdlog::error("{}", st.ToString());
      return 1;
    }
  }
  v->state_sink = std::make_unique<vigil::verifier::StateDurableSink>(v->sink, v->registry.get());
  return 0;
}

// Loads `*values` with T::Load from `path`, or warns `missing` when no path is given.
template <typename T>
int LoadIfGiven(const std::string& path, std::string_view missing, T* values) {
  if (path.empty()) {
    spdlog::warn("{}", missing);
    return 0;
  }
  absl::StatusOr<T> loaded = T::Load(path);
  if (!loaded.ok()) {
    spdlog::error("{}", std::string(loaded.status().message()));
    return 2;
  }
  *values = *std::move(loaded);
  return 0;
}

// What evidence is compared with: reference values, boot reference values, policies (the
// stored ones merged with --policy files).
int LoadReferences(const VerifierConfig& config, Verifier* v) {
  if (int code = LoadIfGiven(config.reference_values_path,
                             "no --reference-values: every measurement is unknown, quoted "
                             "evidence fails",
                             &v->reference_values);
      code != 0) {
    return code;
  }
  if (int code = LoadIfGiven(config.boot_reference_values_path,
                             "no --boot-reference-values: boot PCRs 0-7 are quoted but not "
                             "compared; verdicts say the boot chain is not affirmed",
                             &v->boot_reference_values);
      code != 0) {
    return code;
  }
  absl::StatusOr<std::vector<vigil::policy::Policy>> loaded =
      vigil::verifier::LoadStartupPolicies(v->store.get(), config.policy_paths);
  if (!loaded.ok()) {
    spdlog::error("policies: {}", std::string(loaded.status().message()));
    return 2;
  }
  if (absl::Status st = v->policies.Reset(*std::move(loaded)); !st.ok()) {
    spdlog::error("policies: {}", std::string(st.message()));
    return 2;
  }
  auto current = v->policies.Current();
  if (current->policies.empty()) {
    spdlog::warn(
        "no reference policy: verdicts speak for the evidence only (give --policy or "
        "`vigilctl policy apply`)");
  } else {
    spdlog::info("appraising under {} policies, bundle sha256:{}", current->policies.size(),
                 current->bundle.sha256().substr(0, 12));
  }
  return 0;
}

// EAR signing keys: --ear-key-dir, or next to the store.
int OpenEarSigner(const VerifierConfig& config, Verifier* v) {
  std::string key_dir = config.ear_key_dir;
  if (key_dir.empty() && !config.db_path.empty()) {
    key_dir = (std::filesystem::path(config.db_path).parent_path() / "ear-keys").string();
  }
  if (key_dir.empty()) {
    spdlog::warn("no --ear-key-dir and no --db: verdicts are not signed");
    return 0;
  }
  vigil::verifier::EarSignerConfig ear;
  ear.key_dir = key_dir;
  ear.max_key_age = config.ear_key_max_age;
  ear.grace = config.ear_key_grace;
  ear.verifier_id.build = "vigil-verifier 0.1.0";
  if (!config.store_url.empty()) {
    // Every replica's JWKS serves every replica's keys; private keys stay in key_dir.
    auto table = vigil::verifier::PostgresEarKeyTable::Open(config.store_url);
    if (!table.ok()) {
      spdlog::error("EAR signing keys: {}", std::string(table.status().message()));
      return 1;
    }
    v->ear_key_table = *std::move(table);
    ear.published = v->ear_key_table.get();
  }
  auto signer = vigil::verifier::EarSigner::Open(ear);
  if (!signer.ok()) {
    spdlog::error("EAR signing keys: {}", std::string(signer.status().message()));
    return 1;
  }
  v->ear_signer = *std::move(signer);
  spdlog::info("signing results (EAR, ES256) with key {}", v->ear_signer->current_kid());
  return 0;
}

// The quote appraiser, the EAR signer and the runtime appraiser over them.
int AddAppraisers(const VerifierConfig& config, Verifier* v) {
  absl::StatusOr<std::unique_ptr<vigil::verifier::QuoteAppraiser>> appraiser =
      vigil::verifier::QuoteAppraiser::Create(
          v->registry.get(), &v->reference_values, &v->boot_reference_values,
          {config.measurement_pcr, config.allow_resettable_pcr}, &v->policies);
  if (!appraiser.ok()) {
    spdlog::error("{}", std::string(appraiser.status().message()));
    return 2;
  }
  v->appraiser = *std::move(appraiser);
  if (int code = OpenEarSigner(config, v); code != 0) return code;
  if (v->store != nullptr) {
    v->is_revoked = [s = v->store.get()](const std::string& node_id) {
      return s->IsRevoked(node_id);
    };
  }
  vigil::verifier::RuntimeAppraiser::Options runtime_options;
  runtime_options.policies = &v->policies;
  runtime_options.signer = v->ear_signer.get();
  runtime_options.hardware_claim = config.ek_tofu ? 32 : 2;
  runtime_options.is_revoked = v->is_revoked;
  runtime_options.is_tpm_simulated = vigil::verifier::TpmSimulatedIn(v->registry.get());
  runtime_options.require_node_self_protection = config.require_node_self_protection;
  v->runtime_appraiser =
      std::make_unique<vigil::verifier::RuntimeAppraiser>(v->appraiser.get(), runtime_options);
  v->spool = std::make_unique<vigil::verifier::SpoolAppraisal>(
      v->registry.get(), v->runtime_appraiser.get(), runtime_options);
  return 0;
}

// Webhooks: every status change the store commits, POSTed without blocking appraisal.
int AddWebhooks(const VerifierConfig& config, Verifier* v) {
  if (config.webhook_urls.empty()) return 0;
  if (v->store == nullptr) {
    spdlog::error(
        "--webhook needs --db or --store: webhooks are fed from the store's status changes");
    return 2;
  }
  std::string secret;
  if (!config.webhook_secret_path.empty()) {
    absl::StatusOr<std::string> read = vigil::ReadFileToString(config.webhook_secret_path);
    if (read.ok()) secret = std::string(absl::StripTrailingAsciiWhitespace(*read));
    if (secret.empty()) {
      spdlog::error("--webhook-secret-file {}: unreadable or empty", config.webhook_secret_path);
      return 2;
    }
  }
  vigil::verifier::WebhookConfig webhook_config;
  for (const std::string& url : config.webhook_urls) {
    webhook_config.targets.push_back({url, secret});
  }
  webhook_config.ca_file = config.webhook_ca_path;
  auto notifier = vigil::verifier::WebhookNotifier::Create(std::move(webhook_config));
  if (!notifier.ok()) {
    spdlog::error("webhooks: {}", std::string(notifier.status().message()));
    return 2;
  }
  v->webhooks = *std::move(notifier);
  v->metrics.WatchWebhooks(v->webhooks.get(), config.webhook_urls.size());
  v->webhook_feed =
      std::make_unique<vigil::verifier::WebhookFeed>(v->store.get(), v->webhooks.get());
  spdlog::info("posting status changes to {} webhook(s){}", config.webhook_urls.size(),
               secret.empty() ? "" : ", signed with HMAC-SHA256");
  return 0;
}

// The Attestation service, with same-key certificate renewal when the CA key is at hand.
void AddAttestation(const VerifierConfig& config, Verifier* v) {
  vigil::verifier::AttestationOptions attestation;
  attestation.is_revoked = v->is_revoked;
  attestation.is_tpm_simulated = vigil::verifier::TpmSimulatedIn(v->registry.get());
  attestation.policies = &v->policies;
  attestation.trust_domain = config.trust_domain;
  attestation.report_interval = config.report_interval;
  attestation.nonce_ttl = config.nonce_ttl;
  attestation.pcr_selection = config.pcr_selection;
  attestation.appraisal_threads = config.appraisal_threads;
  attestation.appraisal_queue = config.appraisal_queue;
  attestation.limits = config.stream_limits;
  if (!config.pki_dir.empty()) v->renewal_ca = vigil::LoadCa(config.pki_dir);
  if (v->renewal_ca.ok()) {
    // With approval as the only way in, a withdrawn approval also stops renewal.
    v->renewer = std::make_unique<vigil::verifier::CertificateRenewerImpl>(
        &*v->renewal_ca, v->registry.get(),
        vigil::verifier::CertificateRenewerImpl::Options{
            config.node_cert_lifetime, config.ek_ca_bundle_path.empty() && !config.ek_tofu});
    attestation.renewer = v->renewer->AsHook();
  } else {
    spdlog::warn("node certificate renewal is off: {}",
                 std::string(v->renewal_ca.status().message()));
  }
  attestation.spool_batches = v->spool->batches();
  v->attestation_service = std::make_unique<vigil::verifier::AttestationService>(
      attestation, v->metrics.Meter(v->spool->stream_appraiser()),
      v->metrics.Meter(v->state_sink.get()));
  v->metrics.WatchAttestation(v->attestation_service.get());
  v->server_options.services = {v->attestation_service.get()};
}

// The Enrollment service, when --enroll-listen is given.
int AddEnrollment(const VerifierConfig& config, Verifier* v) {
  if (config.enroll_listen_address.empty()) return 0;
  if (config.pki_dir.empty()) {
    spdlog::error("--enroll-listen needs --pki-dir: its CA key signs node certificates");
    return 2;
  }
  v->ca = vigil::LoadCa(config.pki_dir);
  auto ek = vigil::verifier::EkVerifier::Create(
      {config.ek_ca_bundle_path, config.ek_tofu, config.accept_simulated_tpm_ca_path},
      v->registry.get());
  if (!v->ca.ok() || !ek.ok()) {
    spdlog::error("{}", std::string((v->ca.ok() ? ek.status() : v->ca.status()).message()));
    return 1;
  }
  v->ek_verifier = *std::move(ek);
  vigil::verifier::Enroller::Options enroll_options;
  enroll_options.node_cert_lifetime = config.node_cert_lifetime;
  enroll_options.max_pending = config.max_pending_enrollments;
  enroll_options.max_pending_per_ek = config.max_pending_enrollments_per_ek;
  // A revoked node enrolls again only after an operator approves it.
  enroll_options.is_revoked = v->is_revoked;
  v->enroller = std::make_unique<vigil::verifier::Enroller>(&*v->ca, v->registry.get(),
                                                            v->ek_verifier.get(), enroll_options);
  v->enrollment_service = std::make_unique<vigil::verifier::EnrollmentService>(v->enroller.get());
  v->metrics.WatchEnroller(v->enroller.get());
  v->server_options.enroll_services = {v->enrollment_service.get()};
  return 0;
}

// The Fleet service, when there is a store.
void AddFleet(const VerifierConfig& config, Verifier* v) {
  if (v->store == nullptr) return;
  vigil::verifier::FleetServiceOptions fleet_options;
  fleet_options.trust_domain = config.trust_domain;
  fleet_options.store = v->store.get();
  fleet_options.registry = v->registry.get();
  if (!config.ek_ca_bundle_path.empty() != config.ek_tofu) {
    fleet_options.unapproved_ek_trust = config.ek_tofu ? "tofu" : "certificate";
  }
  fleet_options.policies = &v->policies;
  fleet_options.signer = v->ear_signer.get();
  // A page or an export must also fit what this listener sends (--max-message-bytes).
  fleet_options.max_page_bytes =
      std::min(fleet_options.max_page_bytes, config.max_message_bytes / 4 * 3);
  // A revoked node's open streams end at once; is_revoked refuses it from then on.
  fleet_options.on_revoked = [attestation =
                                  v->attestation_service.get()](const std::string& node_id) {
    attestation->CloseNode(
        node_id, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              "this node was revoked; an operator must approve it again"));
  };
  v->fleet_service = std::make_unique<vigil::verifier::FleetService>(std::move(fleet_options));
  v->server_options.services.push_back(v->fleet_service.get());
}

// The Kubernetes admission webhook's HTTPS listener, when --admission-listen is given.
int StartAdmission(const VerifierConfig& config, Verifier* v) {
  if (config.admission_listen_address.empty()) return 0;
  if (v->fleet_service == nullptr) {
    spdlog::error(
        "--admission-listen needs --db or --store: admission decisions come from stored results");
    return 2;
  }
  vigil::verifier::AdmissionServerOptions options;
  options.address = config.admission_listen_address;
  options.cert_path =
      config.admission_cert_path.empty() ? config.cert_path : config.admission_cert_path;
  options.key_path =
      config.admission_key_path.empty() ? config.key_path : config.admission_key_path;
  options.client_ca_path = config.admission_client_ca_path;
  options.review.max_age = config.admission_max_age;
  options.review.workload_label = config.admission_workload_label;
  absl::StatusOr<std::unique_ptr<vigil::verifier::AdmissionServer>> admission =
      vigil::verifier::AdmissionServer::Start(options, v->fleet_service.get());
  if (!admission.ok()) {
    spdlog::error("{}", std::string(admission.status().message()));
    return 1;
  }
  v->admission = *std::move(admission);
  spdlog::info(
      "admission webhook on {}:{} (HTTPS, POST {}{})",
      config.admission_listen_address.substr(0, config.admission_listen_address.rfind(':')),
      v->admission->port(), vigil::verifier::AdmissionServer::kPath,
      options.client_ca_path.empty() ? "" : ", client certificates required");
  return 0;
}

// The web console's HTTPS listener, when --console-listen is given.
int StartConsole(const VerifierConfig& config, Verifier* v) {
  if (config.console_listen_address.empty()) return 0;
  if (v->fleet_service == nullptr) {
    spdlog::error("--console-listen needs --db or --store: the console shows stored results");
    return 2;
  }
  vigil::verifier::console::ConsoleServerOptions options;
  options.address = config.console_listen_address;
  options.cert_path =
      config.console_cert_path.empty() ? config.cert_path : config.console_cert_path;
  options.key_path = config.console_key_path.empty() ? config.key_path : config.console_key_path;
  options.client_ca_path = config.ca_cert_path;
  options.trust_domain = config.trust_domain;
  options.sessions.lifetime = config.console_session_lifetime;
  options.max_streams = config.console_max_streams;
  absl::StatusOr<std::unique_ptr<vigil::verifier::console::ConsoleServer>> console =
      vigil::verifier::console::ConsoleServer::Start(options, v->fleet_service.get(),
                                                     v->store.get());
  if (!console.ok()) {
    spdlog::error("{}", std::string(console.status().message()));
    return 1;
  }
  v->console = *std::move(console);
  spdlog::info("web console on https://{}:{}/",
               config.console_listen_address.substr(0, config.console_listen_address.rfind(':')),
               v->console->port());
  return 0;
}

// Serves until SIGTERM or SIGINT, then closes the streams and shuts the server down.
int Serve(const VerifierConfig& config, Verifier* v) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<vigil::verifier::VerifierServer>> server =
      vigil::verifier::VerifierServer::Start(v->server_options);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  spdlog::info("vigil-verifier listening on {} (mutual TLS 1.3, trust domain {})",
               config.listen_address, config.trust_domain);
  if (!config.enroll_listen_address.empty()) {
    spdlog::info("enrollment listener on {} (server-authenticated TLS 1.3)",
                 config.enroll_listen_address);
  }
  if (!config.metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<vigil::HttpListener>> metrics =
        vigil::metrics::StartMetricsServer(config.metrics_address, &v->metrics_registry);
    if (!metrics.ok()) {
      spdlog::error("{}", std::string(metrics.status().message()));
      (*server)->Shutdown(absl::Now());
      return 1;
    }
    v->metrics_listener = *std::move(metrics);
    spdlog::info("metrics on {}",
                 vigil::metrics::MetricsUrl(config.metrics_address, v->metrics_listener->port()));
  }
  if (int code = StartAdmission(config, v); code != 0) {
    (*server)->Shutdown(absl::Now());
    return code;
  }
  if (int code = StartConsole(config, v); code != 0) {
    (*server)->Shutdown(absl::Now());
    return code;
  }

  int sig = AwaitStopSignal(signals);
  spdlog::info("{}: closing streams and shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  v->console.reset();
  v->admission.reset();
  v->metrics_listener.reset();
  v->attestation_service->CloseStreams();
  if (v->fleet_service != nullptr) v->fleet_service->CloseWatchers();
  (*server)->Shutdown(absl::Now() + config.shutdown_grace);
  spdlog::info("vigil-verifier stopped");
  spdlog::default_logger()->flush();
  return 0;
}

int Run(VerifierConfig config) {
  if (absl::Status s = vigil::verifier::ResolvePkiDir(config); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  if (config.trust_domain.empty()) {
    spdlog::error("no trust domain: give --trust-domain or --pki-dir");
    return 2;
  }
  absl::StatusOr<vigil::TlsFiles> tls = vigil::verifier::ServerTlsFiles(config);
  if (!tls.ok()) {
    spdlog::error("{}", std::string(tls.status().message()));
    return 1;
  }

  Verifier v;
  if (int code = OpenStores(config, &v); code != 0) return code;
  if (int code = LoadReferences(config, &v); code != 0) return code;
  if (int code = AddAppraisers(config, &v); code != 0) return code;
  if (int code = AddWebhooks(config, &v); code != 0) return code;
  AddAttestation(config, &v);
  vigil::verifier::ServerOptions& options = v.server_options;
  options.listen_address = config.listen_address;
  options.enroll_listen_address = config.enroll_listen_address;
  options.tls = *std::move(tls);
  options.max_message_bytes = config.max_message_bytes;
  options.enroll_max_message_bytes = config.enroll_max_message_bytes;
  options.keepalive = config.keepalive;
  if (int code = AddEnrollment(config, &v); code != 0) return code;
  AddFleet(config, &v);
  return Serve(config, &v);
}

// glibc gives threads that allocate at once arenas of their own, up to eight per core, and
// memory freed in one arena serves only that arena: with gRPC's threads, the appraisal pool
// and the writers all allocating per report, a verifier holding thousands of streams kept
// 2-4 KiB more per node than with one arena per core (vigil-fleetsim, BENCHMARKS.md). Called
// before any thread starts; MALLOC_ARENA_MAX in the environment decides when it is set. An
// allocator that is not glibc's (a sanitizer's, say) refuses the setting: nothing to bound.
void BoundMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  const int arenas = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  if (mallopt(M_ARENA_MAX, arenas) != 1) {
    spdlog::debug("malloc arenas not bounded: the allocator refused M_ARENA_MAX");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every absl::Mutex acquisition would also update
  // a process-wide lock-order graph under one global lock: with thousands of streams that
  // serializes the appraisal threads and costs a few percent of the CPU (perf, vigil-fleetsim).
  // Lock order is checked where it belongs, in the tests.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  vigil::LogToStderr();
  // mimalloc (the default build's malloc) keeps a heap per thread: only glibc's is bounded.
  const std::string allocator = vigil::MemoryAllocator();
  if (allocator == vigil::kSystemMalloc) BoundMallocArenas();
  CLI::App app{
      "vigil-verifier: accepts vigil-node evidence streams over mutual TLS 1.3, checks each\n"
      "report's freshness and identity, appraises it and records the verdict.",
      "vigil-verifier"};
  VerifierConfig config;
  std::string report_interval = "5s";
  std::string nonce_ttl = "60s";
  std::string shutdown_grace = "5s";
  std::string node_cert_lifetime = "24h";
  std::string tls_refresh = "1m";
  const std::set<std::string> levels = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};

  app.add_option("--listen", config.listen_address, "Mutual-TLS listener (host:port)")
      ->capture_default_str();
  app.add_option("--enroll-listen", config.enroll_listen_address,
                 "Server-authenticated enrollment listener (host:port); none when empty");
  app.add_option("--pki-dir", config.pki_dir,
                 "Directory from `vigilctl pki init`: ca.crt, verifier.crt, verifier.key, "
                 "trust-domain")
      ->check(CLI::ExistingDirectory);
  app.add_option("--ca", config.ca_cert_path, "CA certificate (PEM) clients must chain to")
      ->check(CLI::ExistingFile);
  app.add_option("--cert", config.cert_path, "Verifier certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--key", config.key_path, "Verifier private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--trust-domain", config.trust_domain, "SPIFFE trust domain of client certs");
  app.add_option("--tls-refresh", tls_refresh,
                 "How often the certificate, key and CA files are re-read (whole seconds, at "
                 "least 1s); a renewed certificate is served from the next connection on")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--report-interval", report_interval, "How often nodes report when idle")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--nonce-ttl", nonce_ttl, "How long a challenge nonce stays valid")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--pcrs", config.pcr_selection, "PCRs nodes must quote (comma-separated)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(0, 23));
  app.add_option("--max-message-bytes", config.max_message_bytes,
                 "Largest gRPC message accepted or sent on the mutual-TLS listener")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  app.add_option("--enroll-max-message-bytes", config.enroll_max_message_bytes,
                 "Largest gRPC message accepted or sent on the enrollment listener")
      ->capture_default_str()
      ->check(CLI::Range(size_t{8} << 10, size_t{16} << 20));
  app.add_option("--max-pending-enrollments", config.max_pending_enrollments,
                 "Enrollments begun and not yet completed, in total (with --store: across "
                 "the replicas); more are refused RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--max-pending-enrollments-per-ek", config.max_pending_enrollments_per_ek,
                 "Enrollments pending for one EK; a further BeginEnrollment evicts that EK's "
                 "oldest")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{64}));
  app.add_option("--appraisal-threads", config.appraisal_threads,
                 "Threads appraising evidence; 0 means one per core")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{256}));
  app.add_option("--appraisal-queue", config.appraisal_queue,
                 "Evidence queued for an appraisal thread; when full, a stream with new "
                 "evidence waits (reading nothing, so HTTP/2 flow control holds its node) until "
                 "a place frees")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--max-streams", config.stream_limits.max_streams,
                 "Attest streams open at once across all nodes; more are refused "
                 "RESOURCE_EXHAUSTED (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 24));
  app.add_option("--max-streams-per-node", config.stream_limits.max_streams_per_node,
                 "Attest streams one node may hold open at once; a further one is refused "
                 "RESOURCE_EXHAUSTED (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1024}));
  app.add_option("--evidence-rate", config.stream_limits.evidence_per_second,
                 "Per node: stream opens, evidence and renewal requests allowed per second, "
                 "sustained; beyond it the stream is refused or ended RESOURCE_EXHAUSTED "
                 "before any appraisal or store write (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--evidence-burst", config.stream_limits.evidence_burst,
                 "Per node: how many of those may come at once above the sustained rate")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e6));
  std::string keepalive_time = "10s";
  std::string keepalive_timeout = "10s";
  std::string keepalive_min_ping = "5s";
  app.add_option("--keepalive-time", keepalive_time,
                 "Ping every connection this often (HTTP/2 keepalive, both listeners)")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--keepalive-timeout", keepalive_timeout,
                 "Close a connection whose ping is not answered within this long; its node is "
                 "marked disconnected (at most keepalive-time + keepalive-timeout after it "
                 "went silent)")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--keepalive-min-ping-interval", keepalive_min_ping,
                 "Shortest interval between a client's keepalive pings on a connection "
                 "without data; a client pinging faster is sent GOAWAY (keep it below the "
                 "nodes' keepalive time)")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--shutdown-grace", shutdown_grace,
                 "On SIGTERM/SIGINT, how long calls get to finish")
      ->capture_default_str()
      ->check(DurationValidator());
  CLI::Option* db_option = app.add_option(
      "--db", config.db_path, "SQLite database of results and enrolled nodes (the default store)");
  app.add_option("--store", config.store_url,
                 "PostgreSQL connection URL (postgresql://user@host:port/db?sslmode=...) shared "
                 "by verifier replicas, instead of --db; also read from $VIGIL_STORE_URL so the "
                 "password stays off the command line (it is never logged)")
      ->envname("VIGIL_STORE_URL")
      ->check([](const std::string& url) -> std::string {
        return vigil::verifier::pg::IsPostgresUrl(url)
                   ? ""
                   : "--store takes a postgresql:// or postgres:// URL";
      })
      ->excludes(db_option);
  std::string retention_max_age;
  app.add_option("--retention-max-age", retention_max_age,
                 "Delete verdicts and status changes older than this (default: keep; a node's "
                 "latest verdict is always kept)")
      ->check(DurationValidator());
  std::string commit_window = "3ms";
  app.add_option("--commit-window", commit_window,
                 "How long the result store and the node registry let writes gather before "
                 "each commits them together (one fsync for all; 0 commits at once; adds at "
                 "most this to each verdict's acknowledgement)")
      ->check(DurationValidator(/*zero_allowed=*/true))
      ->capture_default_str();
  app.add_option("--retention-per-node", config.retention_max_verdicts_per_node,
                 "Keep at most this many verdicts per node (default 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ek-ca-bundle", config.ek_ca_bundle_path,
                 "PEM CA certificates that sign TPM EK certificates (enrollment)")
      ->check(CLI::ExistingFile);
  app.add_flag("--tofu", config.ek_tofu,
               "Enroll any TPM EK: trust on first use (labs and demos only)");
  app.add_option("--accept-simulated-tpm", config.accept_simulated_tpm_ca_path,
                 "Also enroll simulated TPMs (vigil-fleetsim) whose EK certificate chains to "
                 "this PEM CA; their verdicts say tpm_simulated and make no hardware claim "
                 "(benchmarks only; off by default)")
      ->check(CLI::ExistingFile);
  app.add_option("--reference-values", config.reference_values_path,
                 "Typed known-good measurements (YAML) as `vigil-node reference-values --out` "
                 "writes them")
      ->check(CLI::ExistingFile);
  app.add_option("--boot-reference-values", config.boot_reference_values_path,
                 "Boot PCR 0-7 values per node class (YAML); without it boot PCRs are not "
                 "compared and the boot chain is not affirmed")
      ->check(CLI::ExistingFile);
  app.add_option("--node-cert-lifetime", node_cert_lifetime,
                 "Lifetime of node certificates issued at enrollment")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--measurement-pcr", config.measurement_pcr,
                 "PCR nodes extend their measurements into")
      ->capture_default_str()
      ->check(CLI::Range(8, 23));
  app.add_flag("--allow-resettable-pcr", config.allow_resettable_pcr,
               "Accept measurement PCR 16 or 23, which anyone on a node can reset (tests only)");
  app.add_flag("--require-node-self-protection", config.require_node_self_protection,
               "Contraindicate nodes that do not run split by privilege with the documented "
               "capabilities, no_new_privs and a seccomp filter (rule vigil.node.self), or do not "
               "report their own state (default: a failing rule is a warning, a report without "
               "the state is appraised without the rule)");
  app.add_option("--policy", config.policy_paths,
                 "RuntimePolicy YAML file or directory (repeatable); merged with the stored "
                 "policies, a greater revision wins and is stored")
      ->check(CLI::ExistingPath);
  std::string ear_key_max_age = "720h";
  std::string ear_key_grace = "168h";
  app.add_option(
      "--ear-key-dir", config.ear_key_dir,
      "Directory of the EAR result-signing keys (0700; default: ear-keys beside --db). With "
      "--store, each replica keeps its own and publishes the public keys in the store");
  app.add_option("--ear-key-max-age", ear_key_max_age,
                 "Rotate the signing key at start when it is older than this")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--ear-key-grace", ear_key_grace,
                 "How long a retired signing key stays in the JWKS")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--webhook", config.webhook_urls,
                 "http(s) URL that gets a JSON POST on every status change (repeatable; needs "
                 "--db)");
  app.add_option("--webhook-secret-file", config.webhook_secret_path,
                 "File with the HMAC-SHA256 key for the X-Vigil-Signature header of webhooks")
      ->check(CLI::ExistingFile);
  app.add_option("--webhook-ca", config.webhook_ca_path,
                 "PEM CA bundle https webhook targets must chain to (default: the system's)")
      ->check(CLI::ExistingFile);
  app.add_option("--metrics-address", config.metrics_address,
                 "Plain-HTTP listener (host:port) serving Prometheus metrics at /metrics "
                 "(default: off)");
  std::string admission_max_age;
  app.add_option("--admission-listen", config.admission_listen_address,
                 "HTTPS listener (host:port) for the Kubernetes admission webhook, POST "
                 "/validate (needs --db or --store; default: off)");
  app.add_option("--admission-cert", config.admission_cert_path,
                 "Admission listener certificate chain, PEM (default: the verifier's --cert)")
      ->check(CLI::ExistingFile);
  app.add_option("--admission-key", config.admission_key_path,
                 "Admission listener private key, PEM (default: the verifier's --key)")
      ->check(CLI::ExistingFile);
  app.add_option("--admission-client-ca", config.admission_client_ca_path,
                 "Require callers of the admission listener to present a client certificate "
                 "from this CA (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--admission-max-age", admission_max_age,
                 "Admission denies results older than this (default: 60s)")
      ->check(DurationValidator());
  app.add_option("--admission-workload-label", config.admission_workload_label,
                 "Pod label naming an agent pod's Vigil workload")
      ->capture_default_str();
  std::string console_session_lifetime = "8h";
  app.add_option("--console-listen", config.console_listen_address,
                 "HTTPS listener (host:port) for the read-only web console (needs --db or "
                 "--store; default: off)");
  app.add_option("--console-cert", config.console_cert_path,
                 "Console listener certificate chain, PEM (default: the verifier's --cert)")
      ->check(CLI::ExistingFile);
  app.add_option("--console-key", config.console_key_path,
                 "Console listener private key, PEM (default: the verifier's --key)")
      ->check(CLI::ExistingFile);
  app.add_option("--console-session-lifetime", console_session_lifetime,
                 "How long a console session opened with a `vigilctl console token` lasts "
                 "(never past the client certificate's expiry)")
      ->capture_default_str()
      ->check(DurationValidator());
  app.add_option("--console-max-streams", config.console_max_streams,
                 "Live-update streams the console serves at once; more are refused")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--log-level", config.log_level, "trace|debug|info|warn|error|critical|off")
      ->capture_default_str()
      ->check(CLI::IsMember(levels));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "vigil-verifier: " << e.what() << "\n";
    return 2;
  }
  if (config.pki_dir.empty() &&
      (config.ca_cert_path.empty() || config.cert_path.empty() || config.key_path.empty())) {
    std::cerr << "vigil-verifier: give --pki-dir, or all of --ca, --cert and --key\n";
    return 2;
  }
  config.report_interval = ParsedDuration(report_interval);
  if (!retention_max_age.empty()) config.retention_max_age = ParsedDuration(retention_max_age);
  config.commit_window = ParsedDuration(commit_window);
  config.nonce_ttl = ParsedDuration(nonce_ttl);
  config.shutdown_grace = ParsedDuration(shutdown_grace);
  config.node_cert_lifetime = ParsedDuration(node_cert_lifetime);
  config.tls_refresh_interval = ParsedDuration(tls_refresh);
  config.keepalive.keepalive.time = ParsedDuration(keepalive_time);
  config.keepalive.keepalive.timeout = ParsedDuration(keepalive_timeout);
  config.keepalive.min_peer_ping_interval = ParsedDuration(keepalive_min_ping);
  config.ear_key_max_age = ParsedDuration(ear_key_max_age);
  config.ear_key_grace = ParsedDuration(ear_key_grace);
  if (!admission_max_age.empty()) config.admission_max_age = ParsedDuration(admission_max_age);
  config.console_session_lifetime = ParsedDuration(console_session_lifetime);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::info("memory allocator: {}", allocator);
  return Run(std::move(config));
}
