#include "node/commands/inspect_command.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "node/procfs/file_hash_cache.h"

namespace vigil::node {
namespace {

constexpr const char* kCapNames[] = {"chown",
                                     "dac_override",
                                     "dac_read_search",
                                     "fowner",
                                     "fsetid",
                                     "kill",
                                     "setgid",
                                     "setuid",
                                     "setpcap",
                                     "linux_immutable",
                                     "net_bind_service",
                                     "net_broadcast",
                                     "net_admin",
                                     "net_raw",
                                     "ipc_lock",
                                     "ipc_owner",
                                     "sys_module",
                                     "sys_rawio",
                                     "sys_chroot",
                                     "sys_ptrace",
                                     "sys_pacct",
                                     "sys_admin",
                                     "sys_boot",
                                     "sys_nice",
                                     "sys_resource",
                                     "sys_time",
                                     "sys_tty_config",
                                     "mknod",
                                     "lease",
                                     "audit_write",
                                     "audit_control",
                                     "setfcap",
                                     "mac_override",
                                     "mac_admin",
                                     "syslog",
                                     "wake_alarm",
                                     "block_suspend",
                                     "audit_read",
                                     "perfmon",
                                     "bpf",
                                     "checkpoint_restore"};
constexpr int kCapCount = sizeof(kCapNames) / sizeof(kCapNames[0]);

// "none", the set's names, or for mostly-full sets "all but x, y".
std::string CapSet(uint64_t mask) {
  std::vector<std::string> in, out;
  for (int i = 0; i < kCapCount; ++i) {
    ((mask >> i) & 1 ? in : out).push_back(kCapNames[i]);
  }
  std::string hex = absl::StrCat("0x", absl::Hex(mask, absl::kZeroPad16));
  if (in.empty()) return absl::StrCat(hex, " (none)");
  if (out.empty()) return absl::StrCat(hex, " (all)");
  if (in.size() > out.size()) return absl::StrCat(hex, " (all but ", absl::StrJoin(out, ", "), ")");
  return absl::StrCat(hex, " (", absl::StrJoin(in, ", "), ")");
}

std::string Verdict(const v1::SyscallVerdict& v) {
  std::string a = v1::SeccompAction_Name(v.action()).substr(sizeof("SECCOMP_ACTION_") - 1);
  if (v.action() == v1::SECCOMP_ACTION_ERRNO || v.action() == v1::SECCOMP_ACTION_TRAP ||
      v.action() == v1::SECCOMP_ACTION_TRACE) {
    absl::StrAppend(&a, "(", v.data(), ")");
  }
  if (v.argument_dependent()) absl::StrAppend(&a, " (depends on arguments)");
  return a;
}

// Whether this kernel runs the verdict's ABI, as a short note ("" when it does).
std::string AbiNote(const v1::SyscallVerdict& v) {
  if (!v.has_abi_available()) return "kernel support unknown";
  return v.abi_available() ? "" : "not on this kernel";
}

// The verdicts, one line per syscall with its ABIs side by side and the ABIs that bypass
// the native verdict named at the end, after a line saying which ABIs this kernel runs and
// before a summary of every bypass. For example:
//   abis        x86_64 runs, i386 runs, x32 not on this kernel
//   ptrace      x86_64 ERRNO(1)  i386 ALLOW  x32 KILL_PROCESS  <- bypass via i386
void PrintSeccompVerdicts(const v1::SeccompState& sec, std::ostream& out) {
  const auto& all = sec.verdicts();
  if (all.empty()) return;
  size_t width = 14;
  std::vector<std::string> abis;  // "i386 runs", once per ABI in order of appearance
  std::vector<std::string> seen;
  for (const auto& v : all) {
    width = std::max(width, v.syscall().size() + 4);
    if (std::find(seen.begin(), seen.end(), v.arch()) != seen.end()) continue;
    seen.push_back(v.arch());
    const std::string note = AbiNote(v);
    abis.push_back(absl::StrCat(v.arch(), " ", note.empty() ? "runs" : note));
  }
  auto print = [width, &out](const std::string& key, const std::string& value) {
    std::string text = absl::StrCat("  ", key);
    text.resize(std::max(width, text.size() + 1), ' ');
    out << text << value << "\n";
  };
  print("abis", absl::StrJoin(abis, ", "));
  std::vector<std::string> summary;
  for (int i = 0; i < all.size();) {
    const std::string& name = all[i].syscall();
    std::vector<std::string> verdicts, bypass;
    for (; i < all.size() && all[i].syscall() == name; ++i) {
      verdicts.push_back(absl::StrCat(all[i].arch(), " ", Verdict(all[i])));
      if (!all[i].bypass()) continue;
      const std::string note = AbiNote(all[i]);
      bypass.push_back(note.empty() ? all[i].arch() : absl::StrCat(all[i].arch(), " (", note, ")"));
    }
    std::string text = absl::StrJoin(verdicts, "  ");
    if (!bypass.empty()) {
      absl::StrAppend(&text, "  <- bypass via ", absl::StrJoin(bypass, ", "));
      summary.push_back(name);
    }
    print(name, text);
  }
  if (!summary.empty()) {
    print("bypass", absl::StrCat(absl::StrJoin(summary, ", "),
                                 " (denied natively, allowed through another ABI)"));
  }
}

}  // namespace

void PrintSnapshot(const v1::ProcessSnapshot& s, const std::vector<std::string>& gaps,
                   std::ostream& out) {
  auto line = [&out](const std::string& k, const std::string& v) {
    out << absl::StrCat(k, std::string(k.size() < 14 ? 14 - k.size() : 1, ' '), v, "\n");
  };
  line("pid", absl::StrCat(s.pid(), " (", s.comm(), "), parent ", s.ppid(),
                           s.main_thread_exited() ? "; main thread exited, read through "
                                                    "another thread"
                                                  : ""));
  line("started",
       absl::FormatTime(absl::FromUnixNanos(s.started_unix_nano()), absl::UTCTimeZone()));
  line("exe", absl::StrCat(s.exe_path(), "  sha256 ", s.exe_sha256()));
  line("cmdline", absl::StrJoin(s.cmdline(), " "));
  line("cgroup", s.cgroup().empty() ? "-" : s.cgroup());
  line("container", s.container_id().empty() ? "-" : s.container_id());
  const auto& c = s.credentials();
  line("uid", absl::StrCat("real ", c.uid_real(), ", effective ", c.uid_effective(), ", saved ",
                           c.uid_saved(), ", fs ", c.uid_fs()));
  line("gid", absl::StrCat("real ", c.gid_real(), ", effective ", c.gid_effective(), ", saved ",
                           c.gid_saved(), ", fs ", c.gid_fs(), "; groups ",
                           absl::StrJoin(c.supplementary_gids(), ",")));
  for (const auto& m : c.uid_map())
    line("uid_map", absl::StrCat(m.inside(), " ", m.outside(), " ", m.count()));
  for (const auto& m : c.gid_map())
    line("gid_map", absl::StrCat(m.inside(), " ", m.outside(), " ", m.count()));
  std::vector<std::string> ns;
  for (const char* n : {"mnt", "pid", "user", "net", "ipc", "uts", "cgroup", "time"}) {
    if (s.namespaces().contains(n)) ns.push_back(absl::StrCat(n, ":", s.namespaces().at(n)));
  }
  line("namespaces", absl::StrJoin(ns, " "));
  line("root", !s.has_root_read_only() ? "unknown" : s.root_read_only() ? "read-only" : "writable");
  const auto& sec = s.seccomp();
  static constexpr const char* kModes[] = {"disabled", "strict", "filter"};
  line("seccomp", absl::StrCat(sec.mode() < 3 ? kModes[sec.mode()] : "?", ", ", sec.filter_count(),
                               " filter(s), no_new_privs ", sec.no_new_privs() ? "yes" : "no"));
  if (!sec.inspection_error().empty()) line("  not inspected", sec.inspection_error());
  PrintSeccompVerdicts(sec, out);
  const auto& caps = s.capabilities();
  line("cap effective", CapSet(caps.effective()));
  line("cap permitted", CapSet(caps.permitted()));
  line("cap inherit", CapSet(caps.inheritable()));
  line("cap bounding", CapSet(caps.bounding()));
  line("cap ambient", CapSet(caps.ambient()));
  line("locked", absl::StrCat(s.vm_locked_kib(), " KiB (VmLck)"));
  for (const auto& r : s.memory().anonymous_executable()) {
    line(r.writable() ? "anon rwx" : "anon exec",
         absl::StrCat("0x", absl::Hex(r.start()), "-0x", absl::Hex(r.end()), " ", r.permissions(),
                      " ", r.size_kib(), " KiB, locked ", r.locked_kib(), " KiB ", r.name(),
                      r.writable_alias() ? " (also writable through another mapping or fd)" : ""));
  }
  for (const auto& f : s.memory().executable_files()) {
    line("mapped exec",
         absl::StrCat(f.path(), "  sha256 ",
                      f.sha256().empty() ? "-" : absl::StrCat(f.sha256().substr(0, 16), "..."),
                      f.writable_alias() ? " (also writable through another mapping or fd)" : ""));
  }
  for (const auto& k : s.sockets()) {
    std::string remote = k.remote_address().empty() || k.state() == "listen"
                             ? ""
                             : absl::StrCat(" -> ", k.remote_address(), ":", k.remote_port());
    std::string local = k.protocol() == "unix"
                            ? (k.local_address().empty() ? "(unnamed)" : k.local_address())
                            : absl::StrCat(k.local_address(), ":", k.local_port());
    line("socket", absl::StrCat(k.protocol(), " ", k.state(), " ", local, remote));
  }
  for (const auto& f : s.sensitive_files()) {
    line(absl::StrCat("open ", f.classification()),
         absl::StrCat("fd ", f.fd(), " ", f.path(), " flags 0", absl::StrFormat("%o", f.flags())));
  }
  // Threads whose security state differs from the main thread's (the fields above).
  for (const auto& t : s.divergent_threads()) {
    const auto& ts = t.seccomp();
    std::vector<std::string> ns;
    for (const auto& [name, inode] : t.namespaces()) {
      auto own = s.namespaces().find(name);
      if (own == s.namespaces().end() || own->second != inode) {
        ns.push_back(absl::StrCat(name, ":", inode, " (own)"));
      }
    }
    std::sort(ns.begin(), ns.end());
    line("thread",
         absl::StrCat(t.tid(), " (", t.comm(), "): uid ", t.credentials().uid_effective(),
                      ", seccomp ", ts.mode() < 3 ? kModes[ts.mode()] : "?", " ", ts.filter_count(),
                      " filter(s), no_new_privs ", ts.no_new_privs() ? "yes" : "no",
                      ", cap effective ", CapSet(t.capabilities().effective()),
                      ns.empty() ? "" : absl::StrCat(", ", absl::StrJoin(ns, " "))));
    for (const auto& v : ts.verdicts()) {
      if (v.arch() == "x86_64") line("  verdict", absl::StrCat(v.syscall(), " ", Verdict(v)));
    }
  }
  line("children", s.children().empty() ? "-" : absl::StrJoin(s.children(), " "));
  for (const auto& g : gaps) line("gap", g);
}

absl::Status RunInspect(const InspectOptions& options, std::ostream& out, std::ostream& err) {
  FileHashCache hashes;
  SnapshotOptions opts;
  opts.seccomp_syscalls = options.syscalls;
  opts.sensitive_paths = options.sensitive_paths;
  Snapshotter snapshotter(opts, &hashes);
  std::vector<std::string> gaps;
  absl::StatusOr<v1::ProcessSnapshot> snap = snapshotter.Snapshot(options.pid, &gaps);
  if (!snap.ok()) {
    return absl::Status(snap.status().code(),
                        absl::StrCat("pid ", options.pid, ": ", snap.status().message()));
  }
  if (!options.json) {
    PrintSnapshot(*snap, gaps, out);
    return absl::OkStatus();
  }
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;  // uid 0 and an empty ambient set are findings
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(*snap, &json, o);
  if (!st.ok()) return absl::InternalError(st.ToString());
  out << json;
  for (const std::string& g : gaps) err << "vigil-node: gap: " << g << "\n";
  return absl::OkStatus();
}

}  // namespace vigil::node
