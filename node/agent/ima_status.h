#pragma once

#include <string>

#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Default securityfs mount point.
inline constexpr char kSecurityFs[] = "/sys/kernel/security";

/// Whether the kernel's IMA is present (its ASCII measurement list under `securityfs` is
/// readable) and, when it is, its last entry for `binary_path` (the node binary's resolved
/// path). Absent is reported with the reason, never assumed: a kernel without CONFIG_IMA, or
/// securityfs not mounted, or an unreadable or unparseable list.
v1::ImaStatus ReadImaStatus(const std::string& binary_path,
                            const std::string& securityfs = kSecurityFs);

}  // namespace vigil::node
