#include "node/procfs/procfs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/escape.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace vigil::node::procfs {
namespace {

absl::Status Malformed(absl::string_view what, absl::string_view line) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed ", what, ": '", Printable(line.substr(0, 120)), "'"));
}

std::vector<absl::string_view> Fields(absl::string_view line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

bool ParseHex64(absl::string_view s, uint64_t* out) {
  return !s.empty() && s.size() <= 16 && absl::SimpleHexAtoi(s, out);
}

bool ParseU32(absl::string_view s, uint32_t* out) { return absl::SimpleAtoi(s, out); }

// Parses "<n> kB" as found in status and smaps.
bool ParseKib(absl::string_view value, uint64_t* out) {
  std::vector<absl::string_view> f = Fields(value);
  return !f.empty() && absl::SimpleAtoi(f[0], out);
}

// Decodes one address of /proc/net/tcp*: the kernel prints each 32-bit word of the
// network-order address as a host-order integer, so copying the parsed word back into
// memory restores the network byte order on any host.
absl::StatusOr<std::string> DecodeInetAddress(absl::string_view hex, bool v6) {
  const size_t words = v6 ? 4 : 1;
  if (hex.size() != words * 8) return Malformed("socket address", hex);
  std::array<uint32_t, 4> raw{};
  for (size_t i = 0; i < words; ++i) {
    uint64_t w = 0;
    if (!ParseHex64(hex.substr(i * 8, 8), &w)) return Malformed("socket address", hex);
    raw[i] = static_cast<uint32_t>(w);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, raw.data(), buf, sizeof(buf)) == nullptr) {
    return Malformed("socket address", hex);
  }
  return std::string(buf);
}

absl::Status ParseEndpoint(absl::string_view text, bool v6, std::string* addr, uint32_t* port) {
  std::pair<absl::string_view, absl::string_view> ap = absl::StrSplit(text, ':');
  uint64_t p = 0;
  if (!ParseHex64(ap.second, &p) || p > 0xffff) return Malformed("socket endpoint", text);
  ASSIGN_OR_RETURN(*addr, DecodeInetAddress(ap.first, v6));
  *port = static_cast<uint32_t>(p);
  return absl::OkStatus();
}

std::string TcpStateName(uint64_t st, bool udp) {
  // include/net/tcp_states.h; UDP reuses ESTABLISHED for connected and CLOSE for unbound.
  static constexpr const char* kNames[] = {
      "unknown", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2",   "time_wait",
      "close",   "close_wait",  "last_ack", "listen",   "closing",   "new_syn_recv"};
  if (udp && st == 7) return "unconnected";
  if (st < sizeof(kNames) / sizeof(kNames[0])) return kNames[st];
  return absl::StrCat("state_", st);
}

// Applies the smaps "Key: value kB" lines the snapshot needs to `m`.
void ApplySmapsField(absl::string_view line, Mapping* m) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(line, absl::MaxSplits(':', 1));
  if (kv.first == "Size") {
    ParseKib(kv.second, &m->size_kib);
  } else if (kv.first == "Locked") {
    ParseKib(kv.second, &m->locked_kib);
  } else if (kv.first == "VmFlags") {
    for (absl::string_view flag : Fields(kv.second)) m->vm_locked |= flag == "lo";
  }
}

// A maps header starts with "start-end " in hex; smaps field lines start with "Key:".
bool IsMapsHeader(absl::string_view line) {
  size_t dash = line.find('-');
  size_t colon = line.find(':');
  size_t space = line.find(' ');
  return dash != absl::string_view::npos && space != absl::string_view::npos && dash < space &&
         (colon == absl::string_view::npos || colon > space);
}

// The first N space-separated fields of `*rest` (leading whitespace skipped; a missing field
// is empty). `*rest` is left at what follows them, its leading whitespace kept.
template <size_t N>
std::array<absl::string_view, N> TakeFields(absl::string_view* rest) {
  std::array<absl::string_view, N> f;
  for (auto& field : f) {
    *rest = absl::StripLeadingAsciiWhitespace(*rest);
    size_t sp = rest->find(' ');
    field = rest->substr(0, sp);
    *rest = sp == absl::string_view::npos ? absl::string_view() : rest->substr(sp);
  }
  return f;
}

// "Key:" with a key of letters, digits and '_' ("Size", "THPeligible", "VmFlags").
bool IsSmapsField(absl::string_view line) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == absl::string_view::npos) return false;
  for (char c : line.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

absl::StatusOr<Mapping> ParseMapsLine(absl::string_view line) {
  // start-end perms offset major:minor inode [path]; the path is everything after the
  // inode's trailing spaces and may itself contain spaces.
  Mapping m;
  absl::string_view rest = line;
  std::array<absl::string_view, 5> f = TakeFields<5>(&rest);
  std::pair<absl::string_view, absl::string_view> range = absl::StrSplit(f[0], '-');
  std::pair<absl::string_view, absl::string_view> dev = absl::StrSplit(f[3], ':');
  uint64_t major = 0, minor = 0;
  if (!ParseHex64(range.first, &m.start) || !ParseHex64(range.second, &m.end) || m.end < m.start ||
      f[1].size() != 4 || !ParseHex64(f[2], &m.offset) || !ParseHex64(dev.first, &major) ||
      !ParseHex64(dev.second, &minor) || !absl::SimpleAtoi(f[4], &m.inode)) {
    return Malformed("maps line", line);
  }
  m.permissions = std::string(f[1]);
  m.dev_major = static_cast<uint32_t>(major);
  m.dev_minor = static_cast<uint32_t>(minor);
  m.path = std::string(absl::StripLeadingAsciiWhitespace(rest));
  return m;
}

}  // namespace

absl::StatusOr<Status> ParseStatus(absl::string_view text) {
  Status s;
  enum : uint32_t {
    kName = 1,
    kPPid = 2,
    kUid = 4,
    kGid = 8,
    kCaps = 16 | 32 | 64 | 128 | 256,
    kNoNewPrivs = 512,
    kSeccomp = 1024
  };
  uint32_t seen = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    absl::string_view key = kv.first;
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "Name") {
      // The kernel escapes '\n' and '\\' in Name; other bytes arrive raw.
      s.name = std::string(value);
      seen |= kName;
    } else if (key == "State") {
      if (!value.empty()) s.state = value[0];
    } else if (key == "PPid") {
      if (!absl::SimpleAtoi(value, &s.ppid)) return Malformed("status PPid", line);
      seen |= kPPid;
    } else if (key == "Uid" || key == "Gid") {
      std::vector<absl::string_view> f = Fields(value);
      uint32_t* ids = key == "Uid" ? s.uid : s.gid;
      if (f.size() != 4) return Malformed("status ids", line);
      for (int i = 0; i < 4; ++i) {
        if (!ParseU32(f[i], &ids[i])) return Malformed("status ids", line);
      }
      seen |= key == "Uid" ? kUid : kGid;
    } else if (key == "Groups") {
      for (absl::string_view g : Fields(value)) {
        uint32_t id = 0;
        if (!ParseU32(g, &id)) return Malformed("status Groups", line);
        s.groups.push_back(id);
      }
    } else if (absl::StartsWith(key, "Cap") && key.size() == 6) {
      static constexpr std::pair<absl::string_view, uint32_t> kSets[] = {
          {"CapInh", 16}, {"CapPrm", 32}, {"CapEff", 64}, {"CapBnd", 128}, {"CapAmb", 256}};
      uint64_t* targets[] = {&s.cap_inheritable, &s.cap_permitted, &s.cap_effective,
                             &s.cap_bounding, &s.cap_ambient};
      for (size_t i = 0; i < 5; ++i) {
        if (key != kSets[i].first) continue;
        if (!ParseHex64(value, targets[i])) return Malformed("status capabilities", line);
        seen |= kSets[i].second;
      }
    } else if (key == "NoNewPrivs") {
      uint32_t v = 0;
      if (!ParseU32(value, &v) || v > 1) return Malformed("status NoNewPrivs", line);
      s.no_new_privs = v == 1;
      seen |= kNoNewPrivs;
    } else if (key == "Seccomp") {
      if (!ParseU32(value, &s.seccomp_mode) || s.seccomp_mode > 2) {
        return Malformed("status Seccomp", line);
      }
      seen |= kSeccomp;
    } else if (key == "Seccomp_filters") {
      if (!ParseU32(value, &s.seccomp_filters)) return Malformed("status Seccomp_filters", line);
    } else if (key == "VmLck") {
      if (!ParseKib(value, &s.vm_locked_kib)) return Malformed("status VmLck", line);
      s.vm_locked_known = true;
    }
  }
  constexpr uint32_t kRequired = kName | kPPid | kUid | kGid | kCaps | kNoNewPrivs | kSeccomp;
  if ((seen & kRequired) != kRequired) {
    return absl::InvalidArgumentError(
        absl::StrFormat("status lacks required fields (have mask 0x%x of 0x%x)", seen, kRequired));
  }
  return s;
}

absl::StatusOr<Stat> ParseStat(absl::string_view text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) {
    return Malformed("stat", text);
  }
  Stat st;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text.substr(0, open)), &st.pid)) {
    return Malformed("stat pid", text);
  }
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  // Fields after comm start at field 3 (state); starttime is field 22.
  std::vector<absl::string_view> f = Fields(text.substr(close + 1));
  if (f.size() < 20 || f[0].size() != 1 || !absl::SimpleAtoi(f[1], &st.ppid) ||
      !absl::SimpleAtoi(f[6], &st.flags) || !absl::SimpleAtoi(f[19], &st.start_time_ticks)) {
    return Malformed("stat", text);
  }
  st.state = f[0][0];
  // Field n is f[n - 3]; older kernels print fewer fields, which leaves the image zero.
  constexpr size_t kImageFields[] = {26, 27, 28, 48};
  for (size_t i = 0; i < 4; ++i) {
    size_t at = kImageFields[i] - 3;
    if (at < f.size() && !absl::SimpleAtoi(f[at], &st.image[i])) return Malformed("stat", text);
  }
  return st;
}

MapsParser::MapsParser(std::function<void(Mapping&&)> on_mapping)
    : on_mapping_(std::move(on_mapping)) {}

absl::Status MapsParser::Line(absl::string_view line) {
  if (line.empty()) return absl::OkStatus();
  if (IsMapsHeader(line)) {
    ASSIGN_OR_RETURN(Mapping m, ParseMapsLine(line));
    m.size_kib = (m.end - m.start) / 1024;  // smaps' Size: says the same
    if (current_.has_value()) on_mapping_(*std::move(current_));
    current_ = std::move(m);
    return absl::OkStatus();
  }
  if (!current_.has_value()) return Malformed("smaps (field before any mapping)", line);
  if (!IsSmapsField(line)) return Malformed("smaps field", line);
  ApplySmapsField(line, &*current_);
  return absl::OkStatus();
}

absl::Status MapsParser::Feed(absl::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == absl::string_view::npos) {
      partial_.append(chunk.data(), chunk.size());
      return absl::OkStatus();
    }
    absl::string_view line = chunk.substr(0, nl);
    chunk.remove_prefix(nl + 1);
    if (partial_.empty()) {
      RETURN_IF_ERROR(Line(line));
    } else {
      partial_.append(line.data(), line.size());
      RETURN_IF_ERROR(Line(partial_));
      partial_.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status MapsParser::Finish() {
  if (!partial_.empty()) {
    RETURN_IF_ERROR(Line(partial_));
    partial_.clear();
  }
  if (current_.has_value()) on_mapping_(*std::move(current_));
  current_.reset();
  return absl::OkStatus();
}

absl::Status ForEachMapping(const std::string& path,
                            const std::function<void(Mapping&&)>& on_mapping) {
  UniqueFd owned_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!owned_fd.Valid()) return absl::ErrnoToStatus(errno, path);
  const int fd = owned_fd.Get();
  MapsParser parser(on_mapping);
  std::string buf(64 * 1024, '\0');
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, path);
    }
    if (n == 0) break;
    if (absl::Status st = parser.Feed(absl::string_view(buf.data(), static_cast<size_t>(n)));
        !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
    }
  }
  if (absl::Status st = parser.Finish(); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Mapping>> ParseMaps(absl::string_view text) {
  std::vector<Mapping> out;
  MapsParser parser([&out](Mapping&& m) { out.push_back(std::move(m)); });
  RETURN_IF_ERROR(parser.Feed(text));
  RETURN_IF_ERROR(parser.Finish());
  return out;
}

absl::StatusOr<std::vector<Mapping>> ParseSmaps(absl::string_view text) { return ParseMaps(text); }

std::string ParseCgroupV2Path(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "0::")) return std::string(line.substr(3));
  }
  return "";
}

namespace {

// "hierarchy-id:controllers:path" lines; a path may itself contain ':'.
struct CgroupLine {
  absl::string_view id, controllers, path;
};

std::vector<CgroupLine> CgroupLines(absl::string_view text) {
  std::vector<CgroupLine> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() == 3) out.push_back({f[0], f[1], f[2]});
  }
  return out;
}

bool IsV2(const CgroupLine& l) { return l.id == "0" && l.controllers.empty(); }

}  // namespace

std::string ParseCgroupPath(absl::string_view text) {
  std::vector<CgroupLine> lines = CgroupLines(text);
  std::optional<absl::string_view> v2, systemd, v1;
  for (const CgroupLine& l : lines) {
    if (IsV2(l)) {
      v2 = l.path;
    } else if (l.path != "/") {
      if (l.controllers == "name=systemd") systemd = l.path;
      if (!v1.has_value()) v1 = l.path;
    }
  }
  if (v2.has_value() && *v2 != "/") return std::string(*v2);
  if (systemd.has_value()) return std::string(*systemd);
  if (v1.has_value()) return std::string(*v1);
  return std::string(v2.value_or(""));
}

std::string ContainerIdFromCgroupFile(absl::string_view text) {
  std::vector<CgroupLine> lines = CgroupLines(text);
  std::stable_partition(lines.begin(), lines.end(), IsV2);
  for (const CgroupLine& l : lines) {
    std::string id = ContainerIdFromCgroup(l.path);
    if (!id.empty()) return id;
  }
  return "";
}

std::string ContainerIdFromCgroup(absl::string_view cgroup_path) {
  static constexpr absl::string_view kPrefixes[] = {"docker-", "cri-containerd-", "crio-",
                                                    "libpod-", "containerd-"};
  std::vector<absl::string_view> parts = absl::StrSplit(cgroup_path, '/', absl::SkipEmpty());
  // The innermost component that names a container wins (pods nest containers).
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    absl::string_view c = *it;
    absl::ConsumeSuffix(&c, ".scope");
    if (absl::StartsWith(c, "crio-conmon-") || absl::StartsWith(c, "libpod-conmon-")) continue;
    for (absl::string_view p : kPrefixes) {
      if (absl::ConsumePrefix(&c, p)) break;
    }
    if (c.size() == 64 && c.find_first_not_of("0123456789abcdef") == absl::string_view::npos) {
      return std::string(c);
    }
  }
  return "";
}

absl::StatusOr<std::vector<IdMapLine>> ParseIdMap(absl::string_view text) {
  std::vector<IdMapLine> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = Fields(line);
    IdMapLine m;
    if (f.size() != 3 || !ParseU32(f[0], &m.inside) || !ParseU32(f[1], &m.outside) ||
        !ParseU32(f[2], &m.count)) {
      return Malformed("id map line", line);
    }
    out.push_back(m);
  }
  return out;
}

absl::StatusOr<uint64_t> ParseNamespaceLink(absl::string_view target) {
  size_t open = target.find(":[");
  uint64_t ino = 0;
  if (open == absl::string_view::npos || !absl::EndsWith(target, "]") ||
      !absl::SimpleAtoi(target.substr(open + 2, target.size() - open - 3), &ino)) {
    return Malformed("namespace link", target);
  }
  return ino;
}

std::optional<uint64_t> ParseSocketLink(absl::string_view target) {
  uint64_t ino = 0;
  if (!absl::ConsumePrefix(&target, "socket:[") || !absl::ConsumeSuffix(&target, "]") ||
      !absl::SimpleAtoi(target, &ino)) {
    return std::nullopt;
  }
  return ino;
}

absl::StatusOr<bool> ParseRootReadOnly(absl::string_view mountinfo) {
  std::optional<bool> ro;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_opts
    std::vector<absl::string_view> f = Fields(line);
    if (f.size() < 6) return Malformed("mountinfo line", line);
    if (f[4] != "/") continue;
    bool line_ro = false;
    for (absl::string_view o : absl::StrSplit(f[5], ',')) line_ro |= o == "ro";
    auto sep = std::find(f.begin() + 6, f.end(), "-");
    if (sep != f.end() && f.end() - sep >= 4) {
      for (absl::string_view o : absl::StrSplit(*(sep + 3), ',')) line_ro |= o == "ro";
    }
    ro = line_ro;
  }
  if (!ro.has_value()) return absl::NotFoundError("mountinfo lists no mount on /");
  return *ro;
}

absl::StatusOr<std::vector<SocketEntry>> ParseNetInet(absl::string_view text,
                                                      absl::string_view protocol) {
  const bool v6 = absl::EndsWith(protocol, "6");
  // UDP, UDP-Lite, raw and ping sockets print ESTABLISHED when connected, CLOSE otherwise.
  const bool udp = !absl::StartsWith(protocol, "tcp");
  std::vector<SocketEntry> out;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (header) {  // "  sl  local_address rem_address   st ..."
      header = false;
      continue;
    }
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    std::vector<absl::string_view> f = Fields(line);
    SocketEntry e;
    e.protocol = std::string(protocol);
    uint64_t st = 0;
    if (f.size() < 10 || !ParseHex64(f[3], &st) || !absl::SimpleAtoi(f[9], &e.inode)) {
      return Malformed("socket table line", line);
    }
    RETURN_IF_ERROR(ParseEndpoint(f[1], v6, &e.local_address, &e.local_port));
    RETURN_IF_ERROR(ParseEndpoint(f[2], v6, &e.remote_address, &e.remote_port));
    e.state = TcpStateName(st, udp);
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<SocketEntry>> ParseNetUnix(absl::string_view text) {
  constexpr uint64_t kAcceptCon = 0x10000;  // __SO_ACCEPTCON: a listening socket
  std::vector<SocketEntry> out;
  std::vector<std::string> raw_paths;  // escaped once the whole path is known
  bool header = true;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  for (absl::string_view line : lines) {
    if (header) {  // "Num       RefCount Protocol Flags    Type St Inode Path"
      header = false;
      continue;
    }
    // "%pK: %08X %08X %08X %04X %02X %5lu" then, for a bound socket, ' ' and its path.
    absl::string_view rest = line;
    std::array<absl::string_view, 7> f = TakeFields<7>(&rest);
    static constexpr size_t kWidths[] = {0, 8, 8, 8, 4, 2};
    bool entry = f[0].size() > 1 && f[0].back() == ':';
    uint64_t scratch = 0;
    for (size_t i = 0; entry && i < 6; ++i) {
      absl::string_view v = i == 0 ? f[0].substr(0, f[0].size() - 1) : f[i];
      entry = (kWidths[i] == 0 || v.size() == kWidths[i]) && ParseHex64(v, &scratch);
    }
    SocketEntry e;
    if (entry) entry = absl::SimpleAtoi(f[6], &e.inode);
    if (!entry) {
      // The rest of a path that contains a newline.
      if (raw_paths.empty() || raw_paths.back().empty()) return Malformed("unix socket line", line);
      absl::StrAppend(&raw_paths.back(), "\n", line);
      continue;
    }
    e.protocol = "unix";
    uint64_t flags = 0, st = 0;
    ParseHex64(f[3], &flags);
    ParseHex64(f[5], &st);
    if (flags & kAcceptCon) {
      e.state = "listen";
    } else {
      static constexpr const char* kStates[] = {"free", "unconnected", "connecting", "connected",
                                                "disconnecting"};
      e.state = st < 5 ? kStates[st] : absl::StrCat("state_", st);
    }
    absl::ConsumePrefix(&rest, " ");  // exactly one: a relative path may start with spaces
    raw_paths.push_back(std::string(rest));
    out.push_back(std::move(e));
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].local_address = Printable(raw_paths[i]);
  return out;
}

absl::StatusOr<uint32_t> ParseFdInfoFlags(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::string_view v = line;
    if (!absl::ConsumePrefix(&v, "flags:")) continue;
    v = absl::StripAsciiWhitespace(v);
    // At most 11 octal digits (33 bits), so the sum cannot wrap in 64 bits; the kernel's
    // f_flags are an unsigned int, and anything wider is not its text.
    uint64_t flags = 0;
    if (v.empty() || v.size() > 11) return Malformed("fdinfo flags", line);
    for (char c : v) {
      if (c < '0' || c > '7') return Malformed("fdinfo flags", line);
      flags = flags * 8 + static_cast<uint64_t>(c - '0');
    }
    if (flags > UINT32_MAX) return Malformed("fdinfo flags", line);
    return static_cast<uint32_t>(flags);
  }
  return absl::InvalidArgumentError("fdinfo has no flags line");
}

std::vector<std::string> SplitCmdline(absl::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  if (text.back() == '\0') text.remove_suffix(1);
  for (absl::string_view arg : absl::StrSplit(text, '\0')) out.push_back(std::string(arg));
  return out;
}

absl::StatusOr<std::vector<int>> ParsePidList(absl::string_view text) {
  std::vector<int> out;
  for (absl::string_view p : Fields(absl::StripAsciiWhitespace(text))) {
    int pid = 0;
    if (!absl::SimpleAtoi(p, &pid) || pid <= 0) return Malformed("pid list", text);
    out.push_back(pid);
  }
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes, bool* truncated) {
  UniqueFd owned_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!owned_fd.Valid()) return absl::ErrnoToStatus(errno, path);
  const int fd = owned_fd.Get();
  if (truncated != nullptr) *truncated = false;
  std::string out;
  char buf[16384];
  // One byte more than allowed tells a file of exactly `max_bytes` from a longer one.
  while (out.size() <= max_bytes) {
    ssize_t n = read(fd, buf, std::min(sizeof(buf), max_bytes + 1 - out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
  if (truncated == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
  }
  *truncated = true;
  out.resize(max_bytes);
  return out;
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  std::string buf(4096, '\0');
  ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return absl::ErrnoToStatus(errno, path);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

std::string Printable(absl::string_view s) { return EscapeUntrusted(s); }

}  // namespace vigil::node::procfs
