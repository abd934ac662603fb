/* SPDX-License-Identifier: MIT */
/*
 * torture-secret: threads allocate and free secret blocks of mixed sizes, and read a
 * WOF_LAZY_SECRET, while processes fork by every path (fork, _Fork, syscall(SYS_fork), clone)
 * at random instants, and children keep allocating (and forking) in turn. Proves, under
 * interleavings nobody wrote down, that the allocator never hands one block to two owners, not
 * even across a fork that hit it mid-operation; that every block held at fork reads zero in the
 * child before the child runs any wof code; that no process reads a lazy secret made by
 * another; and that nothing hangs.
 *
 *   usage: torture-secret [threads [seconds [seed]]]       (defaults 4 20 random)
 *
 * Ownership ledger: a table indexed by block address, where each owner CASes its tag in after
 * wof_secret_alloc() returns and out before it calls wof_secret_free(); a CAS that finds the
 * entry taken is a block owned twice. The table is private memory, so a child inherits it as
 * its allocator's bookkeeping was at the same instant (claimed after the block's bit, released
 * before it): entries of threads the child does not have stay taken, as their blocks stay
 * allocated there. The counters that the first process reports are in MAP_SHARED memory.
 *
 * Children made by fork() run threads (unless th_torture_kinds says they may not); children
 * made by _Fork, SYS_fork or clone run the workload on their only thread and use only
 * async-signal-safe functions. Prints one summary line; exit 0 only if every counter of
 * trouble is 0.
 */
#include "wof-test.h"

#include <string.h>

#define MAX_THREADS 16
#define WINDOW 32         /* blocks a thread holds at most */
#define MAX_DEPTH 3       /* generations of children below the first process */
#define OWNERS (1u << 18) /* ledger entries: distinct block addresses */
#define WRITE_MAX 256     /* bytes of each block a holder fills */

/* Shared by every process of the run. */
struct counters {
	unsigned long procs, forks[TH_FORK_KINDS];
	unsigned long allocs, frees, adopted, lazy_reads;
	unsigned long double_owned; /* a block handed to a second owner */
	unsigned long clobbered;    /* a held block's bytes changed by someone else */
	unsigned long not_zero;     /* a new block, or in a child a block held at fork, not zero */
	unsigned long stale;        /* a lazy secret made by another process */
	unsigned long no_memory;    /* wof_secret_alloc failed */
	unsigned long hangs, bad_exits, ledger_full;
};

static struct counters *shared;

static void count(unsigned long *counter)
{
	/* Relaxed: the counters are summed after every process has been waited for. */
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

/* The ownership ledger (private memory; see the top). who = size << 32 | tag; 0 = free. */
struct owner {
	uintptr_t addr; /* atomic; set once */
	uint64_t who;   /* atomic */
};
static struct owner *owners;

static struct owner *owner_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	size_t i = (size_t)((a >> 4) * 0x9e3779b97f4a7c15u >> 40) % OWNERS;

	for (size_t n = 0; n < OWNERS; n++, i = (i + 1) % OWNERS) {
		/* Relaxed: a slot's address is set once; `who` is what the CASes below decide. */
		uintptr_t seen = __atomic_load_n(&owners[i].addr, __ATOMIC_RELAXED);
		if (seen == 0 && __atomic_compare_exchange_n(&owners[i].addr, &seen, a, false,
		                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return &owners[i];
		if (seen == a)
			return &owners[i];
	}
	return NULL;
}

static unsigned me;                   /* this process's number */
static int depth;                     /* 0 in the first process */
static enum th_fork_kind made_by;     /* how this process was made (the first: as by fork) */
static unsigned nthreads = 4, seconds = 20, paths;
static unsigned long long seed;
static bool child_threads;
static int stop;                      /* atomic: the workers of this process stop */

/* A lazy secret that says which process made it. */
struct stamp {
	unsigned proc;
	pid_t pid;
};

static int make_stamp(struct stamp *s)
{
	if (s->proc != 0 || s->pid != 0)
		count(&shared->not_zero);
	s->proc = me + 1;
	s->pid = getpid();
	return 0;
}

WOF_LAZY_SECRET(struct stamp, stamp, make_stamp);
static struct stamp *stamp_seen; /* atomic: where this process's stamp is, once made */

static size_t pick_size(uint64_t *rng)
{
	uint64_t r = th_rnd(rng);
	return r % 8 == 0 ? 2049 + (size_t)(r >> 8) % 40000 : 1 + (size_t)(r >> 8) % 2048;
}

struct worker {
	pthread_t self;
	uint64_t rng;
	uint32_t tag; /* unique per thread of the whole run, never 0 */
	unsigned char *live[WINDOW];
	size_t size[WINDOW];
};

static void drop(struct worker *w, int k)
{
	unsigned char *p = w->live[k];
	size_t n = w->size[k] < WRITE_MAX ? w->size[k] : WRITE_MAX;
	uint64_t mine = (uint64_t)w->size[k] << 32 | w->tag;
	struct owner *o = owner_of(p);

	if (!th_all_bytes(p, n, (unsigned char)w->tag))
		count(&shared->clobbered);
	if (o && !__atomic_compare_exchange_n(&o->who, &mine, 0, false, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED))
		count(&shared->clobbered);
	wof_secret_free(p);
	count(&shared->frees);
	w->live[k] = NULL;
}

static void one_op(struct worker *w)
{
	int k = (int)(th_rnd(&w->rng) % WINDOW);

	if (th_rnd(&w->rng) % 16 == 0) {
		struct stamp *s = stamp();
		count(&shared->lazy_reads);
		if (!s || s->proc != me + 1 || s->pid != getpid())
			count(&shared->stale);
		else
			__atomic_store_n(&stamp_seen, s, __ATOMIC_RELAXED);
		return;
	}
	if (w->live[k]) {
		drop(w, k);
		return;
	}
	size_t size = pick_size(&w->rng);
	unsigned char *p = wof_secret_alloc(size);
	if (!p) {
		count(&shared->no_memory);
		return;
	}
	count(&shared->allocs);
	size_t n = size < WRITE_MAX ? size : WRITE_MAX;
	if (!th_all_bytes(p, n, 0) || p[size - 1] != 0)
		count(&shared->not_zero);
	struct owner *o = owner_of(p);
	uint64_t none = 0;
	if (!o)
		count(&shared->ledger_full);
	else if (!__atomic_compare_exchange_n(&o->who, &none, (uint64_t)size << 32 | w->tag,
	                                      false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		count(&shared->double_owned);
	memset(p, (unsigned char)w->tag, n);
	w->live[k] = p;
	w->size[k] = size;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!th_get(&stop))
		one_op(w);
	return NULL;
}

/*
 * First thing in a child, before any wof call: every block the ledger says was held at fork,
 * and the parent's lazy secret, read zero. Async-signal-safe.
 */
static void check_inherited(void)
{
	for (size_t i = 0; i < OWNERS; i++) {
		uint64_t who = __atomic_load_n(&owners[i].who, __ATOMIC_RELAXED);
		const unsigned char *p = (const unsigned char *)owners[i].addr;
		size_t size = (size_t)(who >> 32);
		size_t n = size < WRITE_MAX ? size : WRITE_MAX;
		if (who && (!th_all_bytes(p, n, 0) || p[size - 1] != 0))
			count(&shared->not_zero);
	}
	struct stamp *s = __atomic_load_n(&stamp_seen, __ATOMIC_RELAXED);
	if (s && (s->proc != 0 || s->pid != 0))
		count(&shared->not_zero);
}

/* A child takes over blocks that threads it does not have held at fork, to free them later:
 * they must still be allocated, and wof_secret_free() must know them. */
static void adopt_inherited(struct worker *w)
{
	int k = 0;

	for (size_t i = 0; i < OWNERS && k < WINDOW; i++) {
		uint64_t who = __atomic_load_n(&owners[i].who, __ATOMIC_RELAXED);
		size_t size = (size_t)(who >> 32);
		if (who == 0 || !__atomic_compare_exchange_n(&owners[i].who, &who,
		                                              (uint64_t)size << 32 | w->tag, false,
		                                              __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			continue;
		w->live[k] = (unsigned char *)owners[i].addr;
		w->size[k] = size;
		memset(w->live[k], (unsigned char)w->tag, size < WRITE_MAX ? size : WRITE_MAX);
		count(&shared->adopted);
		k++;
	}
}

static void run_process(double end, bool threaded);

/* Make one child by an allowed path, let it work and fork in turn, and wait for it. */
static void spawn(uint64_t *rng, double end, bool threaded)
{
	enum th_fork_kind kind = th_torture_pick(paths, made_by, rng);
	if (kind == TH_FORK_KINDS)
		return;
	double child_end = th_now() + (double)(th_rnd(rng) % 150 + 20) / 1000;
	pid_t pid = th_fork(kind);
	if (pid == 0) {
		check_inherited();
		made_by = kind;
		depth++;
		me = (unsigned)__atomic_add_fetch(&shared->procs, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&stamp_seen, NULL, __ATOMIC_RELAXED);
		run_process(child_end < end ? child_end : end,
		            threaded && kind == TH_FORK && child_threads);
		_exit(0);
	}
	if (pid < 0)
		return;
	count(&shared->forks[kind]);
	/* A child's deadline covers its subtree: each level below may take its own. */
	int code = th_wait(pid, TH_DEADLINE_S * (MAX_DEPTH - depth + 1));
	if (code == TH_HUNG)
		count(&shared->hangs);
	else if (code != 0)
		count(&shared->bad_exits);
}

static void run_process(double end, bool threaded)
{
	/* Inherited blocks stay where the ledger has them: this process has its own workers. */
	static struct worker workers[MAX_THREADS + 1];
	unsigned n = threaded ? nthreads : 0;
	uint64_t rng = seed * 0x9e3779b97f4a7c15u + me * 0x2545f4914f6cdd1du + 1;

	th_set(&stop, 0);
	for (unsigned i = 0; i <= MAX_THREADS; i++)
		workers[i] = (struct worker){ .rng = rng + i * 7919 + 1,
			                      .tag = me * (MAX_THREADS + 1) + i + 1 };
	/* This thread forks: between bursts of its own operations (single-threaded), or between
	 * naps while the workers churn (threaded), so forks land at every instant. It takes over
	 * inherited blocks before the workers start, which would take entries of their own. */
	struct worker *w = &workers[MAX_THREADS];
	if (depth > 0)
		adopt_inherited(w);
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&workers[i].self, NULL, worker_main, &workers[i]) != 0)
			n = i;
	while (th_now() < end) {
		for (int k = 0; k < (n ? 4 : 50); k++)
			one_op(w);
		if (n)
			th_nap((long)(th_rnd(&rng) % 3000));
		if (depth < MAX_DEPTH && (n > 0 || th_rnd(&rng) % 8 == 0))
			spawn(&rng, end, n > 0);
	}
	th_set(&stop, 1);
	for (unsigned i = 0; i < n; i++)
		pthread_join(workers[i].self, NULL);
	for (unsigned i = 0; i <= n; i++) {
		struct worker *x = i == n ? w : &workers[i];
		for (int k = 0; k < WINDOW; k++)
			if (x->live[k])
				drop(x, k);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = (unsigned)th_arg_count(argv[1], MAX_THREADS);
	if (argc > 2)
		seconds = (unsigned)th_arg_count(argv[2], 3600);
	if (argc > 3)
		seed = strtoull(argv[3], NULL, 0);
	if (!seed)
		seed = (unsigned long long)(th_now() * 1e9) ^ ((unsigned long long)getpid() << 32);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("torture-secret: %u threads, %u s, seed %llu (rerun: torture-secret %u %u %llu)\n",
	       nthreads, seconds, seed, nthreads, seconds, seed);

	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	              -1, 0);
	owners = mmap(NULL, OWNERS * sizeof *owners, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (shared == MAP_FAILED || owners == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	paths = th_torture_kinds(&child_threads);
	me = (unsigned)__atomic_add_fetch(&shared->procs, 1, __ATOMIC_RELAXED);
	th_torture_deadline(seconds + 180, /* past every child's deadline */
	                    "torture-secret: FAILED: hang in the first process; reproduce with: "
	                    "torture-secret %u %u %llu\n", nthreads, seconds, seed);
	run_process(th_now() + seconds, true);

	struct counters c = *shared;
	unsigned long trouble = c.double_owned + c.clobbered + c.not_zero + c.stale + c.no_memory +
	                        c.hangs + c.bad_exits;
	printf("torture-secret: processes %lu, forks", c.procs);
	for (int k = 0; k < TH_FORK_KINDS; k++)
		printf(" %s=%lu", th_fork_names[k], c.forks[k]);
	printf(", allocs %lu, frees %lu (%lu inherited), lazy reads %lu, double-owned %lu, "
	       "clobbered %lu, not zero %lu, stale %lu, no memory %lu, hangs %lu, "
	       "failed processes %lu%s\n",
	       c.allocs, c.frees, c.adopted, c.lazy_reads, c.double_owned, c.clobbered, c.not_zero,
	       c.stale, c.no_memory, c.hangs, c.bad_exits, c.ledger_full ? " (ledger full)" : "");
	if (trouble) {
		printf("torture-secret: FAILED; reproduce with: torture-secret %u %u %llu\n",
		       nthreads, seconds, seed);
		return 1;
	}
	return 0;
}
