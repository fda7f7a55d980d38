// The Kubernetes admission webhook: real AdmissionReview v1 documents (tests/verifier/
// testdata/admission/) answered from a real Fleet API over a SQLite store, first through
// AdmissionReviewer, then over HTTPS through the AdmissionServer as an API server would call it.

#include <gmock/gmock.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "tests/testing/build_paths.h"
#include "tests/verifier/fleet_test_fixture.h"
#include "verifier/admission_review.h"
#include "verifier/admission_server.h"

namespace vigil::verifier {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string Document(const std::string& name) {
  std::ifstream in(vigil::testing::SourceDir() + "/tests/verifier/testdata/admission/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class AdmissionReviewTest : public FleetFixture {
 protected:
  // Answers `document` and returns the AdmissionReview's response object (expecting 200).
  Json Answer(AdmissionReviewer& reviewer, const std::string& document) {
    AdmissionHttpResponse answer = reviewer.Review(document, absl::Now());
    EXPECT_EQ(answer.http_status, 200) << answer.body;
    EXPECT_EQ(answer.content_type, "application/json");
    Json review = Json::parse(answer.body);
    EXPECT_EQ(review["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(review["kind"], "AdmissionReview");
    const Json request = Json::parse(document)["request"];
    EXPECT_EQ(review["response"]["uid"], request["uid"]);
    return review["response"];
  }

  static std::string Message(const Json& response) {
    return response["status"]["message"].get<std::string>();
  }

  const std::string node_a_ = FleetNodeId('a');
  const std::string node_b_ = FleetNodeId('b');
};

TEST_F(AdmissionReviewTest, APodOnAnAffirmingNodeIsAdmitted) {
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now()),
         "worker-1.cluster.example");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_scheduled.json"));
  EXPECT_TRUE(response["allowed"]) << response.dump();
  EXPECT_FALSE(response.contains("status"));
}

TEST_F(AdmissionReviewTest, APodOnANodeThatIsNotAffirmingIsDeniedWithTheFailingRuleAndControls) {
  Record(node_a_,
         FleetVerdict(node_a_, v1::TRUST_CONTRAINDICATED, absl::Now(),
                      {{"naive", v1::TRUST_CONTRAINDICATED}}),
         "worker-1");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_scheduled.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_EQ(response["status"]["code"], 403);
  const std::string message = Message(response);
  EXPECT_THAT(message, HasSubstr("vigil: node worker-1 (aaaaaaaaaaaa): node is CONTRAINDICATED"));
  EXPECT_THAT(message, HasSubstr("seccomp-denies-ptrace"));
  EXPECT_THAT(message, HasSubstr("AC-6(10)"));
}

TEST_F(AdmissionReviewTest, AStaleResultDenies) {
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now() - absl::Minutes(10)),
         "worker-1");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_scheduled.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_THAT(Message(response), HasSubstr("stale"));

  AdmissionReviewOptions lenient;
  lenient.max_age = absl::Minutes(20);
  AdmissionReviewer patient(fleet_.get(), lenient);
  EXPECT_TRUE(Answer(patient, Document("pod_create_scheduled.json"))["allowed"]);
}

TEST_F(AdmissionReviewTest, ANodeNoVigilNodeReportsIsDenied) {
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now()), "worker-2");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_scheduled.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_THAT(Message(response),
              HasSubstr("no node known to this verifier reports hostname \"worker-1\""));
}

TEST_F(AdmissionReviewTest, AHostnameTwoNodesReportIsDenied) {
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now()), "worker-1");
  Record(node_b_, FleetVerdict(node_b_, v1::TRUST_AFFIRMING, absl::Now()), "WORKER-1.example");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_scheduled.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_THAT(Message(response), HasSubstr("is reported by 2 nodes"));
  EXPECT_THAT(reviewer.ResolveNode("worker-1").status().code(),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*reviewer.ResolveNode(node_b_), node_b_);
}

TEST_F(AdmissionReviewTest, AnAgentPodIsDeniedWhenItsWorkloadIsNotAffirming) {
  Record(node_a_,
         FleetVerdict(node_a_, v1::TRUST_WARNING, absl::Now(),
                      {{"hardened", v1::TRUST_WARNING}, {"naive", v1::TRUST_AFFIRMING}}),
         "worker-1");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_agent.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_THAT(Message(response), HasSubstr("workload hardened"));
}

TEST_F(AdmissionReviewTest, AnAgentPodWhoseWorkloadTheNodeHasNotReportedIsCheckedOnTheNodeAlone) {
  Record(node_a_,
         FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now(), {{"other", v1::TRUST_AFFIRMING}}),
         "worker-1");
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_create_agent.json"));
  EXPECT_TRUE(response["allowed"]) << response.dump();
  ASSERT_EQ(response["warnings"].size(), 1u);
  EXPECT_THAT(response["warnings"][0].get<std::string>(),
              HasSubstr("workload hardened has no result"));
}

TEST_F(AdmissionReviewTest, TheBindingOfAnUnscheduledAgentPodChecksItsNodeAndWorkload) {
  Record(node_a_,
         FleetVerdict(node_a_, v1::TRUST_CONTRAINDICATED, absl::Now(),
                      {{"naive", v1::TRUST_CONTRAINDICATED}}),
         "worker-1");
  AdmissionReviewer reviewer(fleet_.get(), {});
  // Created without a node: admitted, the binding decides.
  EXPECT_TRUE(Answer(reviewer, Document("pod_create_unscheduled_agent.json"))["allowed"]);
  Json response = Answer(reviewer, Document("pod_binding.json"));
  EXPECT_FALSE(response["allowed"]);
  EXPECT_THAT(Message(response), HasSubstr("workload naive"));
  EXPECT_THAT(Message(response), HasSubstr("node worker-1"));

  // A binding the reviewer saw no creation for is checked on the node alone.
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now()), "worker-1");
  EXPECT_TRUE(Answer(reviewer, Document("pod_binding.json"))["allowed"]);
}

TEST_F(AdmissionReviewTest, OtherOperationsAreAdmittedUnchecked) {
  AdmissionReviewer reviewer(fleet_.get(), {});
  Json response = Answer(reviewer, Document("pod_delete.json"));
  EXPECT_TRUE(response["allowed"]);
  EXPECT_FALSE(response.contains("warnings"));
}

TEST_F(AdmissionReviewTest, WhatIsNotAnAdmissionReviewV1IsABadRequestNamingTheProblem) {
  AdmissionReviewer reviewer(fleet_.get(), {});
  struct Case {
    std::string body;
    std::string says;
  };
  for (const Case& c : {
           Case{"{not json", "the body is not JSON"},
           Case{"[1, 2]", "not a JSON object"},
           Case{Document("v1beta1.json"), "got apiVersion \"admission.k8s.io/v1beta1\""},
           Case{Document("no_uid.json"), "request.uid is missing"},
           Case{Document("spec_not_object.json"), "request.object.spec is not an object"},
           Case{R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})",
                "has no request"},
           Case{R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
                    "request":{"uid":7}})",
                "request.uid is not a string"},
       }) {
    AdmissionHttpResponse answer = reviewer.Review(c.body, absl::Now());
    EXPECT_EQ(answer.http_status, 400) << c.body;
    EXPECT_THAT(answer.body, HasSubstr(c.says)) << c.body;
  }
}

class AdmissionServerTest : public AdmissionReviewTest {
 protected:
  std::unique_ptr<AdmissionServer> StartServer(const std::string& client_ca = "") {
    AdmissionServerOptions options;
    options.address = "127.0.0.1:0";
    options.cert_path = pki_->dir() + "/verifier.crt";
    options.key_path = pki_->dir() + "/verifier.key";
    options.client_ca_path = client_ca;
    options.max_body_bytes = 64 << 10;
    absl::StatusOr<std::unique_ptr<AdmissionServer>> server =
        AdmissionServer::Start(options, fleet_.get());
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  std::unique_ptr<httplib::SSLClient> Client(int port, bool with_certificate = false) {
    std::unique_ptr<httplib::SSLClient> client;
    if (with_certificate) {
      const std::string cert = dir_ + "/client.crt";
      const std::string key = dir_ + "/client.key";
      std::ofstream(cert) << pki_->client().cert_pem;
      std::ofstream(key) << pki_->client().key_pem;
      client = std::make_unique<httplib::SSLClient>("localhost", port, cert, key);
    } else {
      client = std::make_unique<httplib::SSLClient>("localhost", port);
    }
    client->set_ca_cert_path((pki_->dir() + "/ca.crt").c_str());
    client->enable_server_certificate_verification(true);
    return client;
  }
};

TEST_F(AdmissionServerTest, AnswersAdmissionReviewsOverHttps) {
  Record(node_a_,
         FleetVerdict(node_a_, v1::TRUST_CONTRAINDICATED, absl::Now(),
                      {{"naive", v1::TRUST_CONTRAINDICATED}}),
         "worker-1");
  std::unique_ptr<AdmissionServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<httplib::SSLClient> client = Client(server->port());

  httplib::Result health = client->Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);

  httplib::Result denied = client->Post(AdmissionServer::kPath,
                                        Document("pod_create_scheduled.json"), "application/json");
  ASSERT_TRUE(denied) << httplib::to_string(denied.error());
  EXPECT_EQ(denied->status, 200);
  Json review = Json::parse(denied->body);
  EXPECT_FALSE(review["response"]["allowed"]);
  EXPECT_EQ(review["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");

  httplib::Result bad = client->Post(AdmissionServer::kPath, "{", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("not an AdmissionReview v1 request"));

  httplib::Result form =
      client->Post(AdmissionServer::kPath, Document("pod_create_scheduled.json"), "text/plain");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415);

  httplib::Result huge =
      client->Post(AdmissionServer::kPath, std::string(128 << 10, ' '), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
}

TEST_F(AdmissionServerTest, WithAClientCaOnlyCallersWithItsCertificatesAreServed) {
  Record(node_a_, FleetVerdict(node_a_, v1::TRUST_AFFIRMING, absl::Now()), "worker-1");
  std::unique_ptr<AdmissionServer> server = StartServer(pki_->dir() + "/ca.crt");
  ASSERT_NE(server, nullptr);

  httplib::Result anonymous =
      Client(server->port())
          ->Post(AdmissionServer::kPath, Document("pod_create_scheduled.json"), "application/json");
  EXPECT_FALSE(anonymous);

  httplib::Result authenticated =
      Client(server->port(), /*with_certificate=*/true)
          ->Post(AdmissionServer::kPath, Document("pod_create_scheduled.json"), "application/json");
  ASSERT_TRUE(authenticated) << httplib::to_string(authenticated.error());
  EXPECT_TRUE(Json::parse(authenticated->body)["response"]["allowed"]);
}

TEST_F(AdmissionServerTest, UnusableFilesAndAddressesAreClearStartupErrors) {
  AdmissionServerOptions options;
  options.address = "127.0.0.1:0";
  options.cert_path = dir_ + "/missing.crt";
  options.key_path = pki_->dir() + "/verifier.key";
  absl::StatusOr<std::unique_ptr<AdmissionServer>> server =
      AdmissionServer::Start(options, fleet_.get());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("missing.crt"));

  options.cert_path = pki_->dir() + "/verifier.crt";
  options.key_path = pki_->dir() + "/verifier.key";
  options.address = "no-port";
  EXPECT_EQ(AdmissionServer::Start(options, fleet_.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vigil::verifier
