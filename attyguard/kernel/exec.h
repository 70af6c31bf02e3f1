/* SPDX-License-Identifier: MIT */
/*
 * The events exec.bpf.c writes to its ring buffer and the keys/values of its
 * maps: the one definition shared by the BPF program and its Python reader
 * (attyguard/kernel/records.py mirrors these layouts with ctypes; a test
 * checks the sizes against the object's BTF).
 *
 * Every record starts with `struct ag_hdr`; `type` says which struct follows.
 * Fixed-width types only, naturally aligned, so the layout is the same for
 * clang -target bpf and for x86_64/arm64 userspace.
 */
#ifndef ATTYGUARD_EXEC_H
#define ATTYGUARD_EXEC_H

/* argv bound (documented in README "Kernel layer"): at most AG_MAX_ARGS
 * arguments, each at most AG_ARG_LEN - 1 bytes, AG_ARGS_SIZE bytes in all
 * (NUL-separated). Anything beyond sets AG_F_ARGV_TRUNCATED. */
#define AG_MAX_ARGS 32
#define AG_ARG_LEN 1024
#define AG_ARGS_SIZE 8192
#define AG_FILENAME_LEN 512

enum ag_type {
	AG_EXEC = 1,	/* sys_enter_execve / sys_enter_execveat */
	AG_FORK = 2,	/* a new process (not a thread) */
	AG_EXIT = 3,	/* a process's last thread exits */
	AG_ALG = 4,	/* socket(AF_ALG, ...) */
	AG_CONNECT = 5, /* connect() from a guarded tree */
	AG_UNNAMED = 6, /* sched_process_exec of a file with no name (memfd, deleted) */
	AG_DONE = 7,	/* sched_process_exec of a guarded task: its exec ran (warn, rung 2) */
};

/* ag_exec.flags */
#define AG_F_ARGV_TRUNCATED 1u
#define AG_F_FILENAME_TRUNCATED 2u
#define AG_F_EXECVEAT 4u
#define AG_F_KILLED 8u /* rung 3 sent SIGKILL for this exec */
#define AG_F_EMPTY_PATH 16u /* execveat(fd, "", AT_EMPTY_PATH): the fd is the program;
			     * ag_exec.filename is then the fd's dentry name */
#define AG_F_UNNAMED 32u /* the program has no name: a memfd or a deleted file (nlink 0) */

/* ag_fd.kind: mirrors attyguard.kernel.events.FdKind */
enum ag_fd_kind {
	AG_FD_NONE = 0,
	AG_FD_TTY = 1,
	AG_FD_PIPE = 2,
	AG_FD_SOCKET = 3,
	AG_FD_FILE = 4,
	AG_FD_OTHER = 5,
};

/* Indexes of the per-CPU `stats` array: counted in the kernel so that a full
 * ring buffer is reported, never silent. */
enum ag_stat {
	AG_STAT_SEEN = 0,	  /* events offered to the ring buffer */
	AG_STAT_DROPPED = 1,	  /* ... that did not fit (ring buffer full) */
	AG_STAT_SIGNAL_KILLED = 2, /* rung 3: SIGKILLs sent */
	AG_STAT_LSM_DENIED = 3,	  /* rung 1: execs denied with EPERM */
	AG_STAT_MAX = 4,
};

/* Map values of `guarded` / `denied`: the root of the tree the tgid inherited
 * its membership from (a forked child copies its parent's value). */

/* `denied_inodes` key: the kernel's dev_t (MAJOR << 20 | MINOR), inode number. */
struct ag_inode_key {
	__u64 dev;
	__u64 ino;
};

struct ag_hdr {
	__u32 type;
	__u32 pid;  /* thread id */
	__u32 tgid; /* process id */
	__u32 uid;
	__u64 ktime_ns; /* bpf_ktime_get_boot_ns() */
};

struct ag_fd {
	__u32 kind;
	__u32 family; /* socket family when kind == AG_FD_SOCKET */
	__u64 ino;
};

struct ag_exec {
	struct ag_hdr hdr;
	__u32 ppid;
	__u32 flags;
	__u32 session_id;
	__u32 argc;	     /* arguments copied into args */
	__u64 cgroup_id;
	__u32 args_size;     /* bytes used in args */
	__s32 dfd;	     /* execveat's dirfd, else -100 (AT_FDCWD) */
	struct ag_fd fds[3]; /* fds 0, 1, 2 at the time of the call */
	char filename[AG_FILENAME_LEN];
	char args[AG_ARGS_SIZE]; /* only args_size bytes are sent */
};

struct ag_fork {
	struct ag_hdr hdr; /* the parent */
	__u32 child_tgid;
	__u32 guarded_root; /* 0 when the child is outside every guarded tree */
};

struct ag_exit {
	struct ag_hdr hdr;
	__u32 exit_code; /* as wait(2) would report it */
	__u32 _pad;
};

struct ag_alg {
	struct ag_hdr hdr;
	__u32 sock_type;
	__u32 protocol;
};

/* The new image of a guarded task is a file with no link left: a memfd
 * (which fanotify cannot see: it lives on the kernel's internal shmem mount)
 * or a deleted file. Written by sched_process_exec, before its first
 * instruction; flags as ag_exec.flags (AG_F_KILLED when killed). */
struct ag_unnamed {
	struct ag_hdr hdr;
	__u32 flags;
	__u32 _pad;
	__u64 ino;
	char name[64]; /* the dentry's name ("memfd:NAME" for a memfd) */
};

/* An exec of a guarded task completed (sched_process_exec): the last execve
 * record of the task before this one is the exec that ran; records without
 * one after them were attempts that failed (a PATH search). Written only
 * when ag_config.done_records is set (warn on rung 2, see layer.py). */
struct ag_done {
	struct ag_hdr hdr;
	char filename[AG_FILENAME_LEN]; /* as passed to execve (bprm->filename) */
};

/* `exec_state` map value (key: tgid), for the permission-event answerer: the
 * kernel's own bounds of one execve. `seq` counts the task's execve calls
 * (sys_enter_execve/at), `done` is set when the exec completed
 * (sched_process_exec, after every open the exec makes: the program, a
 * script's interpreter, the ELF loader). A permission event is a follow-up
 * of the exec it was allowed with only while `seq` is unchanged and `done`
 * is 0. */
struct ag_exec_state {
	__u32 seq;
	__u32 done;
};

struct ag_connect {
	struct ag_hdr hdr;
	__u32 family;
	__u32 port; /* host order */
	__u8 addr[108]; /* IPv4 (4 bytes), IPv6 (16) or a Unix path */
	__u32 addrlen;
};

/* The read-only configuration (`.rodata`), set by the loader before load. */
struct ag_config {
	__u32 self_tgid;    /* the daemon: never reported, never denied */
	__u32 trace_all;    /* report every process, not only guarded trees */
	__u32 signal_kill;  /* rung 3 in enforce mode: SIGKILL what the maps deny */
	__u32 lsm_enforce;  /* rung 1 in enforce mode: -EPERM what the maps deny */
	__u32 lazy_wakeup;  /* records do not wake the reader (it is woken by fanotify
			     * and polls on a timer) unless AG_LAZY_LIMIT bytes wait */
	__u32 kill_unnamed; /* enforce: SIGKILL a guarded exec of a memfd/deleted file */
	__u32 done_records; /* write an ag_done record when a guarded exec completes */
};

#define AG_LAZY_LIMIT (1 << 16)

#endif
