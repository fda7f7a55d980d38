// libFuzzer harness for the procfs parsers (node/procfs/procfs.h) and the sock_diag reply
// parser (node/procfs/process_sockets.h): the files and replies they read are written by the
// processes the node watches (a comm, a path, a socket name). Must never crash or trip a
// sanitizer. Checks: socket names and addresses are escaped (printable ASCII only), as is
// Printable's output; a mapping ends at or after its start and has four permission letters;
// maps/smaps fed in pieces of any size parse exactly like the whole text; a cgroup's
// container id is empty or 64 lowercase hex digits; only "socket:[...]" is a socket link.
//
// Input: byte 0 picks the parser (its value modulo the number of parsers, in the order of
// the switch below); byte 1, for the parsers that need one, a parameter (the /proc/net table,
// the size of the pieces maps are fed in); the rest is the file. Seeds are files of this
// machine's /proc, named after the parser.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "node/procfs/process_sockets.h"
#include "node/procfs/procfs.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using ::vigil::fuzz::Check;
using ::vigil::fuzz::PrintableAscii;

namespace procfs = vigil::node::procfs;

bool IsContainerId(std::string_view id) {
  return id.empty() ||
         (id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos);
}

void CheckSockets(const std::vector<procfs::SocketEntry>& sockets) {
  for (const procfs::SocketEntry& s : sockets) {
    Check(!s.protocol.empty() && !s.state.empty());
    Check(PrintableAscii(s.local_address) && PrintableAscii(s.remote_address));
  }
}

bool SameMappings(const std::vector<procfs::Mapping>& a, const std::vector<procfs::Mapping>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].start != b[i].start || a[i].end != b[i].end || a[i].permissions != b[i].permissions ||
        a[i].offset != b[i].offset || a[i].dev_major != b[i].dev_major ||
        a[i].dev_minor != b[i].dev_minor || a[i].inode != b[i].inode || a[i].path != b[i].path ||
        a[i].size_kib != b[i].size_kib || a[i].locked_kib != b[i].locked_kib ||
        a[i].vm_locked != b[i].vm_locked) {
      return false;
    }
  }
  return true;
}

// ParseSmaps again through MapsParser, fed `piece` bytes at a time.
void CheckPieces(absl::string_view text, size_t piece,
                 const absl::StatusOr<std::vector<procfs::Mapping>>& whole) {
  std::vector<procfs::Mapping> mappings;
  procfs::MapsParser parser([&](procfs::Mapping&& m) { mappings.push_back(std::move(m)); });
  absl::Status status;
  for (size_t at = 0; at < text.size() && status.ok(); at += piece) {
    status = parser.Feed(text.substr(at, piece));
  }
  if (status.ok()) status = parser.Finish();
  Check(status.ok() == whole.ok());
  if (whole.ok()) Check(SameMappings(mappings, *whole));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t which = data[0];
  const uint8_t parameter = data[1];
  const absl::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  switch (which % 12) {
    case 0: {
      procfs::ParseStatus(text).IgnoreError();
      break;
    }
    case 1: {
      procfs::ParseStat(text).IgnoreError();
      break;
    }
    case 2: {
      absl::StatusOr<std::vector<procfs::Mapping>> maps = procfs::ParseMaps(text);
      if (maps.ok()) {
        for (const procfs::Mapping& m : *maps) {
          Check(m.start <= m.end && m.permissions.size() == 4);
        }
      }
      break;
    }
    case 3: {
      absl::StatusOr<std::vector<procfs::Mapping>> smaps = procfs::ParseSmaps(text);
      CheckPieces(text, 1 + parameter, smaps);
      break;
    }
    case 4:
      procfs::ParseIdMap(text).IgnoreError();
      break;
    case 5:
      procfs::ParseRootReadOnly(text).IgnoreError();
      break;
    case 6: {
      static constexpr const char* kTables[] = {"tcp",      "tcp6", "udp",  "udp6", "udplite",
                                                "udplite6", "raw",  "raw6", "icmp", "icmp6"};
      const char* table = kTables[parameter % (sizeof(kTables) / sizeof(kTables[0]))];
      absl::StatusOr<std::vector<procfs::SocketEntry>> sockets = procfs::ParseNetInet(text, table);
      if (sockets.ok()) CheckSockets(*sockets);
      break;
    }
    case 7: {
      absl::StatusOr<std::vector<procfs::SocketEntry>> sockets = procfs::ParseNetUnix(text);
      if (sockets.ok()) CheckSockets(*sockets);
      break;
    }
    case 8:
      procfs::ParseFdInfoFlags(text).IgnoreError();
      break;
    case 9: {
      procfs::ParseCgroupV2Path(text);
      procfs::ParseCgroupPath(text);
      Check(IsContainerId(procfs::ContainerIdFromCgroupFile(text)));
      Check(IsContainerId(procfs::ContainerIdFromCgroup(text)));
      break;
    }
    case 10: {
      std::vector<procfs::SocketEntry> sockets;
      vigil::node::ParseUnixDiagReplies(text, &sockets).IgnoreError();
      CheckSockets(sockets);
      break;
    }
    case 11: {
      procfs::ParseNamespaceLink(text).IgnoreError();
      std::optional<uint64_t> inode = procfs::ParseSocketLink(text);
      if (inode.has_value()) {
        Check(absl::StartsWith(text, "socket:[") && absl::EndsWith(text, "]"));
      }
      procfs::SplitCmdline(text);
      procfs::ParsePidList(text).IgnoreError();
      Check(PrintableAscii(procfs::Printable(text)));
      break;
    }
  }
  return 0;
}
