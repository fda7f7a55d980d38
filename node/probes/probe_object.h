#pragma once

#include <string>
#include <string_view>

namespace vigil::node {

/// The BPF object file (ELF, CO-RE, BTF without DWARF) that the probes load: the exact bytes
/// bpftool embedded in the generated skeleton, so what is measured is what is loaded. Valid
/// for the life of the process.
std::string_view ProbeObjectBytes();

/// Lowercase hex SHA-256 of ProbeObjectBytes(): the digest the node measures into its PCR
/// and reports as ProbeStatus.bpf_object_sha256.
std::string ProbeObjectSha256Hex();

}  // namespace vigil::node
