// Appraisal cost against its floor, for an ECDSA P-256 AK and an RSA 2048 (RSASSA) AK.
//
// For each key type it builds N distinct quoted evidences (SHA-256 PCRs 0 and 15, a measurement
// log holding the node's start sequence and the policy bundle, a RuntimeReport with compliant
// workload processes under the policy file given) and measures, on one thread:
//  - quote: QuoteAppraiser::Appraise alone (signature, TPMS_ATTEST checks, clock, log replay,
//    policy binding);
//  - full path: the verifier's appraisal chain as vigil-verifier wires it: RuntimeAppraiser over
//    QuoteAppraiser (quote checks, log replay, policy evaluation, verdict, trust vector, the ES256
//    EAR token of every verdict) and the durable write through StateDurableSink into a SQLite
//    result store and node registry sharing one file on disk, as vigil-verifier's --db
//    (group-committed by their writer threads with the verifier's default commit window; the
//    clock stops when the last verdict is durable); "of which appraisal" is the CPU time of the
//    RuntimeAppraiser::Appraise calls alone, on the calling thread (the appraisal thread's share);
//  - raw: a bare EVP_DigestVerify of the same N quote signatures.
// The AK is a software key with a TPM public area, so the bench needs no TPM; the signature, the
// structures and every check are the ones real evidence goes through.
//
// With --python-check SCRIPT it also runs SCRIPT (bench/checkquote.py) with /usr/bin/python3 on
// the same quotes: a pure-Python quote check (python3-cryptography), timed by the script.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/measurement_log.h"
#include "common/policy/parser.h"
#include "common/tpm/software_ak.h"
#include "common/tpm/software_quote.h"
#include "common/tpm/software_rsa_ak.h"
#include "nlohmann/json.hpp"
#include "verifier/config.h"
#include "verifier/policy_set.h"
#include "verifier/quote_appraiser.h"
#include "verifier/results/ear_signer.h"
#include "verifier/runtime_appraiser.h"
#include "verifier/state_durable_sink.h"
#include "verifier/store/sqlite_store.h"
#include "verifier/store/store_internal.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using vigil::verifier::AppraisalInput;
using vigil::verifier::IssuedChallenge;

struct Sample {
  vigil::v1::Evidence evidence;
  IssuedChallenge challenge;
  // The quote signature in the form EVP_DigestVerify takes (DER for ECDSA, raw for RSASSA).
  std::string raw_signature;
  std::string extra_data;
};

// One measured pass: µs per item, by the wall clock and by the CPU time of every thread of the
// process (the full path's writer threads included). The machine is shared, so the CPU time is
// the figure for one core; the wall clock also counts time the process waited for a core.
struct Cost {
  double wall_us = 0;
  double cpu_us = 0;
};

struct Result {
  std::string key_type;
  int n = 0;
  Cost quote;
  Cost full;
  double appraise_cpu_us = 0;  // the full path's RuntimeAppraiser::Appraise calls alone
  Cost raw;
  int rules = 0;                    // rule outcomes in each verdict
  size_t verdict_bytes = 0;         // a verdict serialized whole
  size_t stored_verdict_bytes = 0;  // as the store writes it (EncodeStoredVerdict)
  double python_us = 0;             // 0: not run (CPU time of the Python process's checking loop)
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "appraisal bench: %s\n", what.c_str());
  std::exit(1);
}

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ProcessCpuSeconds() { return CpuSeconds(CLOCK_PROCESS_CPUTIME_ID); }

// CPU time of the calling thread: the appraisal thread's own share of the full path.
double ThreadCpuSeconds() { return CpuSeconds(CLOCK_THREAD_CPUTIME_ID); }

// Times a pass over `n` items from construction to Done().
class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(ProcessCpuSeconds()) {}
  Cost Done(int n) const {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count();
    return Cost{wall / n * 1e6, (ProcessCpuSeconds() - cpu_) / n * 1e6};
  }

 private:
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

const char kNodeId[] = "abababababababababababababababababababababababababababababababab";

// A workload process the baseline and strict policies select and find compliant.
vigil::v1::ProcessSnapshot WorkloadProcess(int pid) {
  vigil::v1::ProcessSnapshot p;
  p.set_pid(pid);
  p.set_ppid(1);
  p.set_comm("agent");
  p.set_exe_path("/opt/agent/bin/agent");
  p.set_exe_sha256(std::string(64, 'a'));
  p.set_cgroup("/system.slice/agent.service");
  p.add_matched_by("exe=/opt/*");
  vigil::v1::SeccompState* s = p.mutable_seccomp();
  s->set_mode(2);
  s->set_filter_count(1);
  s->set_no_new_privs(true);
  s->set_filters_inspected(true);
  const uint64_t all = (uint64_t{1} << 41) - 1;
  // Without CAP_SYS_ADMIN (21), CAP_SYS_MODULE (16) and CAP_SYS_PTRACE (19).
  const uint64_t dropped = (uint64_t{1} << 21) | (uint64_t{1} << 16) | (uint64_t{1} << 19);
  vigil::v1::Capabilities* c = p.mutable_capabilities();
  c->set_bounding(all & ~dropped);
  c->set_permitted(all & ~dropped);
  c->set_effective(all & ~dropped);
  // Its JIT region is executable but not writable, and locked.
  p.set_vm_locked_kib(68);
  vigil::v1::MemoryRegion* jit = p.mutable_memory()->add_anonymous_executable();
  jit->set_start(0x7f0000000000);
  jit->set_end(0x7f0000001000);
  jit->set_permissions("r-xp");
  jit->set_size_kib(4);
  jit->set_locked_kib(4);
  p.set_root_read_only(true);
  return p;
}

template <typename Ak>
std::string RawSignature(const Ak& ak, const std::string& tpmt);

template <>
std::string RawSignature(const vigil::tpm::SoftwareAk&, const std::string& tpmt) {
  auto der = vigil::tpm::EcdsaSignatureDer(tpmt);
  if (!der.ok()) Die("DER encoding failed");
  return *std::move(der);
}

template <>
std::string RawSignature(const vigil::tpm::SoftwareRsaAk&, const std::string& tpmt) {
  // TPMT_SIGNATURE: sigAlg (2), hash (2), TPM2B size (2), signature.
  return tpmt.substr(6);
}

// Fresh appraisers over a fresh registry (and, for the full path, a fresh store and EAR signer)
// in `dir`, so each measured pass sees the evidence for the first time.
class Verifier {
 public:
  Verifier(const std::filesystem::path& dir, const std::string& ak_public, const std::string& name,
           const vigil::verifier::ReferenceValues* references,
           const vigil::verifier::BootReferenceValues* boot,
           const vigil::verifier::PolicySet* policies, bool full) {
    std::filesystem::create_directories(dir);
    // As vigil-verifier opens them: the registry and the store in one file (--db), both
    // writers with the default commit window.
    const std::string db = (dir / "verifier.db").string();
    const absl::Duration window = vigil::verifier::VerifierConfig{}.commit_window;
    auto registry = vigil::verifier::NodeRegistry::Open(full ? db : std::string(":memory:"));
    if (!registry.ok()) Die(std::string(registry.status().message()));
    registry_ = *std::move(registry);
    registry_->SetCommitWindow(window);
    if (!registry_->Bind({kNodeId, "ek", ak_public, name, absl::Now()}).ok()) Die("bind failed");
    auto quote = vigil::verifier::QuoteAppraiser::Create(registry_.get(), references, boot,
                                                         {.measurement_pcr = 15}, policies);
    if (!quote.ok()) Die(std::string(quote.status().message()));
    quote_ = *std::move(quote);
    if (!full) return;
    vigil::verifier::StoreOptions store_options;
    store_options.commit_window = window;
    auto store = vigil::verifier::SqliteStore::Open(db, store_options);
    if (!store.ok()) Die(std::string(store.status().message()));
    store_ = *std::move(store);
    sink_ = std::make_unique<vigil::verifier::StateDurableSink>(store_.get(), registry_.get());
    vigil::verifier::EarSignerConfig ear;
    ear.key_dir = (dir / "ear-keys").string();
    auto signer = vigil::verifier::EarSigner::Open(ear);
    if (!signer.ok()) Die(std::string(signer.status().message()));
    signer_ = *std::move(signer);
    vigil::verifier::RuntimeAppraiser::Options options;
    options.policies = policies;
    options.signer = signer_.get();
    runtime_ = std::make_unique<vigil::verifier::RuntimeAppraiser>(quote_.get(), options);
  }

  vigil::verifier::EvidenceAppraiser& quote() { return *quote_; }
  vigil::verifier::EvidenceAppraiser& runtime() { return *runtime_; }
  vigil::verifier::ResultSink& sink() { return *sink_; }

 private:
  std::unique_ptr<vigil::verifier::NodeRegistry> registry_;
  std::unique_ptr<vigil::verifier::QuoteAppraiser> quote_;
  std::unique_ptr<vigil::verifier::SqliteStore> store_;
  std::unique_ptr<vigil::verifier::StateDurableSink> sink_;
  std::unique_ptr<vigil::verifier::EarSigner> signer_;
  std::unique_ptr<vigil::verifier::RuntimeAppraiser> runtime_;
};

std::string PublicKeyPem(EVP_PKEY* key) {
  vigil::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) Die("cannot write the AK public key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// Runs the pure-Python quote check on the samples; its µs per quote.
double RunPythonCheck(const std::string& script, const std::filesystem::path& dir, EVP_PKEY* key,
                      const std::vector<Sample>& samples) {
  nlohmann::json doc;
  doc["public_key_pem"] = PublicKeyPem(key);
  nlohmann::json& quotes = doc["quotes"];
  for (const Sample& s : samples) {
    nlohmann::json q;
    q["attest"] = vigil::HexEncode(s.evidence.quote().attest());
    q["signature"] = vigil::HexEncode(s.raw_signature);
    q["extra_data"] = vigil::HexEncode(s.extra_data);
    for (const auto& v : s.evidence.quote().pcr_values()) {
      q["pcrs"].push_back(vigil::HexEncode(v.digest()));
    }
    quotes.push_back(std::move(q));
  }
  const std::filesystem::path input = dir / "quotes.json";
  std::ofstream(input) << doc.dump();
  const std::string command = "/usr/bin/python3 " + script + " " + input.string();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Die("cannot run " + command);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  if (pclose(pipe) != 0) Die("the Python quote check failed: " + out);
  auto parsed = nlohmann::json::parse(out, nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("seconds") || parsed["checked"] != samples.size()) {
    Die("unexpected output from the Python quote check: " + out);
  }
  return parsed["seconds"].get<double>() / static_cast<double>(samples.size()) * 1e6;
}

template <typename Ak>
Result Measure(const std::string& key_type, int n, int processes,
               const vigil::policy::Policy& policy, const std::filesystem::path& dir,
               const std::string& python_script) {
  auto created = Ak::Create();
  if (!created.ok()) Die(std::string(created.status().message()));
  const Ak& ak = *created;

  vigil::verifier::PolicySet policies;
  if (!policies.Reset({policy}).ok()) Die("cannot install the policy");
  const std::string bundle_hex = policies.Current()->bundle.sha256();
  auto bundle_digest = vigil::HexDecode(bundle_hex);
  if (!bundle_digest.ok()) Die("bad bundle digest");

  vigil::verifier::ReferenceValues references;
  // The start sequence a node measures: (event type, digest), its policy bundle last.
  std::vector<std::pair<std::string, std::string>> measurements;
  for (const char* type : {vigil::kEventNodeStart, vigil::kEventNodeBinary, vigil::kEventBpfObject,
                           vigil::kEventBpfProgramTags}) {
    measurements.emplace_back(type, std::string(vigil::DigestBytes(vigil::Sha256(type))));
    references.Add(type, measurements.back().second, "bench");
  }
  measurements.emplace_back(vigil::kEventPolicyBundle, *bundle_digest);
  vigil::Sha256Digest pcr15{};
  for (const auto& [type, digest] : measurements) {
    pcr15 = vigil::Sha256Concat({vigil::DigestBytes(pcr15), digest});
  }
  const std::string pcr0(32, '\0');
  const std::string pcr15_bytes(vigil::DigestBytes(pcr15));
  // The node's class: its boot PCR 0 as the operator recorded it.
  vigil::verifier::BootReferenceValues boot;
  boot.AddClass({"bench", {{0, pcr0}}});

  std::vector<Sample> samples(n);
  for (int i = 0; i < n; ++i) {
    Sample& s = samples[i];
    vigil::v1::RuntimeReport report;
    report.set_node_id(kNodeId);
    report.set_sequence(i);
    report.set_policy_digest(bundle_hex);
    for (int p = 0; p < processes; ++p) *report.add_processes() = WorkloadProcess(100 + p);
    report.mutable_probes()->add_active_hooks("tracepoint/syscalls/sys_exit_ptrace");
    s.evidence.set_payload(report.SerializeAsString());
    std::string nonce(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), 32);
    s.evidence.set_nonce(nonce);
    s.challenge =
        IssuedChallenge{nonce, absl::Now() + absl::Hours(1), {0, 15}, {bundle_hex}, false};
    vigil::Sha256Digest extra =
        vigil::Sha256Concat({nonce, vigil::DigestBytes(vigil::Sha256(s.evidence.payload()))});
    s.extra_data = std::string(vigil::DigestBytes(extra));
    vigil::tpm::QuoteAttestFields fields{.qualified_signer = ak.name, .extra_data = s.extra_data};
    fields.clock_info.clock = 100000 + static_cast<uint64_t>(i);
    fields.clock_info.resetCount = 1;
    fields.clock_info.safe = 1;
    auto attest = vigil::tpm::MarshalQuoteAttest(fields, {{0, pcr0}, {15, pcr15_bytes}});
    if (!attest.ok()) Die("marshal failed");
    auto sig = ak.Sign(*attest);
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
    s.raw_signature = RawSignature(ak, *sig);
  }

  Result result;
  result.key_type = key_type;
  result.n = n;
  {
    Verifier v(dir / (key_type + "-quote"), ak.tpm2b_public, ak.name, &references, &boot, &policies,
               false);
    Stopwatch watch;
    for (const Sample& s : samples) {
      vigil::v1::Verdict verdict =
          v.quote().Appraise(AppraisalInput{kNodeId, &s.challenge, &s.evidence});
      if (verdict.status() != vigil::v1::TRUST_AFFIRMING) Die("not affirmed: " + verdict.detail());
    }
    result.quote = watch.Done(n);
  }
  {
    Verifier v(dir / (key_type + "-full"), ak.tpm2b_public, ak.name, &references, &boot, &policies,
               true);
    std::atomic<int> durable{0};
    std::atomic<int> failed{0};
    double appraise_cpu = 0;
    Stopwatch watch;
    for (const Sample& s : samples) {
      const double before = ThreadCpuSeconds();
      vigil::v1::Verdict verdict =
          v.runtime().Appraise(AppraisalInput{kNodeId, &s.challenge, &s.evidence});
      appraise_cpu += ThreadCpuSeconds() - before;
      if (verdict.status() != vigil::v1::TRUST_AFFIRMING || verdict.rules().empty() ||
          verdict.ear_token().empty()) {
        Die("full path: not affirmed under the policy, or unsigned: " + verdict.detail());
      }
      result.rules = verdict.rules_size();
      if (&s == &samples.front()) {
        result.verdict_bytes = verdict.ByteSizeLong();
        result.stored_verdict_bytes =
            vigil::verifier::store_internal::EncodeStoredVerdict(verdict).size();
      }
      v.sink().RecordDurable(kNodeId, s.evidence, verdict, [&](absl::Status status) {
        if (!status.ok()) failed.fetch_add(1);
        durable.fetch_add(1, std::memory_order_release);
      });
    }
    while (durable.load(std::memory_order_acquire) < n) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    result.full = watch.Done(n);
    result.appraise_cpu_us = appraise_cpu / n * 1e6;
    if (failed.load() != 0) Die("durable writes failed");
  }
  {
    EVP_PKEY* key = ak.key.get();
    Stopwatch watch;
    for (const Sample& s : samples) {
      vigil::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
      const std::string& msg = s.evidence.quote().attest();
      if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
          EVP_DigestVerify(ctx.get(),
                           reinterpret_cast<const unsigned char*>(s.raw_signature.data()),
                           s.raw_signature.size(),
                           reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1) {
        Die("baseline verify failed");
      }
    }
    result.raw = watch.Done(n);
  }
  if (!python_script.empty()) {
    result.python_us = RunPythonCheck(python_script, dir, ak.key.get(), samples);
  }
  return result;
}

double PerSecond(double us) { return us > 0 ? 1e6 / us : 0; }

void PrintLine(const char* what, const Cost& c) {
  std::printf("  %-22s %8.1f us CPU (%6.0f/s per core), %8.1f us wall (%6.0f/s)\n", what, c.cpu_us,
              PerSecond(c.cpu_us), c.wall_us, PerSecond(c.wall_us));
}

void PrintText(const Result& r, const Result& ecc) {
  std::printf("%s AK, %d evidences, %d rule outcomes per verdict (%zu bytes, %zu stored)\n",
              r.key_type.c_str(), r.n, r.rules, r.verdict_bytes, r.stored_verdict_bytes);
  PrintLine("QuoteAppraiser alone:", r.quote);
  PrintLine("full path:", r.full);
  std::printf(
      "    of which appraisal: %8.1f us CPU (%6.0f/s per core; RuntimeAppraiser::Appraise)\n",
      r.appraise_cpu_us, PerSecond(r.appraise_cpu_us));
  PrintLine("raw EVP_DigestVerify:", r.raw);
  std::printf("  ratio full path / raw verify rate (CPU): %.2f\n", r.raw.cpu_us / r.full.cpu_us);
  std::printf("  full path / raw ECDSA P-256 verify rate (CPU): %.2f\n",
              ecc.raw.cpu_us / r.full.cpu_us);
  if (r.python_us > 0) {
    std::printf("  Python quote check:    %8.1f us CPU (%6.0f/s per core)\n", r.python_us,
                PerSecond(r.python_us));
  }
}

// Rates are per CPU second of the process (one core's worth); *_wall_per_second by the wall clock.
nlohmann::json Json(const Result& r, const Result& ecc) {
  nlohmann::json j = {
      {"evidences", r.n},
      {"rule_outcomes_per_verdict", r.rules},
      {"verdict_bytes", r.verdict_bytes},
      {"stored_verdict_bytes", r.stored_verdict_bytes},
      {"appraisals_per_second", PerSecond(r.full.cpu_us)},
      {"raw_verifies_per_second", PerSecond(r.raw.cpu_us)},
      {"ratio", r.raw.cpu_us / r.full.cpu_us},
      {"ratio_to_raw_ecdsa_p256", ecc.raw.cpu_us / r.full.cpu_us},
      {"quote_appraisals_per_second", PerSecond(r.quote.cpu_us)},
      {"runtime_appraisals_per_second", PerSecond(r.appraise_cpu_us)},
      {"appraisals_wall_per_second", PerSecond(r.full.wall_us)},
      {"raw_verifies_wall_per_second", PerSecond(r.raw.wall_us)},
  };
  if (r.python_us > 0) j["python_checks_per_second"] = PerSecond(r.python_us);
  return j;
}

constexpr char kUsage[] =
    "usage: appraisal [N] [--json] [--processes P] [--policy FILE] [--python-check SCRIPT]\n"
    "  N                      evidences per key type (default 3000)\n"
    "  --processes P          workload processes in each report (default 8)\n"
    "  --json                 machine-readable summary\n"
    "  --policy FILE          the RuntimePolicy evaluated (default "
    "deploy/policies/baseline.yaml)\n"
    "  --python-check SCRIPT  also time SCRIPT (bench/checkquote.py) on the same quotes\n";

}  // namespace

int main(int argc, char** argv) {
  int n = 3000;
  int processes = 8;
  bool json = false;
  std::string policy_path = "deploy/policies/baseline.yaml";
  std::string python_script;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--processes" && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      processes = std::atoi(argv[++i]);
    } else if (arg == "--policy" && i + 1 < argc) {
      policy_path = argv[++i];
    } else if (arg == "--python-check" && i + 1 < argc) {
      python_script = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] != '-' && std::atoi(arg.c_str()) > 0) {
      n = std::atoi(arg.c_str());
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  // The verifier's own log lines (the EAR key it made) would interleave with the figures.
  spdlog::set_level(spdlog::level::warn);
  std::ifstream in(policy_path);
  if (!in) Die("cannot read " + policy_path);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = vigil::policy::ParseSinglePolicy(text.str(), policy_path);
  if (!parsed.ok()) Die(std::string(parsed.status().message()));

  char dir_template[] = "/tmp/vigil-appraisal-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("cannot create a temporary directory");
  const std::filesystem::path dir(dir_template);

  const Result ecc =
      Measure<vigil::tpm::SoftwareAk>("ecc_p256", n, processes, *parsed, dir, python_script);
  const Result rsa =
      Measure<vigil::tpm::SoftwareRsaAk>("rsa_2048", n, processes, *parsed, dir, python_script);
  std::filesystem::remove_all(dir);

  if (json) {
    std::printf(
        "%s\n",
        nlohmann::json{{"ecc_p256", Json(ecc, ecc)}, {"rsa_2048", Json(rsa, ecc)}}.dump(2).c_str());
  } else {
    PrintText(ecc, ecc);
    PrintText(rsa, ecc);
  }
  return 0;
}
