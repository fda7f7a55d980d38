#pragma once

// Vigil's certificate authority: key generation, CSRs, issuing certificates and reading and
// writing a PKI directory. OpenSSL library API only; nothing shells out.
//
// A PKI directory (written by `vigilctl pki init`) holds:
//   ca.crt, ca.key            the Vigil CA (key 0600)
//   verifier.crt, verifier.key the verifier's server certificate (serverAuth)
//   trust-domain              the SPIFFE trust domain, one line
//   node-<id>.crt/.key, client-<name>.crt/.key   issued by `vigilctl pki issue`

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "common/spiffe.h"

namespace vigil {

/// The CA's certificate and private key, loaded and parsed once.
struct CaMaterial {
  X509Ptr cert;
  EvpPkeyPtr key;
  std::string cert_pem;
  /// The trust domain certificates from this CA belong to.
  std::string trust_domain;
};

/// A freshly generated private key and a PKCS#10 request signed with it.
struct KeyAndCsr {
  std::string key_pem;  ///< PKCS#8 PEM; a secret.
  std::string csr_pem;
};

/// A certificate and its private key, both PEM.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;  ///< A secret: never log it.
};

/// The validity window of a certificate to issue.
struct Validity {
  absl::Time not_before;
  absl::Time not_after;
  /// now - 5 minutes (clock skew) to now + lifetime.
  static Validity FromNow(absl::Duration lifetime);
};

/// A new ECC P-256 key.
absl::StatusOr<EvpPkeyPtr> GenerateKey();

/// PEM (PKCS#8, unencrypted) of a private key.
absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key);
/// Parses a PEM private key (PKCS#8 or traditional).
absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem);
/// PEM of a certificate.
absl::StatusOr<std::string> CertificateToPem(X509* cert);
/// Parses the first PEM certificate in `pem`.
absl::StatusOr<X509Ptr> CertificateFromPem(std::string_view pem);

/// A self-signed CA (CN "Vigil CA <trust_domain>", basicConstraints CA:TRUE pathlen 0,
/// keyCertSign/cRLSign) with a new P-256 key.
absl::StatusOr<CaMaterial> CreateCa(std::string_view trust_domain, absl::Duration lifetime);

/// A server certificate (serverAuth) for the verifier. Each of `hosts` becomes an IP SAN
/// when it parses as an IPv4/IPv6 address and a DNS SAN otherwise.
absl::StatusOr<CertAndKey> IssueServerCertificate(const CaMaterial& ca,
                                                  std::string_view common_name,
                                                  const std::vector<std::string>& hosts,
                                                  const Validity& validity);

/// A client certificate (clientAuth) whose only SAN is `spiffe_uri`, with a new key.
absl::StatusOr<CertAndKey> IssueClientCertificate(const CaMaterial& ca, std::string_view spiffe_uri,
                                                  const Validity& validity);

/// Signs a node's CSR. Verifies the CSR's self-signature; ignores every name and extension
/// the CSR asks for and sets only: subject CN = the SPIFFE ID's name, SAN URI `spiffe_uri`
/// (which must be a valid Vigil SPIFFE ID in the CA's trust domain), clientAuth EKU,
/// digitalSignature key usage, and a random 128-bit serial. Returns the PEM certificate.
absl::StatusOr<std::string> SignCsr(const CaMaterial& ca, std::string_view csr_pem,
                                    std::string_view spiffe_uri, absl::Duration lifetime);

/// A new P-256 key and a CSR for it with subject CN `common_name` (node side).
absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(std::string_view common_name);

/// A CSR with subject CN `common_name` for an existing key (certificate renewal keeps the key).
absl::StatusOr<std::string> MakeCsrForKey(EVP_PKEY* key, std::string_view common_name);

/// Parses a PEM CSR and verifies its self-signature; INVALID_ARGUMENT otherwise.
absl::StatusOr<X509ReqPtr> CsrFromPem(std::string_view csr_pem);

/// The validity window of a certificate.
absl::StatusOr<Validity> CertificateValidity(X509* cert);

/// Loads DIR/ca.crt, DIR/ca.key and DIR/trust-domain; checks that key and cert match.
absl::StatusOr<CaMaterial> LoadCa(const std::string& dir);

/// Verifies `cert_pem` against `ca_pem` with X509_verify_cert (at the current time).
absl::Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem);

/// The URI SANs of a certificate, in order.
absl::StatusOr<std::vector<std::string>> UriSans(X509* cert);

/// The identity a (verified) certificate names: UNAUTHENTICATED unless it carries exactly one
/// URI SAN, a Vigil SPIFFE ID in `trust_domain`. `uri`, when given, receives that SAN as
/// written (the older ".../client/NAME" spelling parses as an operator).
absl::StatusOr<SpiffeId> CertificateSpiffeId(X509* cert, std::string_view trust_domain,
                                             std::string* uri = nullptr);

/// Reads a whole file; NOT_FOUND names the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

/// Writes a file readable only by its owner (0600), created with O_EXCL unless `overwrite`.
absl::Status WritePrivateFile(const std::string& path, std::string_view contents, bool overwrite);

/// Replaces `path` atomically with a 0600 file: writes PATH.tmp-XXXXXX in the same
/// directory, fsyncs it, renames it over `path` and fsyncs the directory. Readers see the
/// old contents or the new, never a torn file.
absl::Status ReplacePrivateFileAtomically(const std::string& path, std::string_view contents);

/// Writes a public file (0644), replacing it when `overwrite`, else failing if it exists.
absl::Status WritePublicFile(const std::string& path, std::string_view contents, bool overwrite);

}  // namespace vigil
