#pragma once

// A throwaway Vigil PKI for tests: `vigilctl pki init` in a fresh temp directory, a node and
// a client certificate issued the way `vigilctl pki issue` does it, and a second, foreign CA
// in the same trust domain for negative tests. The directory is a TestTempDir: removed when
// the object goes away, kept when the test failed.
//
//   ASSERT_OK_AND_ASSIGN-style:
//     absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
//     ASSERT_TRUE(pki.ok()) << pki.status();
//     (*pki)->node()          // CertAndKey of spiffe://vigil.test/vigil/node/<kNodeId>
//     (*pki)->dir()           // ca.crt, verifier.crt, node-<id>.crt, ... as vigilctl writes

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/pki.h"
#include "tests/testing/temp_dir.h"

namespace vigil::testing {

class TestPki {
 public:
  static constexpr char kTrustDomain[] = "vigil.test";
  /// The node and client the PKI is created with.
  static constexpr char kNodeId[] =
      "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
  static constexpr char kClientName[] = "operator";

  /// Makes the directory, CA, verifier certificate (localhost, 127.0.0.1), kNodeId's and
  /// kClientName's certificates, and a foreign CA.
  static absl::StatusOr<std::unique_ptr<TestPki>> Create();
  ~TestPki();

  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  /// The PKI directory (layout of common/pki.h).
  const std::string& dir() const { return dir_; }
  const CaMaterial& ca() const { return ca_; }
  const std::string& ca_cert_pem() const { return ca_.cert_pem; }
  /// The verifier's server certificate and key.
  const CertAndKey& verifier() const { return verifier_; }
  /// kNodeId's and kClientName's certificates.
  const CertAndKey& node() const { return node_; }
  const CertAndKey& client() const { return client_; }

  /// Issues (and writes as node-<id>.crt/.key) a certificate for another node.
  absl::StatusOr<CertAndKey> IssueNode(const std::string& node_id) const;
  /// Issues (and writes as client-<name>.crt/.key) a certificate for another client with
  /// `role` ("operator", "auditor" or "orchestrator").
  absl::StatusOr<CertAndKey> IssueClient(const std::string& name,
                                         const std::string& role = "operator") const;
  /// A certificate from this CA for `spiffe_uri` with any validity window (e.g. expired).
  absl::StatusOr<CertAndKey> IssueWithValidity(const std::string& spiffe_uri,
                                               const Validity& validity) const;
  /// A certificate for `spiffe_uri` from the foreign CA (same trust domain, other key).
  absl::StatusOr<CertAndKey> IssueForeign(const std::string& spiffe_uri) const;

  /// spiffe://vigil.test/vigil/node/<id> and .../operator/<name>.
  static std::string NodeUri(const std::string& node_id);
  static std::string ClientUri(const std::string& name);

 private:
  TestPki() = default;

  TestTempDir tmp_;
  std::string dir_;
  CaMaterial ca_;
  CaMaterial foreign_ca_;
  CertAndKey verifier_;
  CertAndKey node_;
  CertAndKey client_;
};

}  // namespace vigil::testing
