#pragma once

// EK certificates as a TPM vendor's CA issues them, for simulated TPMs (vigil-fleetsim) and
// tests. Implemented in pki.cc beside the other certificates.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/openssl_util.h"
#include "common/pki.h"

namespace vigil {

/// A DER certificate for a TPM endorsement key `ek_public` (RSA or ECC), signed by `ca`.
absl::StatusOr<std::string> IssueEkCertificate(const CaMaterial& ca, EVP_PKEY* ek_public,
                                               std::string_view common_name,
                                               const Validity& validity);

}  // namespace vigil
