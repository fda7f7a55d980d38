#pragma once

// Small reference policies for policy distribution tests.

#include <string>

#include "absl/strings/str_cat.h"
#include "common/policy/parser.h"
#include "common/policy/policy.h"

namespace vigil::testing {

/// A one-workload policy `name`@`revision` selecting `selector`, whose seccomp rule denies
/// `deny` and which names /etc/agent/*.yaml as a sensitive config file.
inline absl::StatusOr<policy::Policy> SmallPolicy(const std::string& name, int revision,
                                                  const std::string& selector = "comm=agent",
                                                  const std::string& deny = "ptrace") {
  std::string yaml = absl::StrCat(
      "apiVersion: vigil.dev/v1\n"
      "kind: RuntimePolicy\n"
      "metadata: {name: ",
      name, ", revision: ", revision,
      "}\n"
      "spec:\n"
      "  workloads:\n"
      "    - name: agent\n"
      "      selectors: [\"",
      selector,
      "\"]\n"
      "  sensitive_files:\n"
      "    - {path: /etc/agent/*.yaml, classification: config}\n"
      "  rules:\n"
      "    - id: seccomp-denies\n"
      "      kind: seccomp\n"
      "      controls: {nist_800_53: [AC-6]}\n"
      "      deny: [",
      deny, "]\n");
  return policy::ParseSinglePolicy(yaml, absl::StrCat(name, ".yaml"));
}

}  // namespace vigil::testing
