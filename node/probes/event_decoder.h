#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "vigil/v1/runtime.pb.h"

namespace vigil::node {

/// Decodes one ring-buffer record (a struct vigil_event from bpf/events.h) into a
/// RuntimeEvent. `boot_to_wall_ns` is CLOCK_REALTIME - CLOCK_BOOTTIME, added to the
/// kernel's boot-time stamp. Socket addresses (connect, bind) become `address`/`port`
/// (AF_INET, AF_INET6) or `path` (AF_UNIX; abstract names start with '@'). Records of the
/// wrong size or with an unknown kind are refused, never trusted.
absl::StatusOr<v1::RuntimeEvent> DecodeEvent(std::string_view record, int64_t boot_to_wall_ns);

/// CLOCK_REALTIME - CLOCK_BOOTTIME now, in nanoseconds.
int64_t BootToWallOffsetNs();

/// A one-line human-readable rendering of `event` (for `vigil-node watch`).
std::string FormatEvent(const v1::RuntimeEvent& event);

}  // namespace vigil::node
