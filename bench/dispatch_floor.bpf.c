// SPDX-License-Identifier: GPL-2.0
/* The floor under any syscall-tracepoint probe: programs that do nothing, on the hooks the
 * probe_overhead loops exercise. What they cost is the kernel's dispatch of a BPF program
 * from a syscall tracepoint, which Vigil's probes cannot go below; bench/probe_overhead.cc
 * measures it beside the real probes.
 *
 * floor_identity_exit_mprotect adds the one helper call any pid filter on a syscall
 * tracepoint makes before it can tell who is calling: the record a syscall tracepoint hands
 * a BPF program carries the registers, not the calling process, so a probe that ignores
 * most processes still asks the kernel which process this is. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_exit_mprotect")
int floor_exit_mprotect(void* ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_mprotect")
int floor_enter_mprotect(void* ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_mprotect")
int floor_identity_exit_mprotect(void* ctx) { return bpf_get_current_pid_tgid() == 0; }
