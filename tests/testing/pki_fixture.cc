#include "tests/testing/pki_fixture.h"

#include <stdlib.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "cli/pki_command.h"
#include "common/status_macros.h"

namespace vigil::testing {
namespace {

absl::StatusOr<CertAndKey> ReadPair(const std::string& cert_path, const std::string& key_path) {
  CertAndKey out;
  ASSIGN_OR_RETURN(out.cert_pem, ReadFileToString(cert_path));
  ASSIGN_OR_RETURN(out.key_pem, ReadFileToString(key_path));
  return out;
}

absl::StatusOr<CertAndKey> IssueInto(const std::string& dir, const std::string& node_id,
                                     const std::string& client_name,
                                     const std::string& role = "operator") {
  cli::PkiIssueOptions options;
  options.dir = dir;
  options.node_id = node_id;
  options.client_name = client_name;
  options.role = role;
  ASSIGN_OR_RETURN(cli::IssuedFiles files, cli::IssueIntoPkiDirectory(options));
  return ReadPair(files.cert_path, files.key_path);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestPki>> TestPki::Create() {
  std::unique_ptr<TestPki> pki(new TestPki());
  ASSIGN_OR_RETURN(pki->tmp_, TestTempDir::Create("pki"));
  pki->dir_ = pki->tmp_.path();
  cli::PkiInitOptions init;
  init.dir = pki->dir_;
  init.trust_domain = kTrustDomain;
  RETURN_IF_ERROR(cli::InitPkiDirectory(init));
  ASSIGN_OR_RETURN(pki->ca_, LoadCa(pki->dir_));
  ASSIGN_OR_RETURN(pki->verifier_,
                   ReadPair(pki->dir_ + "/verifier.crt", pki->dir_ + "/verifier.key"));
  ASSIGN_OR_RETURN(pki->node_, IssueInto(pki->dir_, kNodeId, ""));
  ASSIGN_OR_RETURN(pki->client_, IssueInto(pki->dir_, "", kClientName));
  ASSIGN_OR_RETURN(pki->foreign_ca_, CreateCa(kTrustDomain, absl::Hours(24)));
  return pki;
}

TestPki::~TestPki() = default;

absl::StatusOr<CertAndKey> TestPki::IssueNode(const std::string& node_id) const {
  return IssueInto(dir_, node_id, "");
}

absl::StatusOr<CertAndKey> TestPki::IssueClient(const std::string& name,
                                                const std::string& role) const {
  return IssueInto(dir_, "", name, role);
}

absl::StatusOr<CertAndKey> TestPki::IssueWithValidity(const std::string& spiffe_uri,
                                                      const Validity& validity) const {
  return IssueClientCertificate(ca_, spiffe_uri, validity);
}

absl::StatusOr<CertAndKey> TestPki::IssueForeign(const std::string& spiffe_uri) const {
  return IssueClientCertificate(foreign_ca_, spiffe_uri, Validity::FromNow(absl::Hours(1)));
}

std::string TestPki::NodeUri(const std::string& node_id) {
  return absl::StrCat("spiffe://", kTrustDomain, "/vigil/node/", node_id);
}

std::string TestPki::ClientUri(const std::string& name) {
  return absl::StrCat("spiffe://", kTrustDomain, "/vigil/operator/", name);
}

}  // namespace vigil::testing
