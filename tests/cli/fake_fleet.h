#pragma once

// A fake Fleet API for vigilctl's tests: a real gRPC server (TestVerifier: 127.0.0.1, port 0,
// mutual TLS with a TestPki) serving canned answers the test sets, and recording every
// request, so tests assert exactly what vigilctl sent and how it rendered the answers.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cli/nodes_command.h"
#include "tests/testing/build_paths.h"
#include "tests/testing/pki_fixture.h"
#include "tests/testing/verifier_fixture.h"
#include "vigil/v1/fleet.grpc.pb.h"

namespace vigil::cli::testing {

/// What one WatchVerdicts call streams: these changes, then this status.
struct WatchScript {
  std::vector<v1::VerdictChange> changes;
  grpc::Status end = grpc::Status::OK;
};

class FakeFleetService final : public v1::Fleet::CallbackService {
 public:
  // Canned answers. Set them before the command runs.
  v1::ListNodesResponse nodes;
  std::map<std::string, v1::GetNodeResponse> node_details;        ///< by node id; others NOT_FOUND
  std::map<std::string, v1::GetLatestEvidenceResponse> evidence;  ///< by node id; others NOT_FOUND
  std::map<std::string, v1::ListVerdictsResponse> verdict_pages;  ///< by page_token
  std::vector<WatchScript> watch_scripts;  ///< one per WatchVerdicts call, in order
  v1::CheckAdmissionResponse admission;
  std::string oscal_json;
  std::string jwks_json;
  v1::PutPolicyResponse put_policy;
  v1::ListPoliciesResponse policies;
  std::map<std::string, v1::ListAuditResponse> audit_pages;  ///< by page_token
  /// Calls (by method name) that fail with the given status instead.
  std::map<std::string, grpc::Status> errors;

  /// The requests received, in order.
  template <typename Request>
  std::vector<Request> Requests(const std::string& method) const {
    absl::MutexLock lock(&mu_);
    std::vector<Request> out;
    auto it = requests_.find(method);
    if (it == requests_.end()) return out;
    for (const std::string& bytes : it->second) {
      Request r;
      r.ParseFromString(bytes);
      out.push_back(r);
    }
    return out;
  }
  int CallCount(const std::string& method) const {
    absl::MutexLock lock(&mu_);
    auto it = requests_.find(method);
    return it == requests_.end() ? 0 : static_cast<int>(it->second.size());
  }

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx,
                                      const v1::ListNodesRequest* req,
                                      v1::ListNodesResponse* resp) override {
    return Respond(ctx, "ListNodes", *req, [&] {
      *resp = nodes;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* ctx, const v1::GetNodeRequest* req,
                                    v1::GetNodeResponse* resp) override {
    return Respond(ctx, "GetNode", *req, [&] {
      auto it = node_details.find(req->node_id());
      if (it == node_details.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown node " + req->node_id());
      }
      *resp = it->second;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* GetLatestEvidence(grpc::CallbackServerContext* ctx,
                                              const v1::GetLatestEvidenceRequest* req,
                                              v1::GetLatestEvidenceResponse* resp) override {
    return Respond(ctx, "GetLatestEvidence", *req, [&] {
      auto it = evidence.find(req->node_id());
      if (it == evidence.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no evidence from " + req->node_id());
      }
      *resp = it->second;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ListVerdicts(grpc::CallbackServerContext* ctx,
                                         const v1::ListVerdictsRequest* req,
                                         v1::ListVerdictsResponse* resp) override {
    return Respond(ctx, "ListVerdicts", *req, [&] {
      auto it = verdict_pages.find(req->page_token());
      if (it == verdict_pages.end()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page token");
      }
      *resp = it->second;
      return grpc::Status::OK;
    });
  }
  grpc::ServerWriteReactor<v1::VerdictChange>* WatchVerdicts(
      grpc::CallbackServerContext* ctx, const v1::WatchVerdictsRequest* req) override {
    WatchScript script;
    {
      absl::MutexLock lock(&mu_);
      const size_t call = requests_["WatchVerdicts"].size();
      requests_["WatchVerdicts"].push_back(req->SerializeAsString());
      if (call < watch_scripts.size()) {
        script = watch_scripts[call];
      } else {
        script.end = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no more scripts");
      }
    }
    return new ScriptWriter(std::move(script));
  }
  grpc::ServerUnaryReactor* CheckAdmission(grpc::CallbackServerContext* ctx,
                                           const v1::CheckAdmissionRequest* req,
                                           v1::CheckAdmissionResponse* resp) override {
    return Respond(ctx, "CheckAdmission", *req, [&] {
      *resp = admission;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ExportAssessment(grpc::CallbackServerContext* ctx,
                                             const v1::ExportAssessmentRequest* req,
                                             v1::ExportAssessmentResponse* resp) override {
    return Respond(ctx, "ExportAssessment", *req, [&] {
      resp->set_oscal_json(oscal_json);
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* GetJwks(grpc::CallbackServerContext* ctx, const v1::GetJwksRequest* req,
                                    v1::GetJwksResponse* resp) override {
    return Respond(ctx, "GetJwks", *req, [&] {
      resp->set_jwks_json(jwks_json);
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* PutPolicy(grpc::CallbackServerContext* ctx,
                                      const v1::PutPolicyRequest* req,
                                      v1::PutPolicyResponse* resp) override {
    return Respond(ctx, "PutPolicy", *req, [&] {
      *resp = put_policy;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ListPolicies(grpc::CallbackServerContext* ctx,
                                         const v1::ListPoliciesRequest* req,
                                         v1::ListPoliciesResponse* resp) override {
    return Respond(ctx, "ListPolicies", *req, [&] {
      *resp = policies;
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ApproveNode(grpc::CallbackServerContext* ctx,
                                        const v1::ApproveNodeRequest* req,
                                        v1::ApproveNodeResponse* resp) override {
    return Respond(ctx, "ApproveNode", *req, [] { return grpc::Status::OK; });
  }
  grpc::ServerUnaryReactor* RevokeNode(grpc::CallbackServerContext* ctx,
                                       const v1::RevokeNodeRequest* req,
                                       v1::RevokeNodeResponse* resp) override {
    return Respond(ctx, "RevokeNode", *req, [&] {
      if (node_details.count(req->node_id()) == 0) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown node " + req->node_id());
      }
      return grpc::Status::OK;
    });
  }
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* ctx,
                                      const v1::ListAuditRequest* req,
                                      v1::ListAuditResponse* resp) override {
    return Respond(ctx, "ListAudit", *req, [&] {
      auto it = audit_pages.find(req->page_token());
      if (it == audit_pages.end()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page token");
      }
      *resp = it->second;
      return grpc::Status::OK;
    });
  }

 private:
  class ScriptWriter final : public grpc::ServerWriteReactor<v1::VerdictChange> {
   public:
    explicit ScriptWriter(WatchScript script) : script_(std::move(script)) { Next(); }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::CANCELLED);
        return;
      }
      Next();
    }
    void OnDone() override { delete this; }

   private:
    void Next() {
      if (next_ < script_.changes.size()) {
        StartWrite(&script_.changes[next_++]);
      } else {
        Finish(script_.end);
      }
    }
    WatchScript script_;
    size_t next_ = 0;
  };

  template <typename Request, typename Fn>
  grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* ctx, const std::string& method,
                                    const Request& request, Fn fn) {
    {
      absl::MutexLock lock(&mu_);
      requests_[method].push_back(request.SerializeAsString());
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto error = errors.find(method);
    reactor->Finish(error != errors.end() ? error->second : fn());
    return reactor;
  }

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> requests_ ABSL_GUARDED_BY(mu_);
};

/// A PKI, the fake Fleet API on a TestVerifier, and vigilctl's connection flags for it.
class FakeFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<vigil::testing::TestPki>> pki =
        vigil::testing::TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::move(*pki);
    vigil::testing::TestVerifierOptions options;
    options.services.push_back(&fleet_);
    absl::StatusOr<std::unique_ptr<vigil::testing::TestVerifier>> verifier =
        vigil::testing::TestVerifier::Start(*pki_, options);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = std::move(*verifier);
  }
  void TearDown() override {
    if (verifier_ != nullptr) verifier_->Stop();
  }

  /// Connection options as `--verifier ADDR --pki-dir DIR --client operator`.
  FleetConnectionOptions Connection() const {
    FleetConnectionOptions c;
    c.verifier = verifier_->address();
    c.pki_dir = pki_->dir();
    c.client = vigil::testing::TestPki::kClientName;
    c.timeout_seconds = 20;
    return c;
  }
  /// The same as command-line flags.
  std::string ConnectionFlags() const {
    return " --verifier " + verifier_->address() + " --pki-dir " + pki_->dir() + " --client " +
           vigil::testing::TestPki::kClientName;
  }

  /// Runs the real vigilctl binary with `args`; its stdout in *out, stderr in *err. Returns
  /// the exit status (-1 when it did not exit normally).
  int RunVigilctl(const std::string& args, std::string* out, std::string* err = nullptr) const {
    const std::string vigilctl = vigil::testing::BuildDir() + "/cli/vigilctl";
    const std::string out_path = pki_->dir() + "/vigilctl.out";
    const std::string err_path = pki_->dir() + "/vigilctl.err";
    const int status = std::system(
        (vigilctl + " " + args + " >" + out_path + " 2>" + err_path + " </dev/null").c_str());
    auto slurp = [](const std::string& path) {
      std::ifstream in(path);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    if (out != nullptr) *out = slurp(out_path);
    if (err != nullptr) *err = slurp(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  FakeFleetService fleet_;
  std::unique_ptr<vigil::testing::TestPki> pki_;
  std::unique_ptr<vigil::testing::TestVerifier> verifier_;
};

/// A node id made of one repeated hex digit.
inline std::string NodeId(char c) { return std::string(64, c); }

/// A verdict with two workloads: "agent" contraindicated (ptrace allowed by seccomp, with
/// NIST and ISO controls; broken by two processes) and "runner" affirming.
inline v1::Verdict CannedVerdict(const std::string& node_id, int64_t appraised_unix_nano) {
  v1::Verdict v;
  v.set_node_id(node_id);
  v.set_status(v1::TRUST_CONTRAINDICATED);
  v.add_reasons(v1::POLICY_VIOLATION);
  v.set_appraised_unix_nano(appraised_unix_nano);
  v.set_report_sequence(7);
  v.set_evidence_sha256(std::string(64, '5'));
  v.set_policy_digest(std::string(64, '6'));
  v.add_policy_ids("agents@3");
  v.mutable_trust_vector()->set_instance_identity(2);
  v.mutable_trust_vector()->set_configuration(96);
  v.mutable_trust_vector()->set_executables(2);
  v.mutable_trust_vector()->set_sourced_data(32);
  v1::WorkloadVerdict* agent = v.add_workloads();
  agent->set_workload_id(std::string(64, '1'));
  agent->mutable_identity()->set_name("agent");
  agent->mutable_identity()->set_exe_path("/usr/bin/agent");
  agent->mutable_identity()->set_exe_sha256(std::string(64, '7'));
  agent->add_pids(100);
  agent->add_pids(101);
  agent->set_status(v1::TRUST_CONTRAINDICATED);
  agent->set_policy_id("agents@3");
  for (int pid : {100, 101}) {
    v1::RuleOutcome* r = agent->add_rules();
    r->set_rule_id("seccomp-denies-ptrace");
    r->set_pid(pid);
    r->set_status(v1::TRUST_CONTRAINDICATED);
    r->set_kind("seccomp");
    r->set_observed("ptrace allowed");
    r->set_expected("ptrace denied");
    r->add_controls("NIST-800-53r5:AC-6(10)");
    r->add_controls("ISO27001:2022:A.8.2");
    r->set_workload_id(agent->workload_id());
  }
  v1::RuleOutcome* nnp = agent->add_rules();
  nnp->set_rule_id("no-new-privs");
  nnp->set_status(v1::TRUST_AFFIRMING);
  nnp->set_observed("set");
  nnp->set_expected("set");
  nnp->add_controls("NIST-800-53r5:AC-6");
  v1::WorkloadVerdict* runner = v.add_workloads();
  runner->set_workload_id(std::string(64, '2'));
  runner->mutable_identity()->set_name("runner");
  runner->set_status(v1::TRUST_AFFIRMING);
  v1::RuleOutcome* ok = runner->add_rules();
  ok->set_rule_id("caps-bounded");
  ok->set_status(v1::TRUST_AFFIRMING);
  for (const v1::WorkloadVerdict& w : v.workloads()) {
    for (const v1::RuleOutcome& r : w.rules()) *v.add_rules() = r;
  }
  return v;
}

}  // namespace vigil::cli::testing
