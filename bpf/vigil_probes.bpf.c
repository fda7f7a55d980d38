// SPDX-License-Identifier: GPL-2.0
/* Vigil's kernel-side probes: syscall tracepoints (entry and exit, so every event carries
 * its return value) for the security-relevant syscalls of DESIGN.md section 5, and the
 * sched tracepoints that follow processes. Only processes in the `monitored` map (selected
 * at exec, seeded by user space, or inherited at fork) produce events; the node's own
 * process never does. Events go through one ring buffer; every lost event is counted. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/events.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the loader between open and load. */
const volatile __u32 node_tgid = 0;  /* the node's own process: never monitored */
const volatile __u8 monitor_all = 0; /* debugging (`watch` without selectors) */
const volatile __u8 entry_hooks = 0; /* the sys_enter programs are attached */

#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20
#define CLONE_THREAD 0x00010000ULL
#define CLONE_NS_FLAGS                                                                       \
  (0x00000080ULL /* NEWTIME */ | 0x00020000ULL /* NEWNS */ | 0x02000000ULL /* NEWCGROUP */ | \
   0x04000000ULL /* NEWUTS */ | 0x08000000ULL /* NEWIPC */ | 0x10000000ULL /* NEWUSER */ |   \
   0x20000000ULL /* NEWPID */ | 0x40000000ULL /* NEWNET */)
#define SOCKADDR_MAX 128
#define NR_CLONE 56 /* x86_64 syscall numbers */
#define NR_CLONE3 435
#define NR_EXECVEAT 322
#define GLOB_STEPS 32768

/* The ring buffer's size is set by the loader before load (a tunable). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Why each monitored process is monitored (key: tgid). The set of monitored processes is
 * also held in `monitored_bits`, which is what every hooked syscall checks. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct vigil_monitored);
} monitored SEC(".maps");

/* One bit per pid: bit (tgid % 64) of word (tgid / 64) is set while tgid is in `monitored`.
 * An array lookup is inlined by the verifier (a bounds check and an add), where a hash
 * lookup is a helper call that hashes the key: this check is what every hooked syscall of
 * every process on the machine pays. The loader sizes it from /proc/sys/kernel/pid_max
 * before load; a tgid beyond it (pid_max raised later) falls back to the hash. Mappable,
 * so user space sets bits with atomic operations on the same words the programs update
 * atomically. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, VIGIL_MONITORED_WORDS_DEFAULT);
  __type(key, __u32);
  __type(value, __u64);
} monitored_bits SEC(".maps");

/* A syscall's entry arguments, kept until its exit (key: tid). */
struct stash {
  __u32 kind;
  __u32 data_len;
  __u64 args[6];
  __u8 data[VIGIL_DATA_LEN];
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct stash);
} stash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct stash);
} stash_scratch SEC(".maps");

/* At sched_process_exec: [EXEC_FILENAME] the file name the process was exec'd by (the
 * event's path), [EXEC_RESOLVED] the executable's resolved path (what exe globs match). */
#define EXEC_FILENAME 0
#define EXEC_RESOLVED 1
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, char[VIGIL_DATA_LEN]);
} exec_path SEC(".maps");

/* Scratch for resolving the executable's path: components are written backwards from the
 * middle (index PATH_HALF, which stays NUL), so every write of a component of at most
 * PATH_HALF - 1 bytes at an offset below PATH_HALF stays inside the buffer. */
#define PATH_HALF VIGIL_DATA_LEN
#define PATH_DEPTH 64
struct path_buf {
  char buf[2 * PATH_HALF];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct path_buf);
} path_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, VIGIL_DROP_REASONS);
  __type(key, __u32);
  __type(value, __u64);
} drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, VIGIL_MAX_SELECTORS);
  __type(key, __u32);
  __type(value, struct vigil_selector);
} selectors SEC(".maps");

/* cgroup id -> bit mask of the selectors whose cgroup/container field that cgroup matches. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u32);
} selector_cgroups SEC(".maps");

static __always_inline void count_drop(__u32 reason) {
  __u64* n = bpf_map_lookup_elem(&drops, &reason);
  if (n) __sync_fetch_and_add(n, 1);
}

static __always_inline bool is_monitored(__u32 tgid) {
  if (tgid == node_tgid) return false;
  if (monitor_all) return true;
  __u32 word = tgid / 64;
  __u64* bits = bpf_map_lookup_elem(&monitored_bits, &word);
  if (bits) return (*bits >> (tgid % 64)) & 1;
  return bpf_map_lookup_elem(&monitored, &tgid) != NULL;
}

/* Makes `tgid` monitored for the reason `m`; false (and a counted drop) when the map is
 * full. The bit is set after the entry exists, so a set bit always has its reason. */
static __always_inline bool add_monitored(__u32 tgid, const struct vigil_monitored* m) {
  if (bpf_map_update_elem(&monitored, &tgid, m, BPF_ANY)) {
    count_drop(VIGIL_DROP_MONITOR_FULL);
    return false;
  }
  __u32 word = tgid / 64;
  __u64* bits = bpf_map_lookup_elem(&monitored_bits, &word);
  if (bits) __sync_fetch_and_or(bits, 1ULL << (tgid % 64));
  return true;
}

/* The process `tgid` is gone: it stops being monitored. */
static __always_inline void remove_monitored(__u32 tgid) {
  __u32 word = tgid / 64;
  __u64* bits = bpf_map_lookup_elem(&monitored_bits, &word);
  if (bits) __sync_fetch_and_and(bits, ~(1ULL << (tgid % 64)));
  bpf_map_delete_elem(&monitored, &tgid);
}

/* Reserves an event and fills the fields every event has. NULL (and a counted drop) when
 * the ring buffer is full. */
static __always_inline struct vigil_event* new_event(__u32 kind) {
  struct vigil_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_drop(VIGIL_DROP_RINGBUF_FULL);
    return NULL;
  }
  __u64 id = bpf_get_current_pid_tgid();
  struct task_struct* task = bpf_get_current_task_btf();
  e->boot_ns = bpf_ktime_get_boot_ns();
  e->kind = kind;
  e->pid = id >> 32;
  e->tid = (__u32)id;
  e->ppid = task->real_parent->tgid; /* BTF pointers: direct (fault-safe) loads */
  e->uid = (__u32)bpf_get_current_uid_gid();
  e->target_pid = 0;
  e->ret = 0;
  e->data_kind = VIGIL_DATA_NONE;
  e->data_len = 0;
  e->data[0] = 0;
  for (int i = 0; i < 6; i++) e->args[i] = 0;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  return e;
}

/* State of the walk from the executable's dentry up to the root of its mount namespace. */
struct path_walk {
  struct dentry* dentry;
  struct mount* mnt;
  __u32 pos; /* the path so far starts at buf[pos] and ends at buf[PATH_HALF] */
  int complete;
};

/* One step of the walk: crosses a mount point or prepends "/<name>" for one dentry. Stops
 * at the root of the mount namespace (a mount that is its own parent), as d_path(3)'s
 * readlink of /proc/PID/exe does for the node, which lives in the initial namespace. */
static long path_step(__u32 i, void* arg) {
  struct path_walk* w = arg;
  __u32 zero = 0;
  struct path_buf* pb = bpf_map_lookup_elem(&path_scratch, &zero);
  if (!pb) return 1;
  /* Kernel pointers in locals: CO-RE relocations apply to kernel types only. */
  struct dentry* d = w->dentry;
  struct mount* mnt = w->mnt;
  struct vfsmount* vfs = (struct vfsmount*)((char*)mnt + bpf_core_field_offset(struct mount, mnt));
  struct dentry* mnt_root = BPF_CORE_READ(vfs, mnt_root);
  struct dentry* parent = BPF_CORE_READ(d, d_parent);
  if (d == mnt_root || d == parent) {
    struct mount* up = BPF_CORE_READ(mnt, mnt_parent);
    if (d != mnt_root || up == mnt || !up) {
      w->complete = 1;
      return 1;
    }
    w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = up;
    return 0;
  }
  __u32 len = BPF_CORE_READ(d, d_name.len);
  const unsigned char* name = BPF_CORE_READ(d, d_name.name);
  if (len == 0 || len + 1 > w->pos) return 1; /* too long for the buffer: incomplete */
  __u32 pos = w->pos - len - 1;
  barrier_var(pos);
  pos &= PATH_HALF - 1;
  pb->buf[pos] = '/';
  __u32 n = len & (PATH_HALF - 1); /* == len (len < pos <= PATH_HALF): a bound the verifier sees */
  barrier_var(n);
  if (bpf_probe_read_kernel(&pb->buf[pos + 1], n, name)) return 1;
  w->pos = pos;
  w->dentry = parent;
  return 0;
}

/* Resolves the file `f` to its path in the current task's mount namespace into `out` (the
 * path /proc/PID/fd shows: symlinks and relative paths resolved). Returns the length with
 * the NUL, or 0 when it cannot be resolved completely (deeper than PATH_DEPTH components,
 * longer than the buffer). */
static __always_inline long resolve_file(struct file* f, char out[VIGIL_DATA_LEN]) {
  __u32 zero = 0;
  struct path_buf* pb = bpf_map_lookup_elem(&path_scratch, &zero);
  if (!pb || !f) return 0;
  struct vfsmount* vfs = BPF_CORE_READ(f, f_path.mnt);
  struct path_walk w = {
      .dentry = BPF_CORE_READ(f, f_path.dentry),
      .mnt = (struct mount*)((char*)vfs - bpf_core_field_offset(struct mount, mnt)),
      .pos = PATH_HALF,
      .complete = 0,
  };
  pb->buf[PATH_HALF] = 0;
  bpf_loop(PATH_DEPTH, path_step, &w, 0);
  if (!w.complete) return 0;
  if (w.pos == PATH_HALF) { /* the root itself */
    out[0] = '/';
    out[1] = 0;
    return 2;
  }
  __u32 pos = w.pos & (PATH_HALF - 1);
  long n = bpf_probe_read_kernel_str(out, VIGIL_DATA_LEN, &pb->buf[pos]);
  return n > 0 ? n : 0;
}

/* Resolves the current task's executable (mm->exe_file, already the new image at
 * sched_process_exec) into `out`: the same path /proc/PID/exe shows. False when it cannot
 * be resolved completely (no mm, or see resolve_file). */
static __always_inline bool resolve_exe(char out[VIGIL_DATA_LEN]) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct file* exe = BPF_CORE_READ(task, mm, exe_file);
  if (!exe) return false;
  return resolve_file(exe, out) > 0;
}

/* ---- File events (the workload scope) ---- */

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define S_IFMT 0170000
#define S_IFREG 0100000
#define S_IROTH 04

static __always_inline bool is_open_kind(__u32 kind) {
  return kind == VIGIL_EV_OPEN || kind == VIGIL_EV_OPENAT || kind == VIGIL_EV_OPENAT2 ||
         kind == VIGIL_EV_CREAT;
}

static __always_inline bool is_file_kind(__u32 kind) {
  return kind >= VIGIL_EV_OPEN && kind <= VIGIL_EV_MKDIRAT;
}

/* The file behind descriptor `fd` of the current task, or NULL. */
static __always_inline struct file* fd_file(long fd) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd < 0) return NULL;
  unsigned int max = BPF_CORE_READ(fdt, max_fds);
  if ((unsigned long)fd >= max) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* f = NULL;
  if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd])) return NULL;
  return f;
}

/* Kernel interfaces, not storage: procfs, sysfs, cgroup, debugfs, tracefs, securityfs,
 * bpffs. */
static __always_inline bool pseudo_fs(unsigned long magic) {
  return magic == 0x9fa0 || magic == 0x62656572 || magic == 0x63677270 || magic == 0x27e0eb ||
         magic == 0x64626720 || magic == 0x74726163 || magic == 0x73636673 || magic == 0xcafe4a11;
}

/* An open the scope keeps: a regular file on a real filesystem, opened for writing, or
 * for reading when it is not world-readable (a likely secret) or lies outside the system
 * trees (decided after its path is resolved: `*check_tree`). Fills the flags, the file's
 * mode and the file. */
static __always_inline bool open_wanted(__u32 kind, const struct stash* s, long fd,
                                        struct file** file, __u64* flags, __u64* mode,
                                        bool* check_tree) {
  __u64 fl = 0;
  if (kind == VIGIL_EV_OPEN) fl = s->args[1];
  if (kind == VIGIL_EV_OPENAT) fl = s->args[2];
  if (kind == VIGIL_EV_OPENAT2) /* struct open_how: the kernel has just copied it */
    bpf_probe_read_user(&fl, sizeof(fl), (const void*)s->args[2]);
  if (kind == VIGIL_EV_CREAT) fl = O_CREAT | O_WRONLY | O_TRUNC;
  struct file* f = fd_file(fd);
  if (!f) return false;
  __u32 m = BPF_CORE_READ(f, f_inode, i_mode);
  if ((m & S_IFMT) != S_IFREG) return false;
  if (pseudo_fs(BPF_CORE_READ(f, f_inode, i_sb, s_magic))) return false;
  bool writing = fl & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC);
  *check_tree = !writing && (m & S_IROTH);
  *file = f;
  *flags = fl;
  *mode = m;
  return true;
}

static __always_inline bool has_prefix(const __u8* str, const char* prefix, int n) {
  for (int i = 0; i < n; i++)
    if (str[i] != (__u8)prefix[i]) return false;
  return true;
}
#define HAS_PREFIX(str, lit) has_prefix(str, lit, sizeof(lit) - 1)

/* World-readable files here are the system's programs, libraries and loader cache: read by
 * every process, neither configuration of the workload nor secrets. */
static __always_inline bool in_system_tree(const __u8* path) {
  return HAS_PREFIX(path, "/usr/") || HAS_PREFIX(path, "/lib/") || HAS_PREFIX(path, "/lib64/") ||
         HAS_PREFIX(path, "/lib32/") || HAS_PREFIX(path, "/bin/") || HAS_PREFIX(path, "/sbin/") ||
         HAS_PREFIX(path, "/etc/ld.so.cache");
}

/* The user-memory path argument of a file event (rename*: the new name). */
static __always_inline __u64 file_path_arg(__u32 kind, const struct stash* s) {
  switch (kind) {
    case VIGIL_EV_OPEN:
    case VIGIL_EV_CREAT:
    case VIGIL_EV_UNLINK:
    case VIGIL_EV_MKDIR:
      return s->args[0];
    case VIGIL_EV_RENAME:
      return s->args[1];
    case VIGIL_EV_RENAMEAT:
    case VIGIL_EV_RENAMEAT2:
      return s->args[3];
    default: /* openat, openat2, unlinkat, mkdirat */
      return s->args[1];
  }
}

/* Only memory made executable is of interest (anonymous memory, for mmap). */
static __always_inline bool wanted(__u32 kind, __u64 arg2, __u64 arg3) {
  if (kind == VIGIL_EV_MPROTECT || kind == VIGIL_EV_PKEY_MPROTECT) return arg2 & PROT_EXEC;
  if (kind == VIGIL_EV_MMAP) return (arg2 & PROT_EXEC) && (arg3 & MAP_ANONYMOUS);
  return true;
}

/* Entry: keeps the arguments until the exit. `nargs` is the syscall's argument count: the
 * tracepoint record has exactly that many, and the kernel refuses to attach a program that
 * reads past the record (EACCES), so only those are read (a compile-time constant per
 * program, the other loads are compiled out). */
static __always_inline int on_enter(struct trace_event_raw_sys_enter* ctx, __u32 kind,
                                    const int nargs) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;
  if (!is_monitored(id >> 32)) return 0;

  __u32 zero = 0;
  struct stash* s = bpf_map_lookup_elem(&stash_scratch, &zero);
  if (!s) return 0;
  /* One load per argument: the verifier refuses ctx access through a moved pointer. */
  s->args[0] = nargs > 0 ? ctx->args[0] : 0;
  s->args[1] = nargs > 1 ? ctx->args[1] : 0;
  s->args[2] = nargs > 2 ? ctx->args[2] : 0;
  s->args[3] = nargs > 3 ? ctx->args[3] : 0;
  s->args[4] = nargs > 4 ? ctx->args[4] : 0;
  s->args[5] = nargs > 5 ? ctx->args[5] : 0;
  if (!wanted(kind, s->args[2], s->args[3])) return 0;
  s->kind = kind;
  s->data_len = 0;
  s->data[0] = 0;
  /* After a successful exec the old image (and the path's memory) is gone: read it now. */
  if (kind == VIGIL_EV_EXECVE || kind == VIGIL_EV_EXECVEAT) {
    const char* path = (const char*)s->args[kind == VIGIL_EV_EXECVE ? 0 : 1];
    long n = bpf_probe_read_user_str(s->data, sizeof(s->data), path);
    s->data_len = n > 0 ? n : 0;
  }
  if (bpf_map_update_elem(&stash, &tid, s, BPF_ANY)) count_drop(VIGIL_DROP_STASH_FULL);
  return 0;
}

/* clone3's flags live in user memory (struct clone_args); the kernel has just copied them,
 * so the page is resident. */
static __always_inline __u64 clone3_flags(__u64 uargs) {
  __u64 flags = 0;
  bpf_probe_read_user(&flags, sizeof(flags), (const void*)uargs);
  return flags;
}

static __always_inline int on_exit(struct trace_event_raw_sys_exit* ctx, __u32 kind) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;
  long ret = ctx->ret;
  bool stashed = true;
  /* Unmonitored processes leave at the first lookup: this is the cost every watched syscall
   * on the machine pays. */
  if (!is_monitored(id >> 32)) return 0;
  /* Entry records exist only with entry hooks, and for an exec (from sched_process_exec). */
  struct stash* s = NULL;
  if (entry_hooks || kind == VIGIL_EV_EXECVE || kind == VIGIL_EV_EXECVEAT)
    s = bpf_map_lookup_elem(&stash, &tid);
  if (s && s->kind != kind) {
    bpf_map_delete_elem(&stash, &tid);
    s = NULL;
  }
  if (!s) {
    /* No entry record: entry hooks are off (the default) or refused by the kernel, the
     * syscall was refused before its entry tracepoint (a seccomp filter returning ERRNO
     * skips it), or the process became monitored meanwhile. The arguments
     * are still in the saved user registers. A clone's child (ret 0) is not an event; a
     * successful exec (registers reset) has its record from sched_process_exec. */
    if (ret == 0 && (kind == VIGIL_EV_CLONE || kind == VIGIL_EV_CLONE3 || kind == VIGIL_EV_EXECVE ||
                     kind == VIGIL_EV_EXECVEAT))
      return 0;
    __u32 zero = 0;
    s = bpf_map_lookup_elem(&stash_scratch, &zero);
    if (!s) return 0;
    struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(bpf_get_current_task_btf());
    s->kind = kind;
    s->data_len = 0;
    /* A BTF pointer: direct loads, no helper call per register. */
    s->args[0] = regs->di;
    s->args[1] = regs->si;
    s->args[2] = regs->dx;
    s->args[3] = regs->r10;
    s->args[4] = regs->r8;
    s->args[5] = regs->r9;
    if (!wanted(kind, s->args[2], s->args[3])) return 0;
    stashed = false;
  }
  __u64 clone_flags = 0;
  if (kind == VIGIL_EV_CLONE) clone_flags = s->args[0];
  if (kind == VIGIL_EV_CLONE3) clone_flags = clone3_flags(s->args[0]);
  /* clone is stashed for every monitored fork (see on_fork); it is an event of its own
   * only when it creates namespaces. */
  if ((kind == VIGIL_EV_CLONE || kind == VIGIL_EV_CLONE3) && !(clone_flags & CLONE_NS_FLAGS)) {
    if (stashed) bpf_map_delete_elem(&stash, &tid);
    return 0;
  }

  /* File events: successful ones only, and of the opens only those open_wanted keeps. */
  struct file* opened = NULL;
  __u64 open_flags = 0, open_mode = 0;
  bool check_tree = false;
  if (is_file_kind(kind)) {
    bool keep = is_open_kind(kind) ? ret >= 0 && open_wanted(kind, s, ret, &opened, &open_flags,
                                                             &open_mode, &check_tree)
                                   : ret == 0;
    if (!keep) {
      if (stashed) bpf_map_delete_elem(&stash, &tid);
      return 0;
    }
  }

  struct vigil_event* e = new_event(kind);
  if (!e) {
    if (stashed) bpf_map_delete_elem(&stash, &tid);
    return 0;
  }
  e->ret = ret;
  for (int i = 0; i < 6; i++) e->args[i] = s->args[i];
  switch (kind) {
    case VIGIL_EV_PTRACE:
      e->target_pid = (__s32)s->args[1];
      break;
    case VIGIL_EV_PROCESS_VM_READV:
    case VIGIL_EV_PROCESS_VM_WRITEV:
      e->target_pid = (__s32)s->args[0];
      break;
    case VIGIL_EV_CLONE3:
      e->args[2] = clone_flags; /* clone3 has two arguments; args[2] carries the flags */
      /* fallthrough */
    case VIGIL_EV_CLONE:
      e->target_pid = ret > 0 ? (__s32)ret : 0;
      break;
    case VIGIL_EV_EXECVE:
    case VIGIL_EV_EXECVEAT:
      if (ret != 0) { /* failed: the old image is still there, read the path again */
        long n = bpf_probe_read_user_str(e->data, sizeof(e->data),
                                         (const char*)s->args[kind == VIGIL_EV_EXECVE ? 0 : 1]);
        e->data_len = n > 0 ? n : 0;
      }
      if (e->data_len == 0 && s->data_len > 0) {
        __builtin_memcpy(e->data, s->data, sizeof(e->data));
        e->data_len = s->data_len;
      }
      e->data_kind = e->data_len ? VIGIL_DATA_STRING : VIGIL_DATA_NONE;
      break;
    case VIGIL_EV_MEMFD_CREATE:
    case VIGIL_EV_MOUNT: {
      /* The kernel has copied the string during the syscall, so it is resident now. */
      const char* str = (const char*)s->args[kind == VIGIL_EV_MOUNT ? 1 : 0];
      long n = bpf_probe_read_user_str(e->data, sizeof(e->data), str);
      e->data_len = n > 0 ? n : 0;
      e->data_kind = n > 0 ? VIGIL_DATA_STRING : VIGIL_DATA_NONE;
      break;
    }
    case VIGIL_EV_CONNECT:
    case VIGIL_EV_BIND: {
      __u64 len = s->args[2];
      if (len > SOCKADDR_MAX) len = SOCKADDR_MAX;
      if (bpf_probe_read_user(e->data, len, (const void*)s->args[1]) == 0 && len > 0) {
        e->data_len = len;
        e->data_kind = VIGIL_DATA_SOCKADDR;
      }
      break;
    }
    case VIGIL_EV_OPEN:
    case VIGIL_EV_OPENAT:
    case VIGIL_EV_OPENAT2:
    case VIGIL_EV_CREAT:
    case VIGIL_EV_RENAME:
    case VIGIL_EV_RENAMEAT:
    case VIGIL_EV_RENAMEAT2:
    case VIGIL_EV_UNLINK:
    case VIGIL_EV_UNLINKAT:
    case VIGIL_EV_MKDIR:
    case VIGIL_EV_MKDIRAT: {
      long n = 0;
      if (is_open_kind(kind)) {
        e->args[VIGIL_OPEN_FLAGS_ARG] = open_flags;
        e->args[VIGIL_OPEN_MODE_ARG] = open_mode;
        n = resolve_file(opened, (char*)e->data);
        if (n > 0 && check_tree && in_system_tree(e->data)) {
          bpf_ringbuf_discard(e, 0);
          if (stashed) bpf_map_delete_elem(&stash, &tid);
          return 0;
        }
      }
      /* Not resolved (or not an open): the name as passed, relative to the dirfd in args. */
      if (n <= 0)
        n = bpf_probe_read_user_str(e->data, sizeof(e->data), (const char*)file_path_arg(kind, s));
      e->data_len = n > 0 ? n : 0;
      e->data_kind = n > 0 ? VIGIL_DATA_STRING : VIGIL_DATA_NONE;
      break;
    }
    default:
      break;
  }
  /* File events only update the scope: they do not wake the consumer (it polls at least
   * every 100 ms) unless a quarter of the ring buffer waits, so a busy writer costs the node
   * no wake-up per write. */
  __u64 wakeup = 0;
  if (is_file_kind(kind)) {
    wakeup = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
                     bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4
                 ? BPF_RB_FORCE_WAKEUP
                 : BPF_RB_NO_WAKEUP;
  }
  bpf_ringbuf_submit(e, wakeup);
  if (stashed) bpf_map_delete_elem(&stash, &tid);
  return 0;
}

/* One entry and one exit program per syscall; `nargs` is its argument count. */
#define VIGIL_SYSCALL(name, kind, nargs)                                                         \
  SEC("tracepoint/syscalls/sys_enter_" #name)                                                    \
  int enter_##name(struct trace_event_raw_sys_enter* ctx) { return on_enter(ctx, kind, nargs); } \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                     \
  int exit_##name(struct trace_event_raw_sys_exit* ctx) { return on_exit(ctx, kind); }

VIGIL_SYSCALL(ptrace, VIGIL_EV_PTRACE, 4)
VIGIL_SYSCALL(process_vm_readv, VIGIL_EV_PROCESS_VM_READV, 6)
VIGIL_SYSCALL(process_vm_writev, VIGIL_EV_PROCESS_VM_WRITEV, 6)
VIGIL_SYSCALL(mprotect, VIGIL_EV_MPROTECT, 3)
VIGIL_SYSCALL(mmap, VIGIL_EV_MMAP, 6)
VIGIL_SYSCALL(pkey_mprotect, VIGIL_EV_PKEY_MPROTECT, 4)
VIGIL_SYSCALL(clone, VIGIL_EV_CLONE, 5)
VIGIL_SYSCALL(clone3, VIGIL_EV_CLONE3, 2)
VIGIL_SYSCALL(unshare, VIGIL_EV_UNSHARE, 1)
VIGIL_SYSCALL(setns, VIGIL_EV_SETNS, 2)
VIGIL_SYSCALL(capset, VIGIL_EV_CAPSET, 2)
VIGIL_SYSCALL(prctl, VIGIL_EV_PRCTL, 5)
VIGIL_SYSCALL(seccomp, VIGIL_EV_SECCOMP, 3)
VIGIL_SYSCALL(mlock, VIGIL_EV_MLOCK, 2)
VIGIL_SYSCALL(mlock2, VIGIL_EV_MLOCK2, 3)
VIGIL_SYSCALL(mlockall, VIGIL_EV_MLOCKALL, 1)
VIGIL_SYSCALL(munlock, VIGIL_EV_MUNLOCK, 2)
VIGIL_SYSCALL(munlockall, VIGIL_EV_MUNLOCKALL, 0)
VIGIL_SYSCALL(execve, VIGIL_EV_EXECVE, 3)
VIGIL_SYSCALL(execveat, VIGIL_EV_EXECVEAT, 5)
VIGIL_SYSCALL(bpf, VIGIL_EV_BPF, 3)
VIGIL_SYSCALL(memfd_create, VIGIL_EV_MEMFD_CREATE, 2)
VIGIL_SYSCALL(init_module, VIGIL_EV_INIT_MODULE, 3)
VIGIL_SYSCALL(finit_module, VIGIL_EV_FINIT_MODULE, 3)
VIGIL_SYSCALL(mount, VIGIL_EV_MOUNT, 5)
VIGIL_SYSCALL(connect, VIGIL_EV_CONNECT, 3)
VIGIL_SYSCALL(bind, VIGIL_EV_BIND, 3)
VIGIL_SYSCALL(listen, VIGIL_EV_LISTEN, 2)
VIGIL_SYSCALL(open, VIGIL_EV_OPEN, 3)
VIGIL_SYSCALL(openat, VIGIL_EV_OPENAT, 4)
VIGIL_SYSCALL(openat2, VIGIL_EV_OPENAT2, 4)
VIGIL_SYSCALL(creat, VIGIL_EV_CREAT, 2)
VIGIL_SYSCALL(rename, VIGIL_EV_RENAME, 2)
VIGIL_SYSCALL(renameat, VIGIL_EV_RENAMEAT, 4)
VIGIL_SYSCALL(renameat2, VIGIL_EV_RENAMEAT2, 5)
VIGIL_SYSCALL(unlink, VIGIL_EV_UNLINK, 1)
VIGIL_SYSCALL(unlinkat, VIGIL_EV_UNLINKAT, 3)
VIGIL_SYSCALL(mkdir, VIGIL_EV_MKDIR, 2)
VIGIL_SYSCALL(mkdirat, VIGIL_EV_MKDIRAT, 3)

/* ---- Following processes ---- */

/* A monitored process forked. The tracepoint also fires for new threads; those are told
 * apart by the CLONE_THREAD flag of the clone/clone3 the parent thread is in. */
SEC("tracepoint/sched/sched_process_fork")
int on_fork(struct trace_event_raw_sched_process_fork* ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 ptgid = id >> 32;
  if (!is_monitored(ptgid)) return 0;
  /* The parent is inside clone/clone3/fork/vfork: its saved registers hold the syscall
   * number and the flags. */
  struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(bpf_get_current_task_btf());
  long nr = regs->orig_ax;
  __u64 flags = 0;
  if (nr == NR_CLONE) flags = regs->di;
  if (nr == NR_CLONE3) flags = clone3_flags(regs->di);
  if (flags & CLONE_THREAD) return 0;
  __u32 child = (__u32)ctx->child_pid;
  if (!monitor_all) {
    struct vigil_monitored m = {.selector = 0, .parent_tgid = ptgid};
    if (!add_monitored(child, &m)) return 0;
  }
  struct vigil_event* e = new_event(VIGIL_EV_PROCESS_FORK);
  if (!e) return 0;
  e->target_pid = child;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* State of the exe-glob matcher, advanced one step per bpf_loop iteration. */
struct glob_state {
  __u32 selector;
  int p, s, star, mark;
  int result; /* -1 undecided, 0 no match, 1 match */
};

/* One step of a bounded glob match ('*' any run, '?' any byte, no FNM_PATHNAME, as
 * fnmatch(3) with flags 0) of selectors[selector].exe_glob against the resolved path. */
static long glob_step(__u32 i, void* arg) {
  struct glob_state* g = arg;
  __u32 resolved = EXEC_RESOLVED;
  struct vigil_selector* sel = bpf_map_lookup_elem(&selectors, &g->selector);
  char* str = bpf_map_lookup_elem(&exec_path, &resolved);
  if (!sel || !str) {
    g->result = 0;
    return 1;
  }
  int p = g->p, s = g->s;
  if (p < 0 || p >= VIGIL_GLOB_LEN || s < 0 || s >= VIGIL_DATA_LEN) {
    g->result = 0;
    return 1;
  }
  /* Masks as well as the range check above: the verifier needs a bound on the register
   * actually used for the access, and the barrier keeps clang from dropping the masks. */
  __u32 pi = p, si = s;
  barrier_var(pi);
  barrier_var(si);
  char pc = sel->exe_glob[pi & (VIGIL_GLOB_LEN - 1)];
  char sc = str[si & (VIGIL_DATA_LEN - 1)];
  if (sc != 0) {
    if (pc == '*') {
      g->star = p;
      g->mark = s;
      g->p = p + 1;
      return 0;
    }
    if (pc != 0 && (pc == '?' || pc == sc)) {
      g->p = p + 1;
      g->s = s + 1;
      return 0;
    }
    if (g->star >= 0) {
      g->p = g->star + 1;
      g->mark++;
      g->s = g->mark;
      return 0;
    }
    g->result = 0;
    return 1;
  }
  if (pc == '*') {
    g->p = p + 1;
    return 0;
  }
  g->result = pc == 0;
  return 1;
}

/* Index of the first selector the exec'ing process matches, or -1. */
static __always_inline int match_selectors(const char comm[VIGIL_COMM_LEN]) {
  __u64 cgid = bpf_get_current_cgroup_id();
  __u32* cgmask = bpf_map_lookup_elem(&selector_cgroups, &cgid);
  for (__u32 i = 0; i < VIGIL_MAX_SELECTORS; i++) {
    __u32 idx = i;
    struct vigil_selector* sel = bpf_map_lookup_elem(&selectors, &idx);
    if (!sel || !sel->active) continue;
    if (sel->match_cgroup && (!cgmask || !(*cgmask & (1u << i)))) continue;
    if (sel->match_comm) {
      bool same = true;
      for (int c = 0; c < VIGIL_COMM_LEN; c++) {
        if (sel->comm[c] != comm[c]) {
          same = false;
          break;
        }
        if (comm[c] == 0) break;
      }
      if (!same) continue;
    }
    if (sel->match_exe) {
      struct glob_state g = {.selector = i, .p = 0, .s = 0, .star = -1, .mark = 0, .result = -1};
      bpf_loop(GLOB_STEPS, glob_step, &g, 0);
      if (g.result != 1) continue;
    }
    return i;
  }
  return -1;
}

/* A process exec'd. A process matching a selector becomes monitored here, before the new
 * image runs its first instruction. */
SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec* ctx) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (tgid == node_tgid) return 0;
  __u32 zero = 0;
  char* path = bpf_map_lookup_elem(&exec_path, &zero);
  if (!path) return 0;
  unsigned int off = ctx->__data_loc_filename & 0xFFFF;
  long n = bpf_probe_read_kernel_str(path, VIGIL_DATA_LEN, (void*)ctx + off);
  if (n <= 0) path[0] = 0;

  if (!is_monitored(tgid)) {
    char comm[VIGIL_COMM_LEN] = {};
    bpf_get_current_comm(comm, sizeof(comm));
    /* Exe globs match the executable's real path (as /proc/PID/exe shows it, and as the
     * node's procfs matcher sees it), not the name it was exec'd by. */
    __u32 resolved = EXEC_RESOLVED;
    char* exe = bpf_map_lookup_elem(&exec_path, &resolved);
    if (!exe) return 0;
    if (!resolve_exe(exe)) exe[0] = 0;
    int idx = match_selectors(comm);
    if (idx < 0) return 0;
    struct vigil_monitored m = {.selector = (__u32)idx + 1, .parent_tgid = 0};
    if (!add_monitored(tgid, &m)) return 0;
  }
  /* Record the path for the exit of this execve/execveat: after a successful exec the
   * registers and the old image's memory are gone, the kernel's file name is reliable. */
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct stash* s = bpf_map_lookup_elem(&stash, &tid);
  if (!s) {
    struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(bpf_get_current_task_btf());
    long nr = regs->orig_ax;
    s = bpf_map_lookup_elem(&stash_scratch, &zero);
    if (s) {
      s->kind = nr == NR_EXECVEAT ? VIGIL_EV_EXECVEAT : VIGIL_EV_EXECVE;
      for (int i = 0; i < 6; i++) s->args[i] = 0;
    }
  }
  if (s) {
    long len = bpf_probe_read_kernel_str(s->data, sizeof(s->data), path);
    s->data_len = len > 0 ? len : 0;
    if (bpf_map_update_elem(&stash, &tid, s, BPF_ANY)) count_drop(VIGIL_DROP_STASH_FULL);
  }

  struct vigil_event* e = new_event(VIGIL_EV_PROCESS_EXEC);
  if (!e) return 0;
  e->target_pid = ctx->old_pid;
  long m = bpf_probe_read_kernel_str(e->data, sizeof(e->data), path);
  e->data_len = m > 0 ? m : 0;
  e->data_kind = m > 0 ? VIGIL_DATA_STRING : VIGIL_DATA_NONE;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* A thread exited: drop its stashed syscall; when it was the last one, the process is gone
 * and stops being monitored. */
SEC("tracepoint/sched/sched_process_exit")
int on_process_exit(struct trace_event_raw_sched_process_exit* ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (!is_monitored(tgid)) return 0;
  bpf_map_delete_elem(&stash, &tid);
  bool group_dead;
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  if (bpf_core_field_exists(ctx->group_dead))
    group_dead = BPF_CORE_READ(ctx, group_dead);
  else
    group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;
  if (!group_dead) return 0;
  struct vigil_event* e = new_event(VIGIL_EV_PROCESS_EXIT);
  if (e) {
    e->args[0] = (__u32)BPF_CORE_READ(task, exit_code); /* wait(2) status encoding */
    bpf_ringbuf_submit(e, 0);
  }
  remove_monitored(tgid);
  return 0;
}
