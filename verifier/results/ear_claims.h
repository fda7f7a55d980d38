#pragma once

// The EAR claim set (draft-fv-rats-ear, Veraison profile) Vigil signs for a Verdict: one
// submodule per workload plus "vigil-node" for the node's own evidence. See docs/results.md.

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vigil/v1/attestation.pb.h"

namespace vigil::verifier {

/// The submodule that carries the node's own evidence (quote, log, enrollment).
inline constexpr std::string_view kNodeSubmod = "vigil-node";

/// Who produced the result: `ear.verifier-id`.
struct EarVerifierId {
  std::string developer = "vigil";
  std::string build;
};

/// The EAR status name of a TrustStatus: "affirming", "warning", "contraindicated" or
/// "none". REJECTED is contraindicated; UNVERIFIED (never bound to hardware) is a warning;
/// NONE and UNSPECIFIED say nothing ("none").
std::string_view EarStatusName(v1::TrustStatus status);

/// The generic AR4SI code of a status: 2 affirming, 32 warning (UNVERIFIED too), 96
/// contraindicated (REJECTED too), 0 (no claim) for NONE and UNSPECIFIED.
int Ar4siStatusCode(v1::TrustStatus status);

/// The worse of two AR4SI claim values by tier (contraindicated over warning over affirming
/// over no claim; an undefined or negative value ranks as a warning).
int WorseAr4siClaim(int a, int b);

/// The AR4SI claim a rule kind speaks to beside "configuration" (which every rule does):
/// "runtime-opaque" for seccomp, user_namespaces and memory, "file-system" for
/// read_only_root, "sourced-data" for events; "" for the others.
std::string_view RuleKindClaim(std::string_view kind);

/// The AR4SI claims of a TrustVector with the EAR claim names, zero (no claim) omitted.
nlohmann::json TrustVectorClaims(const v1::TrustVector& vector);

/// The full claim set for `verdict`, issued at `issued_at`.
nlohmann::json BuildEarClaims(const v1::Verdict& verdict, const EarVerifierId& verifier_id,
                              absl::Time issued_at);

}  // namespace vigil::verifier
