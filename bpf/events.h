/* Structures shared by the BPF probes (bpf/vigil_probes.bpf.c) and the node's loader
 * (node/probes/). Fixed-width types only, so both compilers lay them out identically. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Event kinds: the numbers equal vigil.v1.EventKind (proto/vigil/v1/runtime.proto). */
enum vigil_event_kind {
  VIGIL_EV_PTRACE = 1,
  VIGIL_EV_PROCESS_VM_READV = 2,
  VIGIL_EV_PROCESS_VM_WRITEV = 3,
  VIGIL_EV_MPROTECT = 4,
  VIGIL_EV_MMAP = 5,
  VIGIL_EV_PKEY_MPROTECT = 6,
  VIGIL_EV_CLONE = 7,
  VIGIL_EV_CLONE3 = 8,
  VIGIL_EV_UNSHARE = 9,
  VIGIL_EV_SETNS = 10,
  VIGIL_EV_CAPSET = 11,
  VIGIL_EV_PRCTL = 12,
  VIGIL_EV_SECCOMP = 13,
  VIGIL_EV_MLOCK = 14,
  VIGIL_EV_MLOCK2 = 15,
  VIGIL_EV_MLOCKALL = 16,
  VIGIL_EV_MUNLOCK = 17,
  VIGIL_EV_EXECVE = 18,
  VIGIL_EV_EXECVEAT = 19,
  VIGIL_EV_BPF = 20,
  VIGIL_EV_MEMFD_CREATE = 21,
  VIGIL_EV_INIT_MODULE = 22,
  VIGIL_EV_FINIT_MODULE = 23,
  VIGIL_EV_MOUNT = 24,
  VIGIL_EV_CONNECT = 25,
  VIGIL_EV_BIND = 26,
  VIGIL_EV_LISTEN = 27,
  VIGIL_EV_PROCESS_EXEC = 28,
  VIGIL_EV_PROCESS_FORK = 29,
  VIGIL_EV_PROCESS_EXIT = 30,
  VIGIL_EV_MUNLOCKALL = 31,
  /* File events: they feed the node's workload scope, not RuntimeReport.events. */
  VIGIL_EV_OPEN = 32,
  VIGIL_EV_OPENAT = 33,
  VIGIL_EV_OPENAT2 = 34,
  VIGIL_EV_CREAT = 35,
  VIGIL_EV_RENAME = 36,
  VIGIL_EV_RENAMEAT = 37,
  VIGIL_EV_RENAMEAT2 = 38,
  VIGIL_EV_UNLINK = 39,
  VIGIL_EV_UNLINKAT = 40,
  VIGIL_EV_MKDIR = 41,
  VIGIL_EV_MKDIRAT = 42,
};

/* On an open event (VIGIL_EV_OPEN..VIGIL_EV_CREAT): args[VIGIL_OPEN_FLAGS_ARG] holds the open
 * flags (openat2's from its struct open_how, creat's O_CREAT|O_WRONLY|O_TRUNC) and
 * args[VIGIL_OPEN_MODE_ARG] the opened file's i_mode; the path is the opened file's path
 * resolved by the kernel (in the process's mount namespace). */
#define VIGIL_OPEN_FLAGS_ARG 4
#define VIGIL_OPEN_MODE_ARG 5

/* What event.data holds. */
enum vigil_data_kind {
  VIGIL_DATA_NONE = 0,
  VIGIL_DATA_STRING = 1,   /* NUL-terminated path or name */
  VIGIL_DATA_SOCKADDR = 2, /* raw struct sockaddr_* bytes, data_len long */
};

/* Why an event was lost; index into the drop counter map (a per-CPU array). */
enum vigil_drop_reason {
  VIGIL_DROP_RINGBUF_FULL = 0, /* bpf_ringbuf_reserve failed */
  VIGIL_DROP_STASH_FULL = 1,   /* no room to keep a syscall's entry arguments */
  VIGIL_DROP_MONITOR_FULL = 2, /* the monitored-process map was full: process not followed */
  VIGIL_DROP_REASONS = 3,
};

#define VIGIL_COMM_LEN 16
#define VIGIL_DATA_LEN 256
#define VIGIL_GLOB_LEN 128
#define VIGIL_MAX_SELECTORS 16

/* One event in the ring buffer. */
struct vigil_event {
  __u64 boot_ns; /* bpf_ktime_get_boot_ns() when the event was emitted */
  __u32 kind;    /* enum vigil_event_kind */
  __u32 pid;     /* tgid */
  __u32 tid;
  __u32 ppid;
  __u32 uid;
  __s32 target_pid; /* tracee, peer or child; 0 when none */
  __s64 ret;        /* syscall return value; 0 for process events */
  __u64 args[6];
  __u32 data_kind; /* enum vigil_data_kind */
  __u32 data_len;
  char comm[VIGIL_COMM_LEN];
  __u8 data[VIGIL_DATA_LEN];
};

/* A selector as the kernel matches it at exec. A field is used when its flag is set; a
 * process matches when every used field matches. Selectors with no exec-time field (pid
 * only) are left inactive: user space seeds their pids into the monitored map. */
struct vigil_selector {
  __u32 active;
  __u32 match_comm;
  __u32 match_exe;
  __u32 match_cgroup;
  char comm[VIGIL_COMM_LEN];
  char exe_glob[VIGIL_GLOB_LEN];
};

/* Words (64 pids each) of the monitored_bits map as compiled: pid_max's default on 64-bit
 * kernels (4194304). The loader resizes it to the running kernel's pid_max before load. */
#define VIGIL_MONITORED_WORDS_DEFAULT (4194304 / 64)

/* Why a process is monitored; the value of the monitored map (key: tgid). */
struct vigil_monitored {
  __u32 selector;    /* index + 1 of the selector that matched; 0 when inherited or seeded */
  __u32 parent_tgid; /* the monitored parent it was inherited from; 0 otherwise */
};
