/* SPDX-License-Identifier: MIT */
/*
 * fanswer.c — rung 2's answering loop, in C, on its own thread.
 *
 * Why C: every exec in a marked filesystem raises FAN_OPEN_EXEC_PERM twice
 * (the binary, then its ELF interpreter) and the exec'ing task sleeps until
 * we answer. Through the Python reader each answer cost a wake of a Python
 * thread, the GIL, a thread-pool hop and ~100 µs of interpreter time: 1.3–1.4 ×
 * the exec loop. Here the answers that need no judgement are written from a
 * thread that never takes the GIL:
 *   - tasks outside the guarded scope (the `guarded` BPF map, by map fd);
 *   - the ELF-interpreter open that follows an exec already allowed (while
 *     the kernel's `exec_state` map says the task is still in that execve);
 *   - an exec whose verdict is known: the execve tracepoint record (written
 *     before the permission event, so it is in the ring buffer already) is
 *     keyed (filename, argv, uid, kinds of fds 0-2, and the opened file's
 *     dev/inode/mtime/ctime) and looked up in a cache of allows that Python
 *     marked cacheable.
 * Everything else is handed to Python (a queue + an eventfd), and every
 * handed event is still answered here when its deadline passes, whatever
 * Python does. This thread also owns the ring buffer (one consumer only):
 * every record is copied to a queue Python drains, so Python still sees all.
 *
 * No headers beyond libc's: the few libbpf calls are declared here (stable ABI
 * of libbpf.so.1), so a host needs a C compiler and libbpf1, not libbpf-dev.
 * Built by attyguard/kernel/build.py (`--helper`) at install time; when absent
 * the layer uses its Python reader and says so in its status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h> /* linux-libc-dev: a dependency of libc6-dev */
#include "exec.h"

/* libbpf.so.1 */
struct ring_buffer;
typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx,
				     const void *opts);
int ring_buffer__consume(struct ring_buffer *rb);
int ring_buffer__epoll_fd(const struct ring_buffer *rb);
void ring_buffer__free(struct ring_buffer *rb);
int bpf_map_lookup_elem(int fd, const void *key, void *value);

/* linux/fanotify.h, declared here for the same reason */
struct fan_meta {
	__u32 event_len;
	__u8 vers;
	__u8 reserved;
	uint16_t metadata_len;
	__u64 mask __attribute__((aligned(8)));
	__s32 fd;
	__s32 pid;
};
struct fan_response {
	__s32 fd;
	__u32 response;
};
#define FAN_ALLOW 0x01
#define FAN_DENY 0x02
#define FAN_OPEN_EXEC_PERM 0x00040000ULL
#define FAN_OPEN_EXEC 0x00001000ULL
#define FANOTIFY_METADATA_VERSION 3

#define PENDING_MAX 1024      /* events handed to Python and not yet released */
#define TASK_SLOTS (1u << 16) /* per-tgid exec state, direct-mapped */
#define CACHE_SLOTS (1u << 13)
#define LAZY_MS 50	       /* the ring buffer is drained at least this often */
#define NOTIFY_BACKLOG 256     /* records queued before Python is woken for them */
/* a follow-up open comes within the same execve (bounded by exec_state, see
 * same_exec; this is only the outer bound) */
#define FOLLOW_NS 200000000ULL
/* warn: how long an exec record still vouches for its task being in scope after
 * the task left the `guarded` map (it exited before its notification was read) */
#define EXITED_NS 5000000000ULL
/* After allowing an exec from the cache, spin (non-blocking reads) this long for
 * its ELF-interpreter open instead of sleeping (one spin per allowed exec,
 * stopped by the first event). Off by default: measured on the 2-vCPU VMs of
 * this project, 150 µs of spin saved no wall time in bench/exec_loop.py (within
 * its noise) and cost ~20 µs of CPU per exec that other work could use. */
#define SPIN_NS_DEFAULT 0ULL

/* T_PARKED (warn): an exec's first notification was handed without its record
 * (not committed yet); the record that comes next is that exec's */
enum { T_EMPTY = 0, T_RECORD = 1, T_JUDGING = 2, T_ALLOWED = 3, T_PARKED = 4 };
/* hints for Python: why an event was handed over */
enum { H_FIRST = 1, H_NO_RECORD = 2, H_DENIED = 3, H_UID = 4, H_ALL = 5 };
enum {
	C_PERM,	     /* permission events read */
	C_FAST,	     /* allowed: outside the scope */
	C_FOLLOW,    /* allowed: ELF interpreter of an allowed exec */
	C_CACHED,    /* allowed: verdict cache */
	C_HANDED,    /* handed to Python */
	C_DEADLINE,  /* answered here at the deadline */
	C_FULL,	     /* answered here: Python's queue full */
	C_RECORDS,   /* ring-buffer records read */
	C_REC_DROP,  /* records Python never got (its queue full) */
	C_TURNS,     /* turns of this thread's loop (at least one per LAZY_MS): its
		      * heartbeat, which the daemon's watchdog reads through Python */
	C_NOTES,     /* warn: notifications closed unjudged (the records judge) */
	C_MAX,
};

struct task {
	__u32 tgid;
	__u32 state;
	__u64 key;
	__u64 when;
	__u32 seq; /* exec_state.seq of the exec this slot's state is about */
	__u32 _pad;
};

struct pending {
	__u64 id;
	__u64 deadline;
	__u64 key;
	__s32 fd;
	__u32 pid;
	__u64 mask;
	__u32 hint;
	__u32 rseq; /* records queued for Python when this event was handed */
	__u8 used, answered, by_deadline, popped;
};

struct handed { /* what Python pops (ctypes mirrors it) */
	__u64 id;
	__u64 mask;
	__s32 fd;
	__u32 pid;
	__u32 hint;
	/* records queued for Python before this event was handed (mod 2^32): a
	 * record Python pops later than that came after the event (a late one) */
	__u32 rseq;
};

struct rec {
	struct rec *next;
	__u32 len;
	unsigned char data[];
};

struct ag_fan {
	int fan_fd, guarded_fd, denied_fd, notify_fd, ctl[2];
	int deadline_deny;
	int notify_only; /* a notification group (warn): nothing to answer, only to sort */
	__u64 deadline_ns, cache_ttl_ns, spin_ns;
	volatile int trace_all, uid_scope, hand_all, any_denied;
	__u32 npending; /* used entries of pend[] */
	int wake_py;	 /* an out-of-scope exec was let through: Python wants its record now */
	struct ring_buffer *rb;
	pthread_t thr;
	int running;
	pthread_mutex_t mu;
	struct pending pend[PENDING_MAX];
	__u32 hq[PENDING_MAX]; /* FIFO of pend indexes not popped by Python */
	__u32 hq_head, hq_len;
	__u64 seq;
	struct rec *qhead, *qtail;
	__u32 qlen, since_notify;
	__u32 queued; /* records ever queued for Python (wraps) */
	size_t qbytes, qmax; /* bytes of records waiting for Python, and their bound */
	struct task *tasks;
	__u64 *cache_key, *cache_exp;
	__u64 cnt[C_MAX];
	int exec_state_fd;  /* exec.bpf.c's `exec_state` map, -1: none (older object) */
	int warn_by_records; /* warn: AG_DONE records say which execs ran */
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static __u64 fnv(__u64 h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

static void respond(struct ag_fan *h, int fd, int allow)
{
	struct fan_response r = {fd, allow ? FAN_ALLOW : FAN_DENY};
	ssize_t n;

	if (h->notify_only)
		return;
	do
		n = write(h->fan_fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	/* ENOENT: the kernel no longer waits (the task died); nothing to do. */
}

static void notify(struct ag_fan *h)
{
	__u64 one = 1;
	ssize_t n = write(h->notify_fd, &one, sizeof(one));

	(void)n; /* EAGAIN: the counter is saturated, Python is woken anyway */
	h->since_notify = 0;
}

static struct task *task_slot(struct ag_fan *h, __u32 tgid)
{
	return &h->tasks[(tgid * 2654435761u) & (TASK_SLOTS - 1)];
}

/* lock held */
static void cache_put(struct ag_fan *h, __u64 key, __u64 now)
{
	__u32 i = key & (CACHE_SLOTS - 1);

	h->cache_key[i] = key;
	h->cache_exp[i] = now + h->cache_ttl_ns;
}

static int cache_hit(struct ag_fan *h, __u64 key, __u64 now)
{
	__u32 i = key & (CACHE_SLOTS - 1);

	return key && h->cache_key[i] == key && h->cache_exp[i] > now;
}

/* The ring-buffer callback (this thread, lock not held): note the exec for the
 * permission event that follows, and queue a copy for Python. */
static int on_record(void *ctx, void *data, size_t size)
{
	struct ag_fan *h = ctx;
	const struct ag_hdr *hdr = data;
	struct rec *r;

	if (size < sizeof(*hdr))
		return 0;
	pthread_mutex_lock(&h->mu);
	h->cnt[C_RECORDS]++;
	if (hdr->type == AG_EXEC && size >= offsetof(struct ag_exec, args)) {
		const struct ag_exec *e = data;
		struct task *t = task_slot(h, hdr->tgid);
		size_t nlen = strnlen(e->filename, AG_FILENAME_LEN);
		size_t alen = e->args_size;
		__u64 k = 0xcbf29ce484222325ULL;

		if (alen > size - offsetof(struct ag_exec, args))
			alen = size - offsetof(struct ag_exec, args);
		k = fnv(k, &hdr->uid, sizeof(hdr->uid));
		k = fnv(k, e->filename, nlen);
		k = fnv(k, "\0", 1);
		k = fnv(k, &e->argc, sizeof(e->argc));
		k = fnv(k, e->args, alen);
		k = fnv(k, &e->flags, sizeof(e->flags));
		for (int i = 0; i < 3; i++) {
			k = fnv(k, &e->fds[i].kind, sizeof(e->fds[i].kind));
			k = fnv(k, &e->fds[i].family, sizeof(e->fds[i].family));
		}
		if (h->notify_only && t->tgid == hdr->tgid && t->state == T_PARKED) {
			/* the parked exec's late record (Python pairs them by queue
			 * order): its later opens (the ELF loader) are follow-ups,
			 * not a new exec with this record */
			t->state = T_JUDGING;
		} else {
			t->tgid = hdr->tgid;
			t->state = (e->flags & AG_F_KILLED) ? T_EMPTY : T_RECORD;
			t->key = k;
		}
		t->when = now_ns();
	} else if (hdr->type == AG_DONE) {
		h->wake_py = 1; /* warn judges the exec from it: hand it to Python now */
	} else if (hdr->type == AG_EXIT) {
		struct task *t = task_slot(h, hdr->tgid);

		/* (warn: a notification may still come for this task's exec, read
		 * after it exited; its record must still be found then) */
		if (t->tgid == hdr->tgid && !(h->notify_only && t->state != T_EMPTY))
			t->state = T_EMPTY;
	}
	if (h->qbytes + size > h->qmax) {
		h->cnt[C_REC_DROP]++;
	} else if ((r = malloc(sizeof(*r) + size))) {
		r->next = NULL;
		r->len = (__u32)size;
		memcpy(r->data, data, size);
		if (h->qtail)
			h->qtail->next = r;
		else
			h->qhead = r;
		h->qtail = r;
		h->qlen++;
		h->queued++;
		h->qbytes += size;
		if (++h->since_notify >= NOTIFY_BACKLOG)
			notify(h);
	} else {
		h->cnt[C_REC_DROP]++;
	}
	pthread_mutex_unlock(&h->mu);
	return 0;
}

/* lock held: give the event to Python, or answer it here when there is no room */
static void hand(struct ag_fan *h, int fd, __u32 pid, __u64 mask, __u32 hint, __u64 key,
		 __u64 now)
{
	for (__u32 n = 0; n < PENDING_MAX; n++) {
		__u32 i = (__u32)((h->seq + n) % PENDING_MAX);
		struct pending *p = &h->pend[i];

		if (p->used)
			continue;
		h->seq += n + 1;
		memset(p, 0, sizeof(*p));
		p->used = 1;
		h->npending++;
		p->id = (h->seq << 16) | i;
		p->deadline = now + h->deadline_ns;
		p->key = key;
		p->fd = fd;
		p->pid = pid;
		p->mask = mask;
		p->hint = hint;
		p->rseq = h->queued;
		h->hq[(h->hq_head + h->hq_len) % PENDING_MAX] = i;
		h->hq_len++;
		h->cnt[C_HANDED]++;
		notify(h);
		return;
	}
	h->cnt[C_FULL]++;
	respond(h, fd, !h->deadline_deny);
	close(fd);
}

static int in_map(int map_fd, __u32 tgid)
{
	__u32 v;

	return map_fd >= 0 && bpf_map_lookup_elem(map_fd, &tgid, &v) == 0;
}

/* The kernel's count of this task's execve calls (0: none seen), read while
 * the task waits in the exec the event is about. */
static __u32 exec_seq(struct ag_fan *h, __u32 tgid)
{
	struct ag_exec_state v;

	if (h->exec_state_fd < 0 || bpf_map_lookup_elem(h->exec_state_fd, &tgid, &v) != 0)
		return 0;
	return v.seq;
}

/* Is the task still inside the execve allowed as t->seq? The follow-up window
 * of an exec is bounded by the kernel's own events: it ends at the task's next
 * execve call (seq changes: its record may be late or lost, its event is not
 * a follow-up) or when the exec completed (sched_process_exec sets done after
 * the exec's last open). Without the map, the time bound alone (FOLLOW_NS). */
static int same_exec(struct ag_fan *h, const struct task *t, __u32 tgid)
{
	struct ag_exec_state v;

	if (h->exec_state_fd < 0)
		return 1;
	if (bpf_map_lookup_elem(h->exec_state_fd, &tgid, &v) != 0)
		return 0;
	return t->seq && v.seq == t->seq && !v.done;
}

/* warn only: a notification is read after its exec went on, and a short
 * program may have exited by then, its `guarded` entry deleted at exit. Its
 * exec record (written only for guarded tasks) says it was in scope. */
static int exited_in_scope(struct ag_fan *h, __u32 pid, __u64 now, int *drained)
{
	struct task *t;
	int found;

	if (!h->notify_only || !h->rb)
		return 0;
	if (!*drained) {
		ring_buffer__consume(h->rb);
		*drained = 1;
	}
	pthread_mutex_lock(&h->mu);
	t = task_slot(h, pid);
	found = t->tgid == pid && t->state != T_EMPTY && now - t->when < EXITED_NS;
	pthread_mutex_unlock(&h->mu);
	return found;
}

/* enforce, `sessions` scope: the task's own state says it is in scope, so the
 * `guarded` map lookup (a bpf() system call, two per exec) can be skipped: an
 * exec record (written only for tasks in scope) waits for this event, or this
 * is the follow-up of an exec allowed here. Only ever sends an event to the
 * judged path instead of the fast path, never the other way. (Warn and the uid
 * scope keep their own paths: exited_in_scope, H_UID.) */
static int recorded_in_scope(struct ag_fan *h, __u32 pid, __u64 now, int *drained)
{
	struct task *t;
	int found;

	if (h->notify_only || h->uid_scope || !h->rb)
		return 0;
	if (!*drained) {
		ring_buffer__consume(h->rb);
		*drained = 1;
	}
	pthread_mutex_lock(&h->mu);
	t = task_slot(h, pid);
	found = t->tgid == pid && (t->state == T_RECORD ||
				   (t->state == T_ALLOWED && now - t->when < FOLLOW_NS));
	pthread_mutex_unlock(&h->mu);
	return found;
}

/* 1 when an exec was allowed here (its ELF interpreter's open should follow) */
static int on_perm(struct ag_fan *h, int fd, __u32 pid, __u64 mask, int *drained)
{
	__u64 now = now_ns();
	struct task *t;

	h->cnt[C_PERM]++; /* this thread only writes it; Python reads a snapshot */
	if (h->warn_by_records) {
		/* warn: a notification is read after its exec went on, so it cannot
		 * be told apart from the task's next exec; the ring buffer's
		 * AG_DONE records say which execs ran, in order, and Python judges
		 * those. Wake it for the records this exec wrote. */
		h->cnt[C_NOTES]++;
		close(fd);
		h->wake_py = 1;
		return 0;
	}
	if (h->hand_all) {
		pthread_mutex_lock(&h->mu);
		hand(h, fd, pid, mask, H_ALL, 0, now);
		pthread_mutex_unlock(&h->mu);
		return 0;
	}
	if (h->any_denied && in_map(h->denied_fd, pid)) {
		pthread_mutex_lock(&h->mu);
		hand(h, fd, pid, mask, H_DENIED, 0, now);
		pthread_mutex_unlock(&h->mu);
		return 0;
	}
	if (!h->trace_all && !recorded_in_scope(h, pid, now, drained) &&
	    !in_map(h->guarded_fd, pid) && !exited_in_scope(h, pid, now, drained)) {
		if (h->uid_scope) {
			pthread_mutex_lock(&h->mu);
			hand(h, fd, pid, mask, H_UID, 0, now);
			pthread_mutex_unlock(&h->mu);
			return 0;
		}
		h->cnt[C_FAST]++;
		respond(h, fd, 1);
		close(fd);
		/* Its record (when traced: scope `all`/`group`, or a process the daemon
		 * is about to watch) may be what puts the next exec in scope: hand it
		 * to Python now, as the Python reader did after every wake. */
		h->wake_py = 1;
		return 0;
	}
	/* In scope: the execve record was written before this event was queued. */
	if (!*drained && h->rb) {
		ring_buffer__consume(h->rb);
		*drained = 1;
	}
	t = task_slot(h, pid);
	if (h->rb && !(t->tgid == pid && t->state == T_RECORD)) {
		/* drained before this event's record was committed (a later read of
		 * the same batch, another CPU): once more */
		ring_buffer__consume(h->rb);
	}
	pthread_mutex_lock(&h->mu);
	if (t->tgid == pid && t->state == T_RECORD) {
		struct stat st;
		__u64 key = t->key;

		if (fstat(fd, &st) == 0) {
			key = fnv(key, &st.st_dev, sizeof(st.st_dev));
			key = fnv(key, &st.st_ino, sizeof(st.st_ino));
			key = fnv(key, &st.st_mtim, sizeof(st.st_mtim));
			key = fnv(key, &st.st_ctim, sizeof(st.st_ctim));
		} else {
			key = 0; /* never cached */
		}
		t->seq = exec_seq(h, pid);
		if (cache_hit(h, key, now)) {
			t->state = T_ALLOWED;
			t->when = now;
			h->cnt[C_CACHED]++;
			pthread_mutex_unlock(&h->mu);
			respond(h, fd, 1);
			close(fd);
			return 1;
		}
		t->state = T_JUDGING;
		t->when = now;
		hand(h, fd, pid, mask, H_FIRST, key, now);
	} else if (t->tgid == pid && now - t->when < FOLLOW_NS &&
		   (t->state == T_ALLOWED || (h->notify_only && t->state == T_JUDGING)) &&
		   (h->notify_only || same_exec(h, t, pid))) {
		/* (a notification's exec goes on while Python judges the first open)
		 * Follow-ups of one execve: a script's interpreter, then its ELF
		 * interpreter; all come within the window, before any new record. */
		h->cnt[C_FOLLOW]++;
		pthread_mutex_unlock(&h->mu);
		respond(h, fd, 1);
		close(fd);
		return 0;
	} else {
		if (h->notify_only) {
			t->tgid = pid;
			t->state = T_PARKED;
			t->when = now;
		}
		hand(h, fd, pid, mask, H_NO_RECORD, 0, now);
	}
	pthread_mutex_unlock(&h->mu);
	return 0;
}

/* Every event queued now. Returns how many execs were allowed (see SPIN_NS),
 * -1 when nothing was read. */
static int read_fan(struct ag_fan *h)
{
	_Alignas(8) char buf[64 * sizeof(struct fan_meta)];
	int drained = 0, allowed = 0, got = 0;

	for (;;) {
		ssize_t n = read(h->fan_fd, buf, sizeof(buf));
		int last = 0;

		if (n <= 0)
			return got ? allowed : -1; /* EAGAIN (non-blocking group), or closed */
		got = 1;
		/* A read that left room for another event emptied the queue: no
		 * second read just to be told EAGAIN (an event queued since then
		 * makes the next poll return at once). */
		if ((size_t)n + 256 <= sizeof(buf))
			last = 1;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct fan_meta) <= n;) {
			struct fan_meta *m = (struct fan_meta *)(buf + off);

			if (m->vers != FANOTIFY_METADATA_VERSION || m->event_len < sizeof(*m))
				return allowed;
			off += m->event_len;
			if (m->fd < 0)
				continue; /* FAN_Q_OVERFLOW: no event to answer */
			if (!(m->mask & (FAN_OPEN_EXEC_PERM | FAN_OPEN_EXEC))) {
				close(m->fd);
				continue;
			}
			allowed += on_perm(h, m->fd, (__u32)m->pid, m->mask, &drained);
		}
		if (last)
			return allowed;
	}
}

/* ms until the next deadline (at most LAZY_MS); answers those that passed */
static int expire(struct ag_fan *h)
{
	__u64 now = now_ns(), next = now + LAZY_MS * 1000000ULL;

	if (h->notify_only)
		return LAZY_MS; /* nothing waits on a notification */
	pthread_mutex_lock(&h->mu);
	for (__u32 i = 0; i < PENDING_MAX && h->npending; i++) {
		struct pending *p = &h->pend[i];

		if (!p->used || p->answered)
			continue;
		if (p->deadline <= now) {
			respond(h, p->fd, !h->deadline_deny);
			p->answered = 1;
			p->by_deadline = 1;
			h->cnt[C_DEADLINE]++;
			if (!h->deadline_deny) {
				struct task *t = task_slot(h, p->pid);

				if (t->tgid == p->pid && t->state == T_JUDGING) {
					t->state = T_ALLOWED;
					t->when = now;
				}
			}
		} else if (p->deadline < next) {
			next = p->deadline;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return (int)((next - now) / 1000000ULL) + 1;
}

/* Exec'ing tasks sleep until this thread answers: let it run before the
 * process's other threads (the Python reader, decide's pool) when both are
 * runnable. Real-time process (chrt): one priority above; else nice -10
 * (root). Best effort: without the right, it runs at the process's level. */
static void raise_priority(void)
{
	struct sched_param sp;
	int policy;

	if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0)
		return;
	if (policy == SCHED_FIFO || policy == SCHED_RR) {
		if (sp.sched_priority < sched_get_priority_max(policy)) {
			sp.sched_priority++;
			pthread_setschedparam(pthread_self(), policy, &sp);
		}
		return;
	}
	setpriority(PRIO_PROCESS, (id_t)gettid(), -10);
}

static void *loop(void *arg)
{
	struct ag_fan *h = arg;
	struct pollfd pfd[3] = {
		{.fd = h->ctl[0], .events = POLLIN},
		{.fd = h->fan_fd, .events = POLLIN},
		{.fd = h->rb ? ring_buffer__epoll_fd(h->rb) : -1, .events = POLLIN},
	};

	raise_priority();
	for (;;) {
		int timeout = expire(h);

		h->cnt[C_TURNS]++; /* this thread only writes it */

		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if ((pfd[1].revents & POLLIN) && read_fan(h) > 0 && h->spin_ns) {
			__u64 end = now_ns() + h->spin_ns;

			while (now_ns() < end && read_fan(h) < 0)
				;
		}
		if (pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (h->rb)
			ring_buffer__consume(h->rb);
		if (h->wake_py) {
			h->wake_py = 0;
			pthread_mutex_lock(&h->mu);
			if (h->qlen)
				notify(h);
			pthread_mutex_unlock(&h->mu);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ the API (ctypes) */

struct ag_fan *ag_fan_new(int fan_fd, int rb_map_fd, int guarded_fd, int denied_fd,
			  int notify_fd, __u32 deadline_ms, int deadline_deny, __u32 cache_ttl_ms,
			  __u32 queue_max_bytes, int notify_only)
{
	struct ag_fan *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->fan_fd = fan_fd;
	h->guarded_fd = guarded_fd;
	h->denied_fd = denied_fd;
	h->notify_fd = notify_fd;
	h->deadline_ns = (__u64)(deadline_ms ? deadline_ms : 1) * 1000000ULL;
	h->deadline_deny = deadline_deny;
	h->cache_ttl_ns = (__u64)cache_ttl_ms * 1000000ULL;
	h->qmax = queue_max_bytes ? queue_max_bytes : (32u << 20);
	h->notify_only = notify_only;
	h->spin_ns = SPIN_NS_DEFAULT;
	if (getenv("ATTYGUARD_FANSWER_SPIN_US")) /* for bench/exec_loop.py's comparisons */
		h->spin_ns = strtoull(getenv("ATTYGUARD_FANSWER_SPIN_US"), NULL, 10) * 1000ULL;
	h->ctl[0] = h->ctl[1] = -1;
	h->exec_state_fd = -1;
	pthread_mutex_init(&h->mu, NULL);
	h->tasks = calloc(TASK_SLOTS, sizeof(*h->tasks));
	h->cache_key = calloc(CACHE_SLOTS, sizeof(__u64));
	h->cache_exp = calloc(CACHE_SLOTS, sizeof(__u64));
	if (!h->tasks || !h->cache_key || !h->cache_exp || pipe2(h->ctl, O_CLOEXEC | O_NONBLOCK)) {
		free(h->tasks);
		free(h->cache_key);
		free(h->cache_exp);
		free(h);
		return NULL;
	}
	if (rb_map_fd >= 0) {
		h->rb = ring_buffer__new(rb_map_fd, on_record, h, NULL);
		if (!h->rb) {
			close(h->ctl[0]);
			close(h->ctl[1]);
			free(h->tasks);
			free(h->cache_key);
			free(h->cache_exp);
			free(h);
			return NULL;
		}
	}
	return h;
}

int ag_fan_start(struct ag_fan *h)
{
	sigset_t all, old;
	int rc;

	/* The thread takes no signal: Python's handlers run on its main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&h->thr, NULL, loop, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		h->running = 1;
	return -rc;
}

void ag_fan_set(struct ag_fan *h, int trace_all, int uid_scope, int hand_all, int any_denied)
{
	h->trace_all = trace_all;
	h->uid_scope = uid_scope;
	h->hand_all = hand_all;
	h->any_denied = any_denied; /* no denied tree yet: skip that map lookup */
}

/* Before ag_fan_start: exec.bpf.c's `exec_state` map (-1: none), and whether
 * warn's execs are judged from their AG_DONE records (the object writes them). */
void ag_fan_set_exec_state(struct ag_fan *h, int exec_state_fd, int warn_by_records)
{
	h->exec_state_fd = exec_state_fd;
	h->warn_by_records = h->notify_only && warn_by_records;
}

/* Records Python has not read: packed as [u32 length][bytes]…; returns bytes used. */
int ag_fan_pop_records(struct ag_fan *h, unsigned char *buf, int cap)
{
	int used = 0;

	pthread_mutex_lock(&h->mu);
	while (h->qhead && used + 4 + (int)h->qhead->len <= cap) {
		struct rec *r = h->qhead;

		memcpy(buf + used, &r->len, 4);
		memcpy(buf + used + 4, r->data, r->len);
		used += 4 + (int)r->len;
		h->qhead = r->next;
		if (!h->qhead)
			h->qtail = NULL;
		h->qlen--;
		h->qbytes -= r->len;
		free(r);
	}
	pthread_mutex_unlock(&h->mu);
	return used;
}

/* The next event handed to Python: 1 (filled), 0 none. */
int ag_fan_pop_perm(struct ag_fan *h, struct handed *out)
{
	int got = 0;

	pthread_mutex_lock(&h->mu);
	while (h->hq_len && !got) {
		struct pending *p = &h->pend[h->hq[h->hq_head]];

		h->hq_head = (h->hq_head + 1) % PENDING_MAX;
		h->hq_len--;
		if (!p->used)
			continue;
		p->popped = 1;
		out->id = p->id;
		out->mask = p->mask;
		out->fd = p->fd;
		out->pid = p->pid;
		out->hint = p->hint;
		out->rseq = p->rseq;
		got = 1;
	}
	pthread_mutex_unlock(&h->mu);
	return got;
}

/* Python's answer (once per handed event; releases it and closes its fd).
 * 1: answered now; 2: answered here at the deadline already; 0: unknown id. */
int ag_fan_answer(struct ag_fan *h, __u64 id, int allow, int cache)
{
	struct pending *p = &h->pend[id & 0xffff & (PENDING_MAX - 1)];
	int rc;

	pthread_mutex_lock(&h->mu);
	if (!p->used || p->id != id) {
		pthread_mutex_unlock(&h->mu);
		return 0;
	}
	if (p->answered) {
		rc = p->by_deadline ? 2 : 0;
	} else {
		__u64 now = now_ns();
		struct task *t = task_slot(h, p->pid);

		respond(h, p->fd, allow);
		rc = 1;
		if (t->tgid == p->pid && t->state == T_JUDGING) {
			t->state = allow ? T_ALLOWED : T_EMPTY;
			t->when = now;
		}
		if (allow && cache && p->key && p->hint == H_FIRST)
			cache_put(h, p->key, now);
	}
	close(p->fd);
	p->used = 0;
	h->npending--;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void ag_fan_cache_clear(struct ag_fan *h)
{
	pthread_mutex_lock(&h->mu);
	memset(h->cache_key, 0, CACHE_SLOTS * sizeof(__u64));
	pthread_mutex_unlock(&h->mu);
}

int ag_fan_counters(struct ag_fan *h, __u64 *out, int n)
{
	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < n && i < C_MAX; i++)
		out[i] = h->cnt[i];
	pthread_mutex_unlock(&h->mu);
	return C_MAX;
}

/* Stop the thread; allow every event still waiting; free the ring buffer.
 * The handle stays valid (answers become no-ops) until ag_fan_free. */
void ag_fan_stop(struct ag_fan *h)
{
	if (h->running) {
		ssize_t n = write(h->ctl[1], "x", 1);

		(void)n;
		pthread_join(h->thr, NULL);
		h->running = 0;
	}
	pthread_mutex_lock(&h->mu);
	for (__u32 i = 0; i < PENDING_MAX; i++) {
		struct pending *p = &h->pend[i];

		if (!p->used)
			continue;
		if (!p->answered)
			respond(h, p->fd, 1);
		close(p->fd);
		p->used = 0;
	}
	h->npending = 0;
	h->hq_len = 0;
	if (h->rb) {
		ring_buffer__free(h->rb);
		h->rb = NULL;
	}
	pthread_mutex_unlock(&h->mu);
}

void ag_fan_free(struct ag_fan *h)
{
	if (!h)
		return;
	ag_fan_stop(h);
	while (h->qhead) {
		struct rec *r = h->qhead;

		h->qhead = r->next;
		free(r);
	}
	close(h->ctl[0]);
	close(h->ctl[1]);
	free(h->tasks);
	free(h->cache_key);
	free(h->cache_exp);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
