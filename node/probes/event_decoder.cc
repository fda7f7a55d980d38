#include "node/probes/event_decoder.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bpf/events.h"
#include "node/procfs/procfs.h"

namespace vigil::node {
namespace {

// Fills address/port or path from raw sockaddr bytes; unknown families are left out.
void DecodeSockaddr(const uint8_t* data, size_t len, v1::RuntimeEvent* out) {
  if (len < sizeof(sa_family_t)) return;
  sa_family_t family;
  std::memcpy(&family, data, sizeof(family));
  char text[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in sin;
    std::memcpy(&sin, data, sizeof(sin));
    if (inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)) != nullptr) out->set_address(text);
    out->set_port(ntohs(sin.sin_port));
  } else if (family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, data, sizeof(sin6));
    if (inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)) != nullptr) {
      out->set_address(text);
    }
    out->set_port(ntohs(sin6.sin6_port));
  } else if (family == AF_UNIX && len > offsetof(sockaddr_un, sun_path)) {
    const char* path = reinterpret_cast<const char*>(data) + offsetof(sockaddr_un, sun_path);
    size_t n = len - offsetof(sockaddr_un, sun_path);
    if (n > 0 && path[0] == '\0') {  // abstract socket: name is every byte after the NUL
      out->set_path(absl::StrCat("@", procfs::Printable(absl::string_view(path + 1, n - 1))));
    } else {
      out->set_path(procfs::Printable(absl::string_view(path, strnlen(path, n))));
    }
  }
}

}  // namespace

int64_t BootToWallOffsetNs() {
  timespec real{}, boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (static_cast<int64_t>(real.tv_sec) - boot.tv_sec) * 1000000000LL +
         (real.tv_nsec - boot.tv_nsec);
}

absl::StatusOr<v1::RuntimeEvent> DecodeEvent(std::string_view record, int64_t boot_to_wall_ns) {
  if (record.size() != sizeof(vigil_event)) {
    return absl::InvalidArgumentError(absl::StrCat("BPF event record of ", record.size(),
                                                   " bytes, expected ", sizeof(vigil_event)));
  }
  vigil_event e;
  std::memcpy(&e, record.data(), sizeof(e));
  if (!v1::EventKind_IsValid(static_cast<int>(e.kind)) || e.kind == 0) {
    return absl::InvalidArgumentError(absl::StrCat("BPF event of unknown kind ", e.kind));
  }
  // A boot-time stamp past 2^63 ns (292 years), or one the offset carries out of range, is
  // not a time the kernel wrote.
  int64_t time_unix_nano = 0;
  if (e.boot_ns > static_cast<uint64_t>(INT64_MAX) ||
      __builtin_add_overflow(static_cast<int64_t>(e.boot_ns), boot_to_wall_ns, &time_unix_nano)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BPF event time out of range: ", e.boot_ns, " ns after boot"));
  }
  v1::RuntimeEvent out;
  out.set_time_unix_nano(time_unix_nano);
  out.set_pid(static_cast<int32_t>(e.pid));
  out.set_tid(static_cast<int32_t>(e.tid));
  out.set_ppid(static_cast<int32_t>(e.ppid));
  out.set_uid(e.uid);
  // Strings the workload controls (its comm, paths, socket names) are escaped like the
  // snapshot's: a raw non-UTF-8 byte would make the whole report unparseable at the
  // verifier, letting a workload suppress the evidence about itself.
  out.set_comm(procfs::Printable(absl::string_view(e.comm, strnlen(e.comm, sizeof(e.comm)))));
  out.set_kind(static_cast<v1::EventKind>(e.kind));
  out.set_return_value(e.ret);
  out.set_target_pid(e.target_pid);
  for (uint64_t a : e.args) out.add_args(a);
  size_t len = e.data_len < sizeof(e.data) ? e.data_len : sizeof(e.data);
  if (e.data_kind == VIGIL_DATA_STRING) {
    const char* s = reinterpret_cast<const char*>(e.data);
    out.set_path(procfs::Printable(absl::string_view(s, strnlen(s, len))));
  } else if (e.data_kind == VIGIL_DATA_SOCKADDR) {
    DecodeSockaddr(e.data, len, &out);
  }
  return out;
}

std::string FormatEvent(const v1::RuntimeEvent& event) {
  std::string kind = v1::EventKind_Name(event.kind());
  if (absl::string_view(kind).substr(0, 11) == "EVENT_KIND_") kind = kind.substr(11);
  std::string line =
      absl::StrCat(absl::FormatTime("%H:%M:%E6S", absl::FromUnixNanos(event.time_unix_nano()),
                                    absl::LocalTimeZone()),
                   " ", kind, " pid=", event.pid(), " tid=", event.tid(), " ppid=", event.ppid(),
                   " uid=", event.uid(), " comm=", event.comm(), " ret=", event.return_value());
  if (event.target_pid() != 0) absl::StrAppend(&line, " target=", event.target_pid());
  if (!event.path().empty()) absl::StrAppend(&line, " path=", event.path());
  if (!event.address().empty()) {
    absl::StrAppend(&line, " addr=", event.address(), ":", event.port());
  }
  std::vector<std::string> args;
  for (uint64_t a : event.args()) args.push_back(absl::StrCat("0x", absl::Hex(a)));
  absl::StrAppend(&line, " args=[", absl::StrJoin(args, ","), "]");
  return line;
}

}  // namespace vigil::node
