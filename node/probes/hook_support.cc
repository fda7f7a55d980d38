#include "node/probes/hook_support.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
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

// Loads `mov r0, 0; exit` as `type`/`attach_type` against the kernel function `target` and
// attaches it; returns 0 on success or the errno of the first step that failed.
int TryHook(const btf* vmlinux, bpf_prog_type type, bpf_attach_type attach_type,
            const char* target) {
  int id = btf__find_by_name_kind(vmlinux, target, BTF_KIND_FUNC);
  if (id < 0) return ENOENT;
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach_type,
              .attach_btf_id = static_cast<__u32>(id));
  UniqueFd prog(bpf_prog_load(type, "vigil_probe", "GPL", insns, 2, &opts));
  if (!prog.Valid()) return errno;
  UniqueFd link(bpf_link_create(prog.Get(), 0, attach_type, nullptr));
  return link.Valid() ? 0 : errno;
}

}  // namespace

HookSupport DetectHookSupport() {
  HookSupport s;
  std::unique_ptr<btf, BtfDeleter> vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) {
    int err = errno;
    s.refused.push_back(absl::StrCat("lsm: no kernel BTF (", ErrnoName(err), ")"));
    s.refused.push_back(absl::StrCat("fentry: no kernel BTF (", ErrnoName(err), ")"));
    return s;
  }
  int lsm = TryHook(vmlinux.get(), BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_mprotect");
  s.lsm = lsm == 0;
  if (!s.lsm) s.refused.push_back(absl::StrCat("lsm: ", ErrnoName(lsm)));
  int fentry =
      TryHook(vmlinux.get(), BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "security_file_mprotect");
  s.fentry = fentry == 0;
  if (!s.fentry) s.refused.push_back(absl::StrCat("fentry: ", ErrnoName(fentry)));
  for (const auto& r : s.refused) spdlog::info("BPF hook kind refused by the kernel: {}", r);
  return s;
}

}  // namespace vigil::node
