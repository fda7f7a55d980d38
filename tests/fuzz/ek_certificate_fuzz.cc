// libFuzzer harness for EK certificates (EnrollRequest.ek_certificate, DER): the verifier's
// certificate path (EkVerifier::CheckCertificate: one DER certificate, chain to the CA
// bundle, same key as ek_public) and the node's own key match (CheckCertificateMatchesKey).
// Must never crash or trip a sanitizer, and must never trust a certificate the test CA did
// not sign. To reach the checks behind the chain, an input can ask for its certificate to be
// re-issued by the test CA (issuer set to the CA, signed with the CA's key): a certificate
// that then passes must certify the EK's key.
//
// Input: byte 0: bit 0 re-issue by the test CA; the rest: the DER certificate (seeds are EK
// certificates made by swtpm_setup). The CA (a fresh key) is fixed for the process; the EK is
// swtpm's ECC P-384 EK (ek_public.inc), whose certificate is in the seeds.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/openssl_util.h"
#include "common/pki.h"
#include "common/tpm/tpm_public.h"
#include "node/tpm/keys.h"
#include "tests/fuzz/fuzz_check.h"
#include "verifier/ek_verifier.h"

namespace {

using ::vigil::fuzz::Check;

constexpr unsigned char kEkPublic[] = {
#include "tests/fuzz/ek_public.inc"
};

struct Fixture {
  vigil::CaMaterial ca;
  std::unique_ptr<vigil::verifier::EkVerifier> verifier;
  vigil::tpm::TpmPublic ek;
  vigil::EvpPkeyPtr ek_key;
};

const Fixture& Fixed() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    absl::StatusOr<vigil::CaMaterial> ca = vigil::CreateCa("fuzz.invalid", absl::Hours(24));
    Check(ca.ok());
    f->ca = std::move(*ca);
    // EkVerifier reads its bundle from a file: write it once, load it, remove it.
    char path[] = "/tmp/vigil-ek-fuzz-ca-XXXXXX";
    const int fd = mkstemp(path);
    Check(fd >= 0);
    Check(write(fd, f->ca.cert_pem.data(), f->ca.cert_pem.size()) ==
          static_cast<ssize_t>(f->ca.cert_pem.size()));
    close(fd);
    auto verifier = vigil::verifier::EkVerifier::Create({path, false}, nullptr);
    unlink(path);
    Check(verifier.ok());
    f->verifier = std::move(*verifier);
    absl::StatusOr<vigil::tpm::TpmPublic> ek = vigil::tpm::ParseTpm2bPublic(
        std::string_view(reinterpret_cast<const char*>(kEkPublic), sizeof(kEkPublic)));
    Check(ek.ok());
    f->ek = std::move(*ek);
    absl::StatusOr<vigil::EvpPkeyPtr> key = vigil::tpm::PublicKeyOf(f->ek.area);
    Check(key.ok());
    f->ek_key = std::move(*key);
    return f;
  }();
  return *fixture;
}

// The certificate re-issued by the test CA, DER; empty when it does not parse or sign.
std::string Reissue(const Fixture& f, std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  vigil::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(f.ca.cert.get())) != 1 ||
      X509_sign(cert.get(), f.ca.key.get(), EVP_sha256()) <= 0) {
    ERR_clear_error();
    return "";
  }
  unsigned char* out = nullptr;
  const int len = i2d_X509(cert.get(), &out);
  if (len <= 0) {
    ERR_clear_error();
    return "";
  }
  std::string reissued(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return reissued;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Fixture& f = Fixed();
  const bool reissue = (data[0] & 1) != 0;
  std::string_view der(reinterpret_cast<const char*>(data + 1), size - 1);

  // Nothing the test CA did not sign chains to it.
  Check(!f.verifier->CheckCertificate(f.ek, der).ok());
  absl::Status matches = vigil::node::tpm::CheckCertificateMatchesKey(der, f.ek.area);

  if (reissue) {
    const std::string reissued = Reissue(f, der);
    if (!reissued.empty()) {
      der = reissued;
      absl::Status trusted = f.verifier->CheckCertificate(f.ek, der);
      matches = vigil::node::tpm::CheckCertificateMatchesKey(der, f.ek.area);
      if (trusted.ok()) {
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        vigil::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
        Check(cert != nullptr && EVP_PKEY_eq(X509_get0_pubkey(cert.get()), f.ek_key.get()) == 1);
        // The node's check agrees on the key.
        Check(matches.ok());
      }
    }
  }
  ERR_clear_error();
  return 0;
}
