#include "node/probes/hook_support.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/unique_fd.h"
#include "spdlog/spdlog.h"

namespace vigil::node {
namespace {

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

// errno's symbolic name ("EPERM"), falling back to its number.
std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : absl::StrCat("errno ", err);
}

// `mov r0, 0; exit` loaded as `type`/`attach_type` (against the BTF function `btf_id` when
// it is not 0): the program fd, or -errno.
int LoadTrivial(bpf_prog_type type, bpf_attach_type attach_type, int btf_id) {
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach_type,
              .attach_btf_id = static_cast<__u32>(btf_id));
  int fd = bpf_prog_load(type, "vigil_probe", "GPL", insns, 2, &opts);
  return fd >= 0 ? fd : -errno;
}

// A BTF-attached kind (fentry, fexit, LSM) on the kernel function `target`: 0 when it
// loaded and attached, otherwise the errno of the first step that failed.
int TryBtfHook(const btf* vmlinux, bpf_prog_type type, bpf_attach_type attach_type,
               const std::string& target) {
  if (vmlinux == nullptr) return ENOENT;
  int id = btf__find_by_name_kind(vmlinux, target.c_str(), BTF_KIND_FUNC);
  if (id < 0) return ENOENT;
  int fd = LoadTrivial(type, attach_type, id);
  if (fd < 0) return -fd;
  UniqueFd prog(fd);
  UniqueFd link(bpf_link_create(prog.Get(), 0, attach_type, nullptr));
  return link.Valid() ? 0 : errno;
}

// A kprobe.multi link on `function`.
int TryKprobeMulti(const std::string& function) {
  int fd = LoadTrivial(BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, 0);
  if (fd < 0) return -fd;
  UniqueFd prog(fd);
  const char* syms[] = {function.c_str()};
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.kprobe_multi.syms = syms;
  opts.kprobe_multi.cnt = 1;
  UniqueFd link(bpf_link_create(prog.Get(), 0, BPF_TRACE_KPROBE_MULTI, &opts));
  return link.Valid() ? 0 : errno;
}

// The perf event type of the kprobe PMU, or -1 when the kernel has none.
int KprobePmuType() {
  std::ifstream in("/sys/bus/event_source/devices/kprobe/type");
  std::string text;
  int type = -1;
  if (!std::getline(in, text) || !absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &type)) {
    return -1;
  }
  return type;
}

// A kprobe on `function` through the kprobe PMU, with a program attached to it.
int TryKprobe(const std::string& function) {
  const int pmu = KprobePmuType();
  if (pmu < 0) return ENOENT;
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = static_cast<uint32_t>(pmu);
  attr.config1 = reinterpret_cast<uint64_t>(function.c_str());  // kprobe_func
  UniqueFd event(static_cast<int>(syscall(SYS_perf_event_open, &attr, -1 /* any pid */, 0 /* cpu */,
                                          -1, PERF_FLAG_FD_CLOEXEC)));
  if (!event.Valid()) return errno;
  int fd = LoadTrivial(BPF_PROG_TYPE_KPROBE, BPF_PERF_EVENT, 0);
  if (fd < 0) return -fd;
  UniqueFd prog(fd);
  UniqueFd link(bpf_link_create(prog.Get(), event.Get(), BPF_PERF_EVENT, nullptr));
  return link.Valid() ? 0 : errno;
}

}  // namespace

std::string SyscallFunction(const std::string& name) {
#if defined(__x86_64__)
  return "__x64_sys_" + name;
#elif defined(__aarch64__)
  return "__arm64_sys_" + name;
#else
  return "sys_" + name;
#endif
}

HookSupport DetectHookSupport() {
  HookSupport s;
  std::unique_ptr<btf, BtfDeleter> vmlinux(btf__load_vmlinux_btf());
  const int btf_err = vmlinux ? 0 : errno;
  const std::string target = SyscallFunction("ptrace");
  auto record = [&](const char* kind, bool* ok, int err, const std::string& why = "") {
    *ok = err == 0;
    if (*ok) {
      s.available.push_back(kind);
    } else {
      s.refused.push_back(absl::StrCat(kind, ": ", ErrnoName(err),
                                       why.empty() ? "" : absl::StrCat(" (", why, ")")));
    }
  };
  auto btf_why = [&](int err) {
    if (!vmlinux) return absl::StrCat("no kernel BTF: ", ErrnoName(btf_err));
    return err == ENOENT ? std::string("function not in the kernel's BTF") : std::string();
  };
  int err = TryBtfHook(vmlinux.get(), BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, target);
  record("fentry", &s.fentry, err, btf_why(err));
  err = TryBtfHook(vmlinux.get(), BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, target);
  record("fexit", &s.fexit, err, btf_why(err));
  err = TryBtfHook(vmlinux.get(), BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_mprotect");
  record("lsm", &s.lsm, err, btf_why(err));
  err = TryKprobeMulti(target);
  record("kprobe_multi", &s.kprobe_multi, err);
  err = TryKprobe(target);
  record("kprobe", &s.kprobe, err,
         err == ENOENT && KprobePmuType() < 0 ? "no kprobe PMU: kernel built without kprobes" : "");
  for (const auto& r : s.refused) spdlog::info("BPF hook kind refused by the kernel: {}", r);
  return s;
}

}  // namespace vigil::node
