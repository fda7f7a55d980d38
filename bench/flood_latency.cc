// Honest verdict latency under abuse: how long an honest node waits for the acknowledgement
// (the durable verdict) of its evidence, with and without floods hitting the same verifier.
//
//   sudo ./bench/flood_latency [--samples N]      (from the build directory; N >= 20)
//
// A real vigil-verifier (swtpm-backed enrollment listener, SQLite store, its default stream
// limits) from the integration tests' fabric. The honest node is an in-process Attest client
// with its own node certificate: it answers each challenge with unquoted evidence, paced at
// four reports a second (under the default per-node rate), and times each write of Evidence
// to the read of its Acknowledgement. It takes N samples quietly, then N more while the
// floods of tests/testing/floods.h run (begun-and-abandoned enrollments with a genuine EK,
// junk evidence from a misbehaving node, oversized messages on both listeners), and prints
// p50/p99 of both and their ratio, with what each flood sent and how much of it was refused.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fabric_fixture.h"
#include "tests/testing/floods.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/attestation.grpc.pb.h"
#include "vigil/v1/runtime.pb.h"

namespace {

using vigil::testing::Fabric;
using vigil::testing::Floods;

constexpr char kHonestNodeId[] = "be57be57be57be57be57be57be57be57be57be57be57be57be57be57be57be57";
constexpr absl::Duration kPace = absl::Milliseconds(250);
constexpr int kWarmup = 10;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The honest node's one stream.
class HonestClient {
 public:
  HonestClient(const Fabric& f, const vigil::CertAndKey& identity)
      : stub_(vigil::v1::Attestation::NewStub(vigil::testing::MakeChannel(
            f.verifier_address(),
            vigil::testing::ClientCredentials(f.pki().ca_cert_pem(), identity)))) {
    stream_ = stub_->Attest(&ctx_);
  }

  // Sends `n` reports, one per challenge and at most one per kPace; returns the
  // milliseconds from each Evidence write to the read of its Acknowledgement.
  absl::StatusOr<std::vector<double>> Sample(int n) {
    std::vector<double> ms;
    vigil::v1::VerifierMessage m;
    while (static_cast<int>(ms.size()) < n) {
      do {  // the challenge to answer (the verifier sends it after each acknowledgement)
        if (!stream_->Read(&m)) return Ended();
      } while (!m.has_challenge());
      absl::SleepFor(last_ + kPace - absl::Now());
      vigil::v1::RuntimeReport report;
      report.set_node_id(kHonestNodeId);
      report.set_sequence(++sequence_);
      vigil::v1::NodeMessage evidence;
      evidence.mutable_evidence()->set_nonce(m.challenge().nonce());
      evidence.mutable_evidence()->set_payload(report.SerializeAsString());
      last_ = absl::Now();
      if (!stream_->Write(evidence)) return Ended();
      do {
        if (!stream_->Read(&m)) return Ended();
      } while (!m.has_acknowledgement());
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - last_));
    }
    return ms;
  }

 private:
  absl::Status Ended() {
    grpc::Status s = stream_->Finish();
    return absl::UnavailableError(
        absl::StrCat("the honest stream ended: ", s.error_code(), " ", s.error_message()));
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<vigil::v1::Attestation::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<vigil::v1::NodeMessage, vigil::v1::VerifierMessage>>
      stream_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t sequence_ = 0;
};

int Fail(const std::string& what, const Fabric* fabric) {
  std::fprintf(stderr, "flood_latency: %s\n%s\n", what.c_str(),
               fabric != nullptr ? fabric->Logs().c_str() : "");
  return 1;
}

void PrintRow(const char* name, const std::vector<double>& ms, double base_p50, double base_p99) {
  double p50 = Percentile(ms, 0.50), p99 = Percentile(ms, 0.99);
  std::printf("| %-22s | %5zu | %8.2f | %8.2f | %9.2f | %9.2f |\n", name, ms.size(), p50, p99,
              p50 / base_p50, p99 / base_p99);
}

int RunBench(int samples) {
  // The enrollment flood's pending cap as the flood test sets it; every other limit default.
  Fabric::Options options;
  options.verifier_args = {"--max-pending-enrollments", "2", "--max-pending-enrollments-per-ek",
                           "4"};
  absl::StatusOr<std::unique_ptr<Fabric>> fabric = Fabric::Start(options);
  if (!fabric.ok()) return Fail(fabric.status().ToString(), nullptr);
  Fabric& f = **fabric;
  absl::StatusOr<vigil::CertAndKey> identity = f.pki().IssueNode(kHonestNodeId);
  if (!identity.ok()) return Fail(identity.status().ToString(), &f);
  HonestClient honest(f, *identity);

  if (absl::StatusOr<std::vector<double>> warm = honest.Sample(kWarmup); !warm.ok()) {
    return Fail(warm.status().ToString(), &f);
  }
  absl::StatusOr<std::vector<double>> quiet = honest.Sample(samples);
  if (!quiet.ok()) return Fail(quiet.status().ToString(), &f);

  absl::StatusOr<std::unique_ptr<Floods>> floods = Floods::Start(f);
  if (!floods.ok()) return Fail(floods.status().ToString(), &f);
  absl::StatusOr<std::vector<double>> flooded = honest.Sample(samples);
  (*floods)->Stop();
  if (!flooded.ok()) return Fail(flooded.status().ToString(), &f);

  const double base_p50 = Percentile(*quiet, 0.50), base_p99 = Percentile(*quiet, 0.99);
  std::printf(
      "honest node: Evidence written -> Acknowledgement read (ms), one report per %lld ms\n\n",
      static_cast<long long>(absl::ToInt64Milliseconds(kPace)));
  std::printf("| %-22s | %5s | %8s | %8s | %9s | %9s |\n", "phase", "n", "p50", "p99", "p50/quiet",
              "p99/quiet");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), "-------", "----------",
              "----------", "-----------", "-----------");
  PrintRow("quiet", *quiet, base_p50, base_p99);
  PrintRow("during the floods", *flooded, base_p50, base_p99);
  std::printf("\nfloods while the second phase ran:\n%s", (*floods)->Describe().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--samples") == 0 && i + 1 < argc &&
        absl::SimpleAtoi(argv[i + 1], &samples) && samples >= 20) {
      ++i;
      continue;
    }
    std::fprintf(stderr,
                 "usage: %s [--samples N]\n"
                 "  Times an honest node's evidence acknowledgements (N >= 20, default 200, four\n"
                 "  a second) without and then with floods on the same verifier. Needs root\n"
                 "  (swtpm, the node's reference values load the BPF probes).\n",
                 argv[0]);
    return 2;
  }
  return RunBench(samples);
}
