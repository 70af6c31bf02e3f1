/* SPDX-License-Identifier: MIT */
/*
 * SEC-002's kernel-side checks (policy.bpf.c): ring-buffer records and map
 * keys shared with their Python reader (attyguard/policy/kernel.py mirrors
 * them with ctypes; a test checks the sizes against the object's BTF).
 * Fixed-width types, naturally aligned.
 */
#ifndef ATTYGUARD_POLICY_H
#define ATTYGUARD_POLICY_H

#define AGP_PATH_LEN 256
#define AGP_MAX_ENTRIES 256 /* indices 1..255 (a byte in `watched`) */

enum agp_type {
	AGP_SYSCALL = 1, /* a blocked syscall of a watched process */
	AGP_OPEN = 2,	 /* open/openat/openat2 by a watched process with file rules */
	AGP_CONNECT = 3, /* connect() to AF_INET/AF_INET6 by one with network rules */
	AGP_EXEC = 4,	 /* a process exec'd a watched executable (inode match) */
};

/* agp_entry_cfg flags: which arguments are worth copying for this entry, and
 * whether its connects are judged in the kernel (cgroup/connect4/6). */
#define AGP_WANT_OPEN 1u
#define AGP_WANT_CONNECT 2u
#define AGP_NET_ENFORCE 4u   /* the entry's network rules are in the LPM tries */
#define AGP_NET_ALLOWLIST 8u /* the entry has allowed_network: outside it is denied */

#define AGP_PORT_RANGES 16

struct agp_hdr {
	__u32 type;
	__u32 pid;  /* thread id */
	__u32 tgid;
	__u32 entry; /* policy entry index, from 1 */
	__u64 ktime_ns;
};

struct agp_syscall {
	struct agp_hdr h;
	__u32 nr;
	__u32 killed; /* 1: SIGKILL sent (enforce) */
};

struct agp_open {
	struct agp_hdr h;
	__s32 dfd; /* -100 (AT_FDCWD) or a directory fd for a relative path */
	__u32 flags;
	char path[AGP_PATH_LEN];
};

struct agp_connect {
	struct agp_hdr h;
	__u16 family;
	__u16 port; /* host order */
	__u32 pad;
	__u8 addr[16]; /* 4 bytes for AF_INET */
};

struct agp_exec {
	struct agp_hdr h;
	__u32 previous; /* the entry it had before (0: none) */
	__u32 pad;
};

struct agp_blocked_key {
	__u32 entry;
	__u32 nr;
};

struct agp_inode_key {
	__u64 dev; /* the kernel's dev_t: MAJOR << 20 | MINOR */
	__u64 ino;
};

/* `net_blocked` / `net_allowed` LPM trie key: the entry, the family (4 or 6),
 * then the address (IPv4 in addr[0..3]); prefixlen counts the entry's and the
 * family's 8 bits each (a `*` rule is the entry alone: prefixlen 8). An IPv4-
 * mapped IPv6 address is looked up as both, as userspace judges it. */
struct agp_net_key {
	__u32 prefixlen;
	__u8 entry;
	__u8 family;
	__u8 addr[16];
	__u8 pad[2];
};

/* The ports a prefix's rules cover (every rule of a shorter prefix that
 * contains it merged in by userspace, so the longest match decides alone). */
struct agp_net_val {
	__u32 nranges; /* 0: any port */
	__u16 lo[AGP_PORT_RANGES];
	__u16 hi[AGP_PORT_RANGES];
};

enum agp_stat {
	AGP_STAT_SEEN = 0,
	AGP_STAT_DROPPED = 1,
	AGP_STAT_KILLED = 2,
	AGP_STAT_CONNECT_DENIED = 3,
	AGP_STAT_MAX = 4,
};

#endif
