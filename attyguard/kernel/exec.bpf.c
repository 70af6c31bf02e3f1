// SPDX-License-Identifier: MIT
/*
 * attyguard's exec sensors and in-kernel enforcement (seed V2-B).
 *
 * Built by attyguard/kernel/build.py:
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h
 *   clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -c exec.bpf.c -o exec.bpf.o
 * CO-RE: field offsets are relocated by libbpf at load time against the
 * running kernel's BTF, so one object serves every BTF-enabled kernel.
 *
 * Scope: the `guarded` map holds the tgids of guarded trees (value: the
 * tree's root); a forked child inherits its parent's entry in the kernel, so
 * membership needs no userspace round trip, and the entry goes when the
 * process exits. Events are reported for guarded trees only, unless
 * `trace_all` is set or the uid is in `guarded_uids` (the daemon's `group`
 * scope); AF_ALG sockets are reported for every process (they are rare).
 *
 * Enforcement, by rung:
 *   1 lsm     bprm_check_security returns -EPERM for denied trees/inodes;
 *   3 signal  sys_enter_execve SIGKILLs denied trees before the exec runs,
 *             sched_process_exec SIGKILLs a denied inode before its first
 *             instruction (the task never returns to user space).
 * (Rung 2, fanotify, lives in userspace: attyguard/kernel/fanotify.py.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exec.h"

#define EPERM 1
#define AT_EMPTY_PATH 0x1000
#define SIGKILL 9
#define AF_ALG 38
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

char LICENSE[] SEC("license") = "Dual MIT/GPL"; /* GPL-only helpers: bpf_send_signal, bpf_probe_read_* */

const volatile struct ag_config cfg = {};

/* BTF anchors: records built in ring-buffer memory appear in no variable's
 * type, so clang would leave them out of the object's BTF; the loader's tests
 * compare every exec.h struct with its Python mirror through BTF. */
struct ag_fork *_anchor_fork __attribute__((unused));
struct ag_exit *_anchor_exit __attribute__((unused));
struct ag_alg *_anchor_alg __attribute__((unused));
struct ag_connect *_anchor_connect __attribute__((unused));
struct ag_unnamed *_anchor_unnamed __attribute__((unused));
struct ag_done *_anchor_done __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* 4 MiB; the loader may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AG_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid */
	__type(value, __u32); /* root of the guarded tree */
} guarded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* uid */
	__type(value, __u32);
} guarded_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tgid of a critical tree: every exec denied */
	__type(value, __u32); /* root of the denied tree */
} denied SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ag_inode_key);
	__type(value, __u32);
} denied_inodes SEC(".maps");

/* Where each guarded task is in its execve (struct ag_exec_state): read by
 * the permission-event answerers (fanswer.c, fanotify.py) to tell the opens
 * of an exec they allowed (its ELF loader, a script's interpreter) from the
 * task's next exec, whose record may be late or lost. LRU: an entry whose
 * exit was missed cannot fill the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tgid */
	__type(value, struct ag_exec_state);
} exec_state SEC(".maps");

/* An exec record is 8 KiB+: too big for the 512-byte BPF stack, so it is
 * built here and only its used part is copied to the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ag_exec);
} scratch SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Each wakeup of the reader costs a context switch per record; under rung 2
 * the reader is woken by the permission event anyway (and drains then), so
 * records only wake it when a backlog builds up. */
static __always_inline __u64 rb_flags(void)
{
	if (!cfg.lazy_wakeup)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > AG_LAZY_LIMIT ? BPF_RB_FORCE_WAKEUP
									  : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_hdr(struct ag_hdr *h, __u32 type)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ktime_ns = bpf_ktime_get_boot_ns();
}

static __always_inline bool in_scope(__u32 tgid, __u32 uid)
{
	if (cfg.trace_all)
		return true;
	if (bpf_map_lookup_elem(&guarded, &tgid))
		return true;
	return bpf_map_lookup_elem(&guarded_uids, &uid) != NULL;
}

/* sys_enter_execve(at) of a task in scope: a new execve begins */
static __always_inline void exec_begins(__u32 tgid)
{
	struct ag_exec_state *s = bpf_map_lookup_elem(&exec_state, &tgid);
	struct ag_exec_state fresh = {1, 0};

	if (!s) {
		bpf_map_update_elem(&exec_state, &tgid, &fresh, BPF_ANY);
		return;
	}
	s->seq++; /* written by the task itself only: no other writer races it */
	s->done = 0;
}

/* sched_process_exec: the execve completed, after every open it made (the
 * program, a script's interpreter, the ELF loader: each waited for its
 * permission answer before the exec went on). warn on rung 2 also gets a
 * record, which wakes the reader (the kernel's adaptive wakeup: only when the
 * reader has drained everything before it): warn judges the exec from it, and
 * judged ~50 ms late (the lazy timer) a short-lived tree was often gone by then
 * (its shell unregistered), the exec out of scope, unrecorded. */
static __always_inline void exec_completes(struct trace_event_raw_sched_process_exec *ctx,
					   __u32 tgid, struct inode *inode)
{
	struct ag_exec_state *s = bpf_map_lookup_elem(&exec_state, &tgid);
	struct ag_done *e;

	if (!s)
		return; /* no execve of this task was seen in scope */
	s->done = 1;
	/* (a program with no name is reported by AG_UNNAMED instead) */
	if (!cfg.done_records || !inode || BPF_CORE_READ(inode, i_nlink) == 0 ||
	    !in_scope(tgid, (__u32)bpf_get_current_uid_gid()))
		return;
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return;
	}
	fill_hdr(&e->hdr, AG_DONE);
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				      (void *)ctx + (ctx->__data_loc_filename & 0xFFFF)) < 0)
		e->filename[0] = 0;
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > AG_LAZY_LIMIT
				      ? BPF_RB_FORCE_WAKEUP : 0);
}

static __always_inline bool inode_denied(struct inode *inode)
{
	struct ag_inode_key key = {};

	if (!inode)
		return false;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);
	return bpf_map_lookup_elem(&denied_inodes, &key) != NULL;
}

/* ------------------------------------------------------------------ rung 1 */

SEC("lsm/bprm_check_security")
int BPF_PROG(ag_bprm_check, struct linux_binprm *bprm, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (ret)
		return ret; /* an earlier LSM already refused */
	if (!cfg.lsm_enforce || tgid == cfg.self_tgid)
		return 0;
	if (bpf_map_lookup_elem(&denied, &tgid) || inode_denied(BPF_CORE_READ(bprm, file, f_inode))) {
		stat_inc(AG_STAT_LSM_DENIED);
		return -EPERM;
	}
	return 0;
}

/* ---------------------------------------------------------- exec sensors */

static __always_inline void read_fd(struct file **fdarr, __u32 max_fds, int i, struct ag_fd *out)
{
	struct file *f = NULL;
	struct inode *inode;
	__u32 mode;

	out->kind = AG_FD_NONE;
	if ((__u32)i >= max_fds || bpf_probe_read_kernel(&f, sizeof(f), &fdarr[i]) || !f)
		return;
	inode = BPF_CORE_READ(f, f_inode);
	mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	out->ino = BPF_CORE_READ(inode, i_ino);
	if (mode == S_IFIFO) {
		out->kind = AG_FD_PIPE;
	} else if (mode == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(f, private_data);

		out->kind = AG_FD_SOCKET;
		out->family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	} else if (mode == S_IFREG) {
		out->kind = AG_FD_FILE;
	} else if (mode == S_IFCHR) {
		__u32 major = BPF_CORE_READ(inode, i_rdev) >> 20;

		/* 4: ttyN/ttyS, 5: /dev/tty, console, ptmx, 136-143: /dev/pts/N */
		out->kind = (major == 4 || major == 5 || (major >= 136 && major <= 143)) ? AG_FD_TTY
											 : AG_FD_OTHER;
	} else {
		out->kind = AG_FD_OTHER;
	}
}

static __always_inline struct file *fd_file(struct file **fdarr, __u32 max_fds, int i)
{
	struct file *f = NULL;

	if ((__u32)i >= max_fds || bpf_probe_read_kernel(&f, sizeof(f), &fdarr[i]))
		return NULL;
	return f;
}

static __always_inline int on_exec(const char *filename, const char *const *argv, int dfd,
				   __u32 flags, int atflags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, uid = (__u32)bpf_get_current_uid_gid();
	__u32 zero = 0;
	__u64 off = 0, size;
	const unsigned char *empty_name = NULL;
	struct ag_exec *e;
	long n;
	int i;

	if (tgid == cfg.self_tgid)
		return 0;
	if (cfg.signal_kill && bpf_map_lookup_elem(&denied, &tgid)) {
		/* rung 3: the exec has not started; SIGKILL is delivered on the
		 * way back to user space, so the new program never runs. */
		bpf_send_signal(SIGKILL);
		stat_inc(AG_STAT_SIGNAL_KILLED);
		flags |= AG_F_KILLED;
	} else if (!in_scope(tgid, uid)) {
		return 0;
	}
	exec_begins(tgid);

	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, AG_EXEC);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->dfd = dfd;
	{
		struct pid *sid = BPF_CORE_READ(task, signal, pids[PIDTYPE_SID]);

		e->session_id = sid ? BPF_CORE_READ(sid, numbers[0].nr) : 0;
	}
	{
		struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
		struct file **fdarr = BPF_CORE_READ(fdt, fd);
		__u32 max_fds = BPF_CORE_READ(fdt, max_fds);

		read_fd(fdarr, max_fds, 0, &e->fds[0]);
		read_fd(fdarr, max_fds, 1, &e->fds[1]);
		read_fd(fdarr, max_fds, 2, &e->fds[2]);
		if ((flags & AG_F_EXECVEAT) && (atflags & AT_EMPTY_PATH)) {
			char first = 1;

			/* fexecve(): the program is the fd. A memfd lives on the
			 * kernel's internal shmem mount, which fanotify cannot mark:
			 * in enforce, a guarded tree's exec of one is killed here,
			 * before the exec starts. */
			if (!bpf_probe_read_user(&first, 1, filename) && !first) {
				struct file *f = fd_file(fdarr, max_fds, dfd);

				flags |= AG_F_EMPTY_PATH;
				/* nlink 0: a memfd, or a file deleted since it was opened */
				if (f && BPF_CORE_READ(f, f_inode, i_nlink) == 0)
					flags |= AG_F_UNNAMED;
				if (f)
					empty_name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
			}
		}
	}
	if ((flags & AG_F_UNNAMED) && cfg.kill_unnamed && !(flags & AG_F_KILLED)) {
		bpf_send_signal(SIGKILL);
		stat_inc(AG_STAT_SIGNAL_KILLED);
		flags |= AG_F_KILLED;
	}
	if (empty_name) /* the fd's name ("memfd:NAME"), the path being empty */
		n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), empty_name);
	else
		n = bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
	if (n < 0)
		e->filename[0] = 0;
	else if (n == sizeof(e->filename))
		flags |= AG_F_FILENAME_TRUNCATED;

	e->argc = 0;
	for (i = 0; i < AG_MAX_ARGS; i++) {
		const char *p = NULL;

		if (bpf_probe_read_user(&p, sizeof(p), &argv[i]) || !p)
			goto done;
		if (off >= AG_ARGS_SIZE - AG_ARG_LEN) { /* keeps off < AG_ARGS_SIZE below */
			flags |= AG_F_ARGV_TRUNCATED;
			goto done;
		}
		n = bpf_probe_read_user_str(&e->args[off], AG_ARG_LEN, p);
		if (n <= 0) {
			flags |= AG_F_ARGV_TRUNCATED;
			goto done;
		}
		if (n == AG_ARG_LEN)
			flags |= AG_F_ARGV_TRUNCATED; /* this argument was cut */
		off += n;
		e->argc = i + 1;
	}
	{
		/* AG_MAX_ARGS copied: is there one more? */
		const char *p = NULL;

		if (!bpf_probe_read_user(&p, sizeof(p), &argv[AG_MAX_ARGS]) && p)
			flags |= AG_F_ARGV_TRUNCATED;
	}
done:
	e->flags = flags;
	/* off < AG_ARGS_SIZE already; clang knows and would drop the mask, but the
	 * verifier needs it to bound the copy: hide off from clang. */
	asm volatile("" : "+r"(off));
	off &= AG_ARGS_SIZE - 1;
	e->args_size = off;
	size = __builtin_offsetof(struct ag_exec, args) + off;
	stat_inc(AG_STAT_SEEN);
	if (bpf_ringbuf_output(&events, e, size, rb_flags()))
		stat_inc(AG_STAT_DROPPED);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int ag_execve(struct trace_event_raw_sys_enter *ctx)
{
	return on_exec((const char *)ctx->args[0], (const char *const *)ctx->args[1], -100, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int ag_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return on_exec((const char *)ctx->args[1], (const char *const *)ctx->args[2],
		       (int)ctx->args[0], AG_F_EXECVEAT, (int)ctx->args[4]);
}

SEC("tracepoint/sched/sched_process_exec")
int ag_exec_done(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task;
	struct inode *inode;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ag_unnamed *e;
	__u32 flags = 0;

	if (tgid == cfg.self_tgid)
		return 0;
	/* The new image is mapped but has not run: killing here means none of
	 * its instructions execute. */
	task = (struct task_struct *)bpf_get_current_task();
	inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (cfg.signal_kill && inode_denied(inode)) {
		/* rung 3 for denied executables */
		bpf_send_signal(SIGKILL);
		stat_inc(AG_STAT_SIGNAL_KILLED);
		return 0;
	}
	exec_completes(ctx, tgid, inode);
	/* A program with no name left (a memfd exec'd through /proc/self/fd/N, a
	 * deleted file): no rung can judge it by its file, so a guarded tree's
	 * is killed in enforce, and reported either way. */
	if (!inode || BPF_CORE_READ(inode, i_nlink) != 0 ||
	    !in_scope(tgid, (__u32)bpf_get_current_uid_gid()))
		return 0;
	if (cfg.kill_unnamed) {
		bpf_send_signal(SIGKILL);
		stat_inc(AG_STAT_SIGNAL_KILLED);
		flags |= AG_F_KILLED;
	}
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return 0;
	}
	fill_hdr(&e->hdr, AG_UNNAMED);
	e->flags = flags | AG_F_UNNAMED;
	e->_pad = 0;
	e->ino = BPF_CORE_READ(inode, i_ino);
	if (bpf_probe_read_kernel_str(e->name, sizeof(e->name),
				      BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name)) < 0)
		e->name[0] = 0;
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

/* ------------------------------------------------------- process tree */

/* BTF-typed sched_process_fork (tp_btf: a raw tracepoint, not a trampoline):
 * the child's task_struct tells a new process from a new thread, which the
 * classic tracepoint's pids cannot. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ag_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u32 *root, groot = 0;
	struct ag_fork *e;

	if (child->pid != ctgid)
		return 0; /* a thread: same process, same membership */
	root = bpf_map_lookup_elem(&guarded, &ptgid);
	if (root) {
		groot = *root;
		bpf_map_update_elem(&guarded, &ctgid, &groot, BPF_ANY);
	}
	root = bpf_map_lookup_elem(&denied, &ptgid);
	if (root) {
		__u32 droot = *root;

		bpf_map_update_elem(&denied, &ctgid, &droot, BPF_ANY);
	}
	if (ptgid == cfg.self_tgid || !in_scope(ptgid, (__u32)bpf_get_current_uid_gid()))
		return 0;
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return 0;
	}
	fill_hdr(&e->hdr, AG_FORK);
	e->hdr.tgid = ptgid;
	e->child_tgid = ctgid;
	e->guarded_root = groot;
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int ag_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	bool last, scoped;
	struct ag_exit *e;

	if (bpf_core_field_exists(ctx->group_dead))
		last = BPF_CORE_READ(ctx, group_dead);
	else
		last = (__u32)id == tgid;
	if (!last)
		return 0;
	scoped = tgid != cfg.self_tgid && in_scope(tgid, (__u32)bpf_get_current_uid_gid());
	/* The tree's maps forget a process when it ends: a guarded shell
	 * that exits leaves no entry behind (its children keep theirs until
	 * they end too). */
	bpf_map_delete_elem(&guarded, &tgid);
	bpf_map_delete_elem(&denied, &tgid);
	bpf_map_delete_elem(&exec_state, &tgid);
	if (!scoped)
		return 0;
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return 0;
	}
	fill_hdr(&e->hdr, AG_EXIT);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

/* ------------------------------------------------------- sockets */

SEC("tracepoint/syscalls/sys_enter_socket")
int ag_socket(struct trace_event_raw_sys_enter *ctx)
{
	struct ag_alg *e;

	if (ctx->args[0] != AF_ALG || (bpf_get_current_pid_tgid() >> 32) == cfg.self_tgid)
		return 0;
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return 0;
	}
	fill_hdr(&e->hdr, AG_ALG);
	e->sock_type = (__u32)ctx->args[1];
	e->protocol = (__u32)ctx->args[2];
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int ag_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const void *uaddr = (const void *)ctx->args[1];
	__u32 len = (__u32)ctx->args[2];
	struct ag_connect *e;
	__u16 family = 0;

	if (tgid == cfg.self_tgid || !in_scope(tgid, (__u32)bpf_get_current_uid_gid()))
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	stat_inc(AG_STAT_SEEN);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AG_STAT_DROPPED);
		return 0;
	}
	fill_hdr(&e->hdr, AG_CONNECT);
	e->family = family;
	e->port = 0;
	e->addrlen = len;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		e->port = __builtin_bswap16(sin.sin_port);
		__builtin_memcpy(e->addr, &sin.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		e->port = __builtin_bswap16(sin6.sin6_port);
		__builtin_memcpy(e->addr, &sin6.sin6_addr, 16);
	} else if (family == AF_UNIX) {
		/* sun_path starts after the 2-byte family; abstract names start with NUL */
		bpf_probe_read_user(e->addr, sizeof(e->addr), uaddr + 2);
	}
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}
