// SPDX-License-Identifier: MIT
/*
 * SEC-002's kernel-side policy checks, loaded through attyguard's generic
 * libbpf loader (attyguard/kernel/bpf.py) by attyguard/policy/kernel.py.
 *
 * Scope: `watched` maps a tgid to its policy entry. Userspace puts matched
 * processes in (by executable path/SHA-256); the kernel closes the races
 * itself: a forked child inherits its parent's entry before it runs, and an
 * exec of a watched executable (by inode, `inodes`) is watched from its first
 * instruction. Processes that are not watched pay one array lookup per
 * hooked syscall, and nothing for other syscalls beyond the kernel's own
 * tracepoint check.
 *
 * Checks (one program on the per-syscall tracepoints of the named syscalls):
 *   - a syscall in the entry's blocked set (`blocked`): reported; in enforce
 *     mode (`control[0]`) SIGKILL is sent at syscall entry. The signal is
 *     delivered on the way back to user space, after the call itself ran:
 *     the process never sees the result and runs nothing after it, but the
 *     call had its effect (seccomp, which refuses before the call, needs the
 *     process to be started under attyguard: not done here);
 *   - open/openat/openat2 and connect: the path / address copied for
 *     userspace to judge against globs and CIDR rules (audit/alert).
 * Connects in enforce mode (cgroup/connect4, cgroup/connect6 at the cgroup2
 * root, so every process is covered): a watched process's connect inside its
 * blocked_network, or outside its allowed_network, fails with EPERM before a
 * packet leaves. The rules are LPM tries per entry; userspace keeps them
 * identical to what its evaluator judges.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "policy.h"

#define SIGKILL 9
#define AF_INET 2
#define AF_INET6 10
#define NR_OPEN 2
#define NR_CONNECT 42
#define NR_OPENAT 257
#define NR_OPENAT2 437

char LICENSE[] SEC("license") = "Dual MIT/GPL"; /* bpf_send_signal, bpf_probe_read_* */

struct agp_syscall *_anchor_syscall __attribute__((unused));
struct agp_open *_anchor_open __attribute__((unused));
struct agp_connect *_anchor_connect __attribute__((unused));
struct agp_exec *_anchor_exec __attribute__((unused));
struct agp_net_key *_anchor_net_key __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 21);
} policy_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} policy_stats SEC(".maps");

/* An array indexed by pid, not a hash: the verifier inlines an array lookup
 * into a bounds check and a load, which is what every hooked syscall of
 * every process pays (bench/policy_bench.py). Mappable: userspace scans it
 * to learn whether any watched process is still alive (the hooks are
 * detached when none is). The loader sizes it to pid_max
 * (one byte a pid: 4 MiB at the 64-bit maximum); a pid beyond it is
 * unwatched. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);  /* tgid (or a thread id, inherited at clone) */
	__type(value, __u8); /* entry index, from 1; 0: not watched */
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agp_blocked_key);
	__type(value, __u8);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AGP_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u32); /* AGP_WANT_* */
} entry_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct agp_inode_key);
	__type(value, __u32);
} inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct agp_net_key);
	__type(value, struct agp_net_val);
} net_blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct agp_net_key);
	__type(value, struct agp_net_val);
} net_allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32); /* [0]: 1 = enforce (kill blocked syscalls); [1]: our own tgid */
} control SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&policy_stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void *reserve(__u64 size)
{
	void *rec;

	stat_inc(AGP_STAT_SEEN);
	rec = bpf_ringbuf_reserve(&policy_events, size, 0);
	if (!rec)
		stat_inc(AGP_STAT_DROPPED);
	return rec;
}

static __always_inline void fill_hdr(struct agp_hdr *h, __u32 type, __u32 entry)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	h->entry = entry;
	h->ktime_ns = bpf_ktime_get_boot_ns();
}

static __always_inline __u32 control_get(__u32 idx)
{
	__u32 *v = bpf_map_lookup_elem(&control, &idx);

	return v ? *v : 0;
}

/* The context of a `syscalls/sys_enter_<name>` tracepoint (tracefs's format:
 * the common header, `int __syscall_nr` at 8, the arguments from 16). */
struct agp_sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

/* The blocked-syscall check; a true return means the caller goes on to look
 * at the arguments (the entry wants opens or connects). */
static __always_inline bool sys_enter_common(__u32 e, long nr)
{
	struct agp_blocked_key key;
	__u32 *want;

	key.entry = e;
	key.nr = (__u32)nr;
	if (bpf_map_lookup_elem(&blocked, &key)) {
		struct agp_syscall *rec = reserve(sizeof(*rec));
		__u32 killed = 0;

		if (control_get(0)) {
			/* Delivered on the way back to user space: the call itself runs
			 * (seen here: an unlinkat still removed its file). */
			bpf_send_signal(SIGKILL);
			stat_inc(AGP_STAT_KILLED);
			killed = 1;
		}
		if (rec) {
			fill_hdr(&rec->h, AGP_SYSCALL, e);
			rec->nr = key.nr;
			rec->killed = killed;
			bpf_ringbuf_submit(rec, 0);
		}
		return false;
	}
	want = bpf_map_lookup_elem(&entry_cfg, &e);
	return want && *want;
}

/* Attached by userspace to the per-syscall tracepoint of each
 * syscall a policy entry names (blocked ones, plus open/openat/openat2 and
 * connect for entries with file or network rules), and only while a process
 * of such an entry is alive (attyguard/policy/kernel.py). Per-syscall
 * tracepoints, not the global raw `sys_enter`: the kernel checks the syscall
 * number against its bitmap before any program runs, so other syscalls never
 * reach BPF (bench/policy_bench.py prints what each costs). There is no
 * kprobe here (CONFIG_KPROBES is off), hence no bpf_override_return: the
 * syscall cannot be refused from this hook, only its caller killed.
 *
 * Two programs because the kernel refuses to attach a tracepoint program
 * that reads past the event's record (EACCES): a syscall of two arguments
 * has no args[2]. `agp_sys_enter` reads the number alone and goes on every
 * named syscall; `agp_sys_args` also reads three arguments and goes on
 * open/openat/openat2/connect, which all have them. */
SEC("tracepoint")
int agp_sys_enter(struct agp_sys_enter_ctx *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *entry = bpf_map_lookup_elem(&watched, &tgid);

	if (!entry || !*entry)
		return 0; /* the unwatched path: one inlined array load */
	sys_enter_common(*entry, ctx->nr);
	return 0;
}

SEC("tracepoint")
int agp_sys_args(struct agp_sys_enter_ctx *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *entry = bpf_map_lookup_elem(&watched, &tgid);
	__u32 *want;
	__u64 a0, a1, a2;
	__u32 e;
	long nr;

	if (!entry || !*entry)
		return 0;
	e = *entry;
	nr = ctx->nr;
	if (!sys_enter_common(e, nr))
		return 0;
	want = bpf_map_lookup_elem(&entry_cfg, &e);
	if (!want)
		return 0;
	a0 = ctx->args[0];
	a1 = ctx->args[1];
	a2 = ctx->args[2];
	if ((*want & AGP_WANT_OPEN) && (nr == NR_OPEN || nr == NR_OPENAT || nr == NR_OPENAT2)) {
		struct agp_open *rec = reserve(sizeof(*rec));
		const char *path;

		if (!rec)
			return 0;
		fill_hdr(&rec->h, AGP_OPEN, e);
		if (nr == NR_OPEN) {
			path = (const char *)a0;
			rec->dfd = -100;
			rec->flags = (__u32)a1;
		} else {
			path = (const char *)a1;
			rec->dfd = (__s32)a0;
			rec->flags = nr == NR_OPENAT ? (__u32)a2 : 0;
		}
		if (bpf_probe_read_user_str(rec->path, sizeof(rec->path), path) < 0)
			rec->path[0] = 0;
		bpf_ringbuf_submit(rec, 0);
		return 0;
	}
	if ((*want & AGP_WANT_CONNECT) && nr == NR_CONNECT) {
		const void *uaddr = (const void *)a1;
		struct agp_connect *rec;
		__u16 family = 0;
		__u16 port = 0;

		if (bpf_probe_read_user(&family, sizeof(family), uaddr) ||
		    (family != AF_INET && family != AF_INET6))
			return 0; /* Unix and other local sockets are not "network" */
		rec = reserve(sizeof(*rec));
		if (!rec)
			return 0;
		fill_hdr(&rec->h, AGP_CONNECT, e);
		rec->family = family;
		rec->pad = 0;
		__builtin_memset(rec->addr, 0, sizeof(rec->addr));
		bpf_probe_read_user(&port, sizeof(port), uaddr + 2);
		rec->port = __builtin_bswap16(port);
		if (family == AF_INET)
			bpf_probe_read_user(rec->addr, 4, uaddr + 4);
		else
			bpf_probe_read_user(rec->addr, 16, uaddr + 8);
		bpf_ringbuf_submit(rec, 0);
	}
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int agp_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32; /* the parent is current */
	__u8 *entry = bpf_map_lookup_elem(&watched, &tgid);
	__u32 child;

	if (!entry || !*entry)
		return 0;
	child = (__u32)ctx->child_pid;
	bpf_map_update_elem(&watched, &child, entry, BPF_ANY);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int agp_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = (__u32)id;
	__u8 *entry = bpf_map_lookup_elem(&watched, &pid);

	/* Every thread's own slot (inherited at clone) is cleared; the tgid's with
	 * its main thread. A reused pid starts unwatched. */
	if (entry && *entry)
		*entry = 0;
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int agp_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct agp_inode_key key = {};
	struct inode *inode;
	__u32 *entry;
	__u8 *before, value;
	__u32 previous = 0;
	struct agp_exec *rec;

	inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!inode)
		return 0;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);
	entry = bpf_map_lookup_elem(&inodes, &key);
	if (!entry)
		return 0;
	before = bpf_map_lookup_elem(&watched, &tgid);
	if (!before)
		return 0; /* beyond pid_max as sized at load */
	previous = *before;
	value = (__u8)*entry;
	*before = value;
	rec = reserve(sizeof(*rec));
	if (rec) {
		fill_hdr(&rec->h, AGP_EXEC, *entry);
		rec->previous = previous;
		rec->pad = 0;
		bpf_ringbuf_submit(rec, 0);
	}
	return 0;
}

/* ------------------------------------------------------- connect (enforce) */

static __always_inline bool net_match(void *trie, struct agp_net_key *key, __u16 port)
{
	struct agp_net_val *v = bpf_map_lookup_elem(trie, key);
	int i;

	if (!v)
		return false;
	if (v->nranges == 0)
		return true;
	for (i = 0; i < AGP_PORT_RANGES; i++) {
		if (i >= v->nranges)
			break;
		if (v->lo[i] <= port && port <= v->hi[i])
			return true;
	}
	return false;
}

/* 1: let the connect go on; 0: refuse it (connect() fails with EPERM).
 * `key` holds the IPv6 form, `key4` the IPv4 form (family 0: none). */
static __always_inline int judge_connect(struct agp_net_key *key, struct agp_net_key *key4,
					 __u16 port)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *entry = bpf_map_lookup_elem(&watched, &tgid);
	bool blocked = false, allowed = false;
	__u32 e, *cfg;

	if (!entry || !*entry || !control_get(0))
		return 1;
	e = *entry;
	cfg = bpf_map_lookup_elem(&entry_cfg, &e);
	if (!cfg || !(*cfg & AGP_NET_ENFORCE))
		return 1;
	if (key->family) {
		key->entry = (__u8)e;
		key->prefixlen = 16 + 128;
		blocked = net_match(&net_blocked, key, port);
		allowed = net_match(&net_allowed, key, port);
	}
	if (key4->family) {
		key4->entry = (__u8)e;
		key4->prefixlen = 16 + 32;
		blocked = blocked || net_match(&net_blocked, key4, port);
		allowed = allowed || net_match(&net_allowed, key4, port);
	}
	if (blocked || ((*cfg & AGP_NET_ALLOWLIST) && !allowed)) {
		stat_inc(AGP_STAT_CONNECT_DENIED);
		return 0;
	}
	return 1;
}

SEC("cgroup/connect4")
int agp_connect4(struct bpf_sock_addr *ctx)
{
	struct agp_net_key none = {}, key4 = {};
	__u32 ip = ctx->user_ip4; /* network order */

	key4.family = 4;
	__builtin_memcpy(&key4.addr[0], &ip, 4);
	return judge_connect(&none, &key4, __builtin_bswap16((__u16)ctx->user_port));
}

SEC("cgroup/connect6")
int agp_connect6(struct bpf_sock_addr *ctx)
{
	struct agp_net_key key = {}, key4 = {};
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2],
	      w3 = ctx->user_ip6[3];

	key.family = 6;
	__builtin_memcpy(&key.addr[0], &w0, 4);
	__builtin_memcpy(&key.addr[4], &w1, 4);
	__builtin_memcpy(&key.addr[8], &w2, 4);
	__builtin_memcpy(&key.addr[12], &w3, 4);
	/* ::ffff:a.b.c.d is also judged by the IPv4 rules (w0, w1 == 0, w2 == htonl(0xffff)) */
	if (w0 == 0 && w1 == 0 && w2 == __builtin_bswap32(0xffff)) {
		key4.family = 4;
		__builtin_memcpy(&key4.addr[0], &w3, 4);
	}
	return judge_connect(&key, &key4, __builtin_bswap16((__u16)ctx->user_port));
}
