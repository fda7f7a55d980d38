// The enrollment exchange against a fake Enrollment service on an in-process gRPC server, with
// a fake TPM: what it sends, in which order, and how each failure ends it.
#include "common/enrollment_exchange.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vigil {
namespace {

class FakeTpm final : public EnrollmentTpm {
 public:
  const std::string& node_id() const override { return node_id_; }
  const std::string& ek_public() const override { return ek_public_; }
  const std::string& ek_certificate_der() const override { return ek_certificate_der_; }
  const std::string& ak_public() const override { return ak_public_; }
  const std::string& ak_name() const override { return ak_name_; }
  const std::string& srk_public() const override { return srk_public_; }
  absl::StatusOr<std::string> ActivateCredential(std::string_view credential_blob,
                                                 std::string_view encrypted_secret) override {
    activations.emplace_back(std::string(credential_blob) + "|" + std::string(encrypted_secret));
    if (!activation_status.ok()) return activation_status;
    return std::string("secret for ") + std::string(credential_blob);
  }

  std::string node_id_ = "ab12";
  std::string ek_public_ = std::string(
      "\x00\x03"
      "ek\x00",
      5);
  std::string ek_certificate_der_ = "ek-cert";
  std::string ak_public_ = "ak-public";
  std::string ak_name_ = std::string("\x00\x02\x00\x0b", 4);
  std::string srk_public_ = "srk-public";
  absl::Status activation_status;
  std::vector<std::string> activations;
};

// Records what it is sent; answers as configured.
class FakeEnrollment final : public v1::Enrollment::Service {
 public:
  grpc::Status BeginEnrollment(grpc::ServerContext*, const v1::BeginEnrollmentRequest* request,
                               v1::BeginEnrollmentResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    begins.push_back(*request);
    if (!begin_status.ok()) return begin_status;
    response->set_enrollment_id("enrollment-7");
    response->set_credential_blob("blob");
    response->set_encrypted_secret("wrapped");
    response->set_node_id(derived_node_id);
    return grpc::Status::OK;
  }
  grpc::Status CompleteEnrollment(grpc::ServerContext*,
                                  const v1::CompleteEnrollmentRequest* request,
                                  v1::CompleteEnrollmentResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    completes.push_back(*request);
    if (!complete_status.ok()) return complete_status;
    response->set_certificate_chain_pem("node cert, then CA");
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::string derived_node_id = "ab12";
  grpc::Status begin_status;
  grpc::Status complete_status;
  std::vector<v1::BeginEnrollmentRequest> begins;
  std::vector<v1::CompleteEnrollmentRequest> completes;
};

class EnrollmentExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Enrollment::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  absl::StatusOr<std::string> Exchange() {
    return ExchangeEnrollment(*stub_, tpm_, "csr", "verifier.test:7443", absl::Seconds(30));
  }

  FakeEnrollment service_;
  FakeTpm tpm_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Enrollment::Stub> stub_;
};

TEST_F(EnrollmentExchangeTest, SendsTheTpmsIdentityThenItsActivatedSecret) {
  auto chain = Exchange();
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ(*chain, "node cert, then CA");
  ASSERT_EQ(service_.begins.size(), 1u);
  v1::BeginEnrollmentRequest expected;
  expected.set_ek_public(tpm_.ek_public_);
  expected.set_ek_certificate(tpm_.ek_certificate_der_);
  expected.set_ak_public(tpm_.ak_public_);
  expected.set_ak_name(tpm_.ak_name_);
  expected.set_srk_public(tpm_.srk_public_);
  expected.set_csr_pem("csr");
  EXPECT_EQ(service_.begins[0].SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(tpm_.activations, std::vector<std::string>{"blob|wrapped"});
  ASSERT_EQ(service_.completes.size(), 1u);
  EXPECT_EQ(service_.completes[0].enrollment_id(), "enrollment-7");
  EXPECT_EQ(service_.completes[0].activated_secret(), "secret for blob");
}

TEST_F(EnrollmentExchangeTest, RefusesAChallengeForAnotherNodeIdWithoutActivating) {
  service_.derived_node_id = "cd34";
  auto chain = Exchange();
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(chain.status().message(), "verifier derived node_id cd34 but the TPM's is ab12");
  EXPECT_TRUE(tpm_.activations.empty());
  EXPECT_TRUE(service_.completes.empty());
}

TEST_F(EnrollmentExchangeTest, ABeginErrorKeepsItsCodeAndNamesTheVerifier) {
  service_.begin_status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "EK not trusted");
  auto chain = Exchange();
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(chain.status().message(), "BeginEnrollment at verifier.test:7443: EK not trusted");
  EXPECT_TRUE(tpm_.activations.empty());
  EXPECT_TRUE(service_.completes.empty());
}

TEST_F(EnrollmentExchangeTest, AFailedActivationSendsNoAnswer) {
  tpm_.activation_status = absl::PermissionDeniedError("credential is for another object");
  auto chain = Exchange();
  EXPECT_EQ(chain.status(), tpm_.activation_status);
  EXPECT_EQ(tpm_.activations.size(), 1u);
  EXPECT_TRUE(service_.completes.empty());
}

TEST_F(EnrollmentExchangeTest, ACompleteErrorKeepsItsCode) {
  service_.complete_status = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "wrong secret");
  auto chain = Exchange();
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(chain.status().message(), "CompleteEnrollment: wrong secret");
  EXPECT_EQ(service_.completes.size(), 1u);
}

}  // namespace
}  // namespace vigil
