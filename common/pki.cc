#include "common/pki.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/ek_certificate.h"
#include "common/spiffe.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

enum class LeafKind { kServer, kClient };

// Never prompt on a terminal for a passphrase: Vigil's keys are unencrypted, and an
// encrypted one is an error.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpenSslError("RAND_bytes");
  bytes[0] &= 0x7f;  // DER INTEGER serials must be positive.
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr) return OpenSslError("BN_bin2bn");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr || X509_set_serialNumber(cert, serial.get()) != 1) {
    return OpenSslError("setting the serial number");
  }
  return absl::OkStatus();
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("adding extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

absl::Status AddName(GENERAL_NAMES* names, int type, std::string_view value) {
  GeneralNamePtr name(GENERAL_NAME_new());
  if (name == nullptr) return OpenSslError("GENERAL_NAME_new");
  if (type == GEN_IPADD) {
    std::string v(value);
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(v.c_str());
    if (ip == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("bad IP address ", std::string(value)));
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s == nullptr || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      return OpenSslError("ASN1_STRING_set");
    }
    GENERAL_NAME_set0_value(name.get(), type, s);
  }
  if (sk_GENERAL_NAME_push(names, name.get()) == 0) return OpenSslError("sk_push");
  name.release();  // Now owned by `names`.
  return absl::OkStatus();
}

absl::Status ValidateHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return absl::InvalidArgumentError("empty host name");
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", std::string(host), "\" is neither an IP address nor a DNS name"));
    }
  }
  return absl::OkStatus();
}

// Builds and signs a certificate for `subject_key` with subject CN `cn`. `issuer` is null for
// the self-signed CA. `extensions` are fixed OpenSSL config strings (never user input);
// `sans` (may be null) is added as the subjectAltName.
absl::StatusOr<X509Ptr> BuildCertificate(const CaMaterial* issuer, EVP_PKEY* subject_key,
                                         EVP_PKEY* signing_key, std::string_view cn,
                                         const Validity& validity,
                                         const std::vector<std::pair<int, const char*>>& extensions,
                                         GENERAL_NAMES* sans) {
  if (validity.not_after <= validity.not_before) {
    return absl::InvalidArgumentError("certificate lifetime must be positive");
  }
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OpenSslError("X509_new");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  std::string cn_str(cn);
  if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn_str.c_str()), -1, -1,
                                 0) != 1) {
    return OpenSslError("setting the subject CN", absl::StatusCode::kInvalidArgument);
  }
  X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer->cert.get()) : subject;
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(validity.not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(validity.not_after)) == nullptr ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslError("filling the certificate");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer->cert.get() : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, nid, value));
  }
  if (sans != nullptr &&
      X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding subjectAltName");
  }
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return cert;
}

// A leaf certificate for `subject_key` signed by `ca`.
absl::StatusOr<X509Ptr> BuildLeaf(const CaMaterial& ca, EVP_PKEY* subject_key, std::string_view cn,
                                  LeafKind kind, GENERAL_NAMES* sans, const Validity& validity) {
  const char* eku = kind == LeafKind::kServer ? "serverAuth" : "clientAuth";
  return BuildCertificate(&ca, subject_key, ca.key.get(), cn, validity,
                          {{NID_basic_constraints, "critical,CA:FALSE"},
                           {NID_key_usage, "critical,digitalSignature"},
                           {NID_ext_key_usage, eku},
                           {NID_subject_key_identifier, "hash"},
                           {NID_authority_key_identifier, "keyid:always"}},
                          sans);
}

absl::StatusOr<GeneralNamesPtr> SpiffeSans(const CaMaterial& ca, std::string_view uri,
                                           std::string* name_out) {
  ASSIGN_OR_RETURN(SpiffeId id, ParseSpiffeId(uri));
  if (id.trust_domain != ca.trust_domain) {
    return absl::InvalidArgumentError(absl::StrCat("SPIFFE ID is in trust domain ", id.trust_domain,
                                                   ", the CA serves ", ca.trust_domain));
  }
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("sk_GENERAL_NAME_new_null");
  RETURN_IF_ERROR(AddName(names.get(), GEN_URI, uri));
  *name_out = id.name;
  return names;
}

// Sets `fd`'s mode (before any byte is written: umask or an older file may have left it
// wider), writes all of `contents` and fsyncs. `path` names the file in errors.
absl::Status WriteAndSync(int fd, const std::string& path, std::string_view contents, mode_t mode) {
  if (fchmod(fd, mode) != 0) return absl::InternalError(absl::StrCat(path, ": fchmod failed"));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return absl::InternalError(absl::StrCat(path, ": fsync failed"));
  return absl::OkStatus();
}

absl::Status WriteFileWithMode(const std::string& path, std::string_view contents, bool overwrite,
                               mode_t mode) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL);
  UniqueFd fd(open(path.c_str(), flags, mode));
  if (!fd.Valid()) {
    return absl::Status(
        errno == EEXIST ? absl::StatusCode::kAlreadyExists : absl::StatusCode::kPermissionDenied,
        absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return WriteAndSync(fd.Get(), path, contents, mode);
}

}  // namespace

Validity Validity::FromNow(absl::Duration lifetime) {
  absl::Time now = absl::Now();
  return Validity{now - absl::Minutes(5), now + lifetime};
}

absl::StatusOr<EvpPkeyPtr> GenerateKey() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError("generating a P-256 key");
  return key;
}

absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encoding a private key");
  }
  return MemBioContents(bio.get());
}

absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem) {
  BioPtr bio = MemBioOver(pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return OpenSslError("not a PEM private key", absl::StatusCode::kInvalidArgument);
  }
  return key;
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError("encoding a certificate");
  }
  return MemBioContents(bio.get());
}

absl::StatusOr<X509Ptr> CertificateFromPem(std::string_view pem) {
  BioPtr bio = MemBioOver(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return OpenSslError("not a PEM certificate", absl::StatusCode::kInvalidArgument);
  }
  return cert;
}

absl::StatusOr<CaMaterial> CreateCa(std::string_view trust_domain, absl::Duration lifetime) {
  RETURN_IF_ERROR(ValidateTrustDomain(trust_domain));
  CaMaterial ca;
  ca.trust_domain = std::string(trust_domain);
  ASSIGN_OR_RETURN(ca.key, GenerateKey());
  ASSIGN_OR_RETURN(ca.cert, BuildCertificate(nullptr, ca.key.get(), ca.key.get(),
                                             absl::StrCat("Vigil CA ", std::string(trust_domain)),
                                             Validity::FromNow(lifetime),
                                             {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                              {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                              {NID_subject_key_identifier, "hash"},
                                              {NID_authority_key_identifier, "keyid:always"}},
                                             nullptr));
  ASSIGN_OR_RETURN(ca.cert_pem, CertificateToPem(ca.cert.get()));
  return ca;
}

absl::StatusOr<CertAndKey> IssueServerCertificate(const CaMaterial& ca,
                                                  std::string_view common_name,
                                                  const std::vector<std::string>& hosts,
                                                  const Validity& validity) {
  if (hosts.empty()) return absl::InvalidArgumentError("a server certificate needs a SAN");
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("sk_GENERAL_NAME_new_null");
  for (const std::string& host : hosts) {
    ASN1_OCTET_STRING* probe = a2i_IPADDRESS(host.c_str());
    bool is_ip = probe != nullptr;
    ASN1_OCTET_STRING_free(probe);
    if (!is_ip) RETURN_IF_ERROR(ValidateHostName(host));
    RETURN_IF_ERROR(AddName(names.get(), is_ip ? GEN_IPADD : GEN_DNS, host));
  }
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey());
  ASSIGN_OR_RETURN(X509Ptr cert,
                   BuildLeaf(ca, key.get(), common_name, LeafKind::kServer, names.get(), validity));
  CertAndKey out;
  ASSIGN_OR_RETURN(out.cert_pem, CertificateToPem(cert.get()));
  ASSIGN_OR_RETURN(out.key_pem, PrivateKeyToPem(key.get()));
  return out;
}

absl::StatusOr<CertAndKey> IssueClientCertificate(const CaMaterial& ca, std::string_view spiffe_uri,
                                                  const Validity& validity) {
  std::string name;
  ASSIGN_OR_RETURN(GeneralNamesPtr names, SpiffeSans(ca, spiffe_uri, &name));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey());
  ASSIGN_OR_RETURN(X509Ptr cert,
                   BuildLeaf(ca, key.get(), name, LeafKind::kClient, names.get(), validity));
  CertAndKey out;
  ASSIGN_OR_RETURN(out.cert_pem, CertificateToPem(cert.get()));
  ASSIGN_OR_RETURN(out.key_pem, PrivateKeyToPem(key.get()));
  return out;
}

absl::StatusOr<std::string> IssueEkCertificate(const CaMaterial& ca, EVP_PKEY* ek_public,
                                               std::string_view common_name,
                                               const Validity& validity) {
  ASSIGN_OR_RETURN(X509Ptr cert,
                   BuildCertificate(&ca, ek_public, ca.key.get(), common_name, validity,
                                    {{NID_basic_constraints, "critical,CA:FALSE"},
                                     {NID_key_usage, "critical,keyEncipherment,keyAgreement"},
                                     {NID_authority_key_identifier, "keyid:always"}},
                                    nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return OpenSslError("i2d_X509");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> SignCsr(const CaMaterial& ca, std::string_view csr_pem,
                                    std::string_view spiffe_uri, absl::Duration lifetime) {
  BioPtr bio = MemBioOver(csr_pem);
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (req == nullptr) {
    return OpenSslError("not a PEM certificate request", absl::StatusCode::kInvalidArgument);
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr) {
    return OpenSslError("CSR has no usable public key", absl::StatusCode::kInvalidArgument);
  }
  if (X509_REQ_verify(req.get(), pub) != 1) {
    return OpenSslError("CSR signature does not verify", absl::StatusCode::kInvalidArgument);
  }
  int type = EVP_PKEY_get_base_id(pub);
  if (!(type == EVP_PKEY_EC && EVP_PKEY_get_bits(pub) >= 256) &&
      !(type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pub) >= 2048)) {
    return absl::InvalidArgumentError("CSR key must be ECC P-256 or stronger, or RSA >= 2048");
  }
  std::string name;
  ASSIGN_OR_RETURN(GeneralNamesPtr names, SpiffeSans(ca, spiffe_uri, &name));
  ASSIGN_OR_RETURN(X509Ptr cert, BuildLeaf(ca, pub, name, LeafKind::kClient, names.get(),
                                           Validity::FromNow(lifetime)));
  return CertificateToPem(cert.get());
}

absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(std::string_view common_name) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey());
  X509ReqPtr req(X509_REQ_new());
  std::string cn(common_name);
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName,
                                 MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0) {
    return OpenSslError("building a CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslError("encoding a CSR");
  }
  KeyAndCsr out;
  out.csr_pem = MemBioContents(bio.get());
  ASSIGN_OR_RETURN(out.key_pem, PrivateKeyToPem(key.get()));
  return out;
}

absl::StatusOr<std::string> MakeCsrForKey(EVP_PKEY* key, std::string_view common_name) {
  if (key == nullptr) return absl::InvalidArgumentError("no key for the CSR");
  X509ReqPtr req(X509_REQ_new());
  std::string cn(common_name);
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName,
                                 MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key) != 1 ||
      X509_REQ_sign(req.get(), key, EVP_sha256()) == 0) {
    return OpenSslError("building a CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpenSslError("encoding a CSR");
  }
  return MemBioContents(bio.get());
}

absl::StatusOr<X509ReqPtr> CsrFromPem(std::string_view csr_pem) {
  BioPtr bio = MemBioOver(csr_pem);
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (req == nullptr) {
    return OpenSslError("not a PEM certificate request", absl::StatusCode::kInvalidArgument);
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    return OpenSslError("CSR signature does not verify", absl::StatusCode::kInvalidArgument);
  }
  return req;
}

absl::StatusOr<Validity> CertificateValidity(X509* cert) {
  if (cert == nullptr) return absl::InvalidArgumentError("no certificate");
  auto to_time = [](const ASN1_TIME* t) -> absl::StatusOr<absl::Time> {
    struct tm tm = {};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
      return absl::InvalidArgumentError("certificate has an unreadable validity time");
    }
    return absl::FromTimeT(timegm(&tm));
  };
  Validity v;
  ASSIGN_OR_RETURN(v.not_before, to_time(X509_get0_notBefore(cert)));
  ASSIGN_OR_RETURN(v.not_after, to_time(X509_get0_notAfter(cert)));
  return v;
}

absl::StatusOr<CaMaterial> LoadCa(const std::string& dir) {
  CaMaterial ca;
  ASSIGN_OR_RETURN(ca.cert_pem, ReadFileToString(dir + "/ca.crt"));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(dir + "/ca.key"));
  ASSIGN_OR_RETURN(std::string td, ReadFileToString(dir + "/trust-domain"));
  ca.trust_domain = std::string(absl::StripAsciiWhitespace(td));
  if (absl::Status s = ValidateTrustDomain(ca.trust_domain); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/trust-domain: ", s.message()));
  }
  ASSIGN_OR_RETURN(ca.cert, CertificateFromPem(ca.cert_pem));
  ASSIGN_OR_RETURN(ca.key, PrivateKeyFromPem(key_pem));
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    return OpenSslError(absl::StrCat(dir, "/ca.key does not match ca.crt"),
                        absl::StatusCode::kInvalidArgument);
  }
  if (X509_check_ca(ca.cert.get()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/ca.crt is not a CA certificate"));
  }
  return ca;
}

absl::Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(X509Ptr ca, CertificateFromPem(ca_pem));
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return OpenSslError("setting up verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    DrainOpenSslErrors();
    return absl::UnauthenticatedError(
        absl::StrCat("certificate does not verify: ",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> UriSans(X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

absl::StatusOr<SpiffeId> CertificateSpiffeId(X509* cert, std::string_view trust_domain,
                                             std::string* uri) {
  ASSIGN_OR_RETURN(std::vector<std::string> uris, UriSans(cert));
  if (uris.size() != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("the certificate must carry exactly one URI SAN, has ", uris.size()));
  }
  absl::StatusOr<SpiffeId> id = ParseSpiffeId(uris[0]);
  if (!id.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the certificate's SAN is not a Vigil SPIFFE ID: ", id.status().message()));
  }
  if (id->trust_domain != trust_domain) {
    return absl::UnauthenticatedError(absl::StrCat("the certificate is in trust domain ",
                                                   id->trust_domain, ", not ",
                                                   std::string(trust_domain)));
  }
  if (uri != nullptr) *uri = uris[0];
  return id;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ss.str();
}

absl::Status WritePrivateFile(const std::string& path, std::string_view contents, bool overwrite) {
  return WriteFileWithMode(path, contents, overwrite, 0600);
}

absl::Status ReplacePrivateFileAtomically(const std::string& path, std::string_view contents) {
  std::string tmp = absl::StrCat(path, ".tmp-XXXXXX");
  UniqueFd fd(mkostemp(tmp.data(), O_CLOEXEC));  // created 0600
  if (!fd.Valid()) return absl::InternalError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  bool renamed = false;
  absl::Cleanup drop_tmp = [&] {
    if (!renamed) unlink(tmp.c_str());
  };
  RETURN_IF_ERROR(WriteAndSync(fd.Get(), tmp, contents, 0600));
  if (fd.Close() != 0) return absl::InternalError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": rename failed: ", std::strerror(errno)));
  }
  renamed = true;
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.Valid()) return absl::InternalError(absl::StrCat(dir, ": ", std::strerror(errno)));
  if (fsync(dir_fd.Get()) != 0) return absl::InternalError(absl::StrCat(dir, ": fsync failed"));
  return absl::OkStatus();
}

absl::Status WritePublicFile(const std::string& path, std::string_view contents, bool overwrite) {
  return WriteFileWithMode(path, contents, overwrite, 0644);
}

}  // namespace vigil
