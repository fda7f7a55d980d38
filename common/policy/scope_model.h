#pragma once

// The declared scope of a workload (docs/scope.md): the authorization boundary the system
// security plan states for one component, as a policy's `workloads[].scope` writes it.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/policy/net.h"

namespace vigil::policy {

/// One declared endpoint: a direction, optionally a protocol, an address and ports.
struct DeclaredEndpoint {
  /// "listen" or "outbound".
  std::string direction;
  /// "tcp", "udp", "unix", ...; empty: any. "tcp" also covers "tcp6" (and "udp" "udp6").
  std::string protocol;
  /// The address as written: a CIDR ("10.0.0.0/8", "127.0.0.1") or, when `cidr` is unset, an
  /// fnmatch(3) pattern (a unix socket path, "*").
  std::string address;
  std::optional<Cidr> cidr;
  /// Inclusive port ranges; empty: any port.
  std::vector<std::pair<uint32_t, uint32_t>> ports;
};

/// What a workload is declared to use. Every pattern is fnmatch(3) without flags, so `*`
/// also matches '/': "/var/lib/agent/*" covers everything below /var/lib/agent.
struct DeclaredScope {
  /// The SSP component this workload is: its title and description.
  std::string component_title;
  std::string component_description;
  /// Executables the workload may run (patterns on the resolved path).
  std::vector<std::string> executables;
  /// Interpreter kinds it may drive ("python", "sh", ...; WorkloadScope interpreters' kind).
  std::vector<std::string> interpreters;
  /// Directories its shared libraries may come from (a library is in a root when its path
  /// starts with the root followed by '/').
  std::vector<std::string> library_roots;
  /// Paths it may write (patterns on directory/file).
  std::vector<std::string> storage;
  std::vector<DeclaredEndpoint> endpoints;
  /// Configuration files and secrets it may read (patterns on the path).
  std::vector<std::string> config;
  std::vector<std::string> secrets;
};

}  // namespace vigil::policy
