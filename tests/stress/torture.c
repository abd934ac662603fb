/* SPDX-License-Identifier: MIT */
/*
 * torture: random operations on every wof type from many threads, while processes fork by
 * every path (fork, _Fork, syscall(SYS_fork), clone), some while initialisers are in flight,
 * and children fork again. Proves, under load and interleavings nobody wrote down, that no
 * initialiser runs twice in a process, no process reads a value made elsewhere, and nothing
 * hangs.
 *
 *   usage: torture [threads [objects [seconds [seed]]]]     (defaults 4 64 10 random)
 *
 * A ledger in MAP_SHARED memory records every successful initialisation by (process, object).
 * Each process checks before it exits that every object it initialised through a wof call has
 * exactly one entry for it, and every value it read carries its own process number. Parents
 * wait for children with a deadline; a child that misses it is killed and counted as a hang,
 * with the seed that reproduces the run. Prints one summary line; exit 0 only if clean.
 *
 * Children made by fork() run the threaded workload (unless th_torture_kinds says they may
 * not start threads). Children made by _Fork, SYS_fork or clone run it on their only thread:
 * after those, glibc's own locks are not reset, so a child may only use async-signal-safe
 * functions -- which is all wof needs, and all this child does.
 */
#include <stdatomic.h>

#include "wof-test.h"

#define MAX_OBJECTS 256
#define MAX_THREADS 32
#define MAX_PROCS (1 << 18) /* ledger rows; later children exit at once */
#define MAX_DEPTH 3
/* A child's deadline covers its own subtree, whose deepest children have theirs: so it grows
 * with the levels below it, or a loaded machine passes for a hang. */
#define CHILD_DEADLINE_S(depth) (20.0 + 20 * (MAX_DEPTH - (depth)))
#define POOL 65536

enum type { T_ONCE, T_TRY, T_LOCK, T_LAZY, T_STATIC, T_CELL, T_PRIVATE, TYPES };

/* Shared by every process of the run. */
struct ledger {
	atomic_uint procs;
	atomic_ulong forks[TH_FORK_KINDS];
	atomic_ulong inits, cancels, hangs, double_inits, stale_reads, missing_inits, bad_exits;
};

static struct ledger *ledger;
/* [process][type][object]: successful initialisations in that process (shared, lazily
 * backed: only the rows of processes that ran are ever touched) */
static atomic_uchar *counts;
#define COUNT(proc, type, obj) counts[((size_t)(proc) * TYPES + (type)) * nobjects + (obj)]
static unsigned nthreads = 4, nobjects = 64, seconds = 10;
static unsigned long long seed;
static unsigned me;             /* this process's ledger row */
static int depth;               /* 0 in the first process */
static atomic_bool stop;
static atomic_uchar used[TYPES][MAX_OBJECTS]; /* objects a wof call initialised here */
static enum th_fork_kind made_by; /* how this process was made (the first: as by fork) */
static bool child_threads;      /* may children made by fork() start threads? */
static unsigned paths_allowed;

static void bump(atomic_ulong *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed); /* summed after the run */
}

/* Values: made by this process, stamped with its row; never freed (a child may hold stale
 * pointers to its parent's, which is exactly what must never be returned to it). */
struct value {
	unsigned proc;
	unsigned type;
	unsigned obj;
};
static struct value pool[POOL];
static atomic_uint pool_next;

static struct value *make(unsigned type, unsigned obj)
{
	unsigned i = atomic_fetch_add_explicit(&pool_next, 1, memory_order_relaxed);
	if (i >= POOL)
		return NULL; /* pool spent: the init "fails", which wof must also survive */
	pool[i] = (struct value){ me, type, obj };
	return &pool[i];
}

static void record_init(unsigned type, unsigned obj)
{
	atomic_fetch_add_explicit(&COUNT(me, type, obj), 1, memory_order_relaxed);
	bump(&ledger->inits);
}

static void check_value(const struct value *v, unsigned type, unsigned obj)
{
	if (v && (v->proc != me || v->type != type || v->obj != obj))
		bump(&ledger->stale_reads);
	if (v)
		atomic_store_explicit(&used[type][obj], 1, memory_order_relaxed);
}

/* ---- the objects -------------------------------------------------------------------- */

static wof_once_t onces[TYPES][MAX_OBJECTS];
static unsigned payload[TYPES][MAX_OBJECTS]; /* written by fn, read after the call returns */
static wof_once_lock_t locks[MAX_OBJECTS];
static wof_lazy_lock_t lazies[MAX_OBJECTS];

struct run_arg {
	unsigned type, obj;
	int fail;
	long nap; /* microseconds */
};

static void once_fn(void *p)
{
	struct run_arg *a = p;
	if (a->nap)
		th_nap(a->nap); /* a cancellation point, and time for forks to land mid-init */
	payload[a->type][a->obj] = me;
	record_init(a->type, a->obj);
}

static int try_fn(void *p)
{
	struct run_arg *a = p;
	if (a->nap)
		th_nap(a->nap);
	if (a->fail)
		return EAGAIN;
	payload[a->type][a->obj] = me;
	record_init(a->type, a->obj);
	return 0;
}

static void *lock_init(void *p)
{
	struct run_arg *a = p;
	if (a->nap)
		th_nap(a->nap);
	if (a->fail)
		return NULL;
	struct value *v = make(T_LOCK, a->obj);
	if (v)
		record_init(T_LOCK, a->obj);
	return v;
}

/* A thread's private locks get values from the thread: they are taken and re-made often. */
struct private_arg {
	struct value *slot;
	unsigned obj;
};

static void *private_init(void *p)
{
	struct private_arg *a = p;
	*a->slot = (struct value){ me, T_PRIVATE, a->obj };
	return a->slot;
}

static void *lazy_init(void *p)
{
	unsigned obj = (unsigned)(uintptr_t)p;
	struct value *v = make(T_LAZY, obj);
	if (v)
		record_init(T_LAZY, obj);
	return v;
}

/* Four typed lazy statics, the one type that cannot be an array. */
struct tstatic {
	unsigned proc, obj;
	char bulk[1000];
};
#define STATIC_INIT(k)                                                                            \
	static int static_init_##k(struct tstatic *s)                                             \
	{                                                                                         \
		s->proc = me;                                                                     \
		s->obj = k;                                                                       \
		record_init(T_STATIC, k);                                                         \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_STATIC(struct tstatic, static_##k, static_init_##k)
STATIC_INIT(0);
STATIC_INIT(1);
STATIC_INIT(2);
STATIC_INIT(3);
static struct tstatic *(*const statics[4])(void) = { static_0, static_1, static_2, static_3 };

/* Cells are single-threaded: each thread has its own, and counts its own inits. */
#define CELLS 8
static _Thread_local unsigned cell_inits[CELLS];
static _Thread_local unsigned cell_proc; /* the process these counts belong to */

static void *cell_init(void *p)
{
	unsigned c = (unsigned)(uintptr_t)p;
	cell_inits[c]++;
	return make(T_CELL, c);
}

#define CELL(c) WOF_LAZY_CELL_INIT(cell_init, (void *)(uintptr_t)(c))
static _Thread_local wof_lazy_cell_t cells[CELLS] = {
	CELL(0), CELL(1), CELL(2), CELL(3), CELL(4), CELL(5), CELL(6), CELL(7),
};

/* ---- one random operation ------------------------------------------------------------ */

struct worker {
	uint64_t rng;
	wof_once_lock_t priv[8]; /* private: take() needs exclusive use */
	struct value priv_value[8];
	bool live[8];
	pthread_t self;
};

static void *cancel_victim(void *p)
{
	struct run_arg *a = p;
	/* get_or_init with a slow init that will often be cancelled in its nanosleep */
	struct value *v = wof_once_lock_get_or_init(&locks[a->obj], lock_init, a);
	check_value(v, T_LOCK, a->obj);
	return NULL;
}

static void one_op(struct worker *w, bool may_thread)
{
	uint64_t r = th_rnd(&w->rng);
	unsigned obj = (unsigned)(r >> 8) % nobjects;
	struct run_arg a = { T_LOCK, obj, (r >> 40) % 3 == 0, (r >> 44) % 4 == 0 ? 20 : 0 };
	void *v;

	if (cell_proc != me) { /* first op of this thread in this process: cells start over */
		memset(cell_inits, 0, sizeof cell_inits);
		cell_proc = me;
	}
	switch ((r >> 32) % 9) {
	case 0:
		a.type = T_ONCE;
		wof_once_call(&onces[T_ONCE][obj], once_fn, &a);
		if (payload[T_ONCE][obj] != me)
			bump(&ledger->stale_reads);
		atomic_store_explicit(&used[T_ONCE][obj], 1, memory_order_relaxed);
		break;
	case 1:
		a.type = T_TRY;
		if (wof_once_try_call(&onces[T_TRY][obj], try_fn, &a) == 0) {
			if (payload[T_TRY][obj] != me)
				bump(&ledger->stale_reads);
			atomic_store_explicit(&used[T_TRY][obj], 1, memory_order_relaxed);
		}
		break;
	case 2:
		check_value(wof_once_lock_get_or_init(&locks[obj], lock_init, &a), T_LOCK, obj);
		break;
	case 3:
		v = wof_once_lock_get(&locks[obj]);
		if (v)
			check_value(v, T_LOCK, obj);
		break;
	case 4: {
		struct value *mine = wof_once_lock_get(&locks[obj]) ? NULL : make(T_LOCK, obj);
		if (mine && wof_once_lock_set(&locks[obj], mine) == 0)
			record_init(T_LOCK, obj);
		check_value(wof_once_lock_get(&locks[obj]), T_LOCK, obj);
		break;
	}
	case 5:
		check_value(wof_lazy_lock_force(&lazies[obj]), T_LAZY, obj);
		break;
	case 6: {
		unsigned k = obj % 4;
		struct tstatic *s = statics[k]();
		if (s && (s->proc != me || s->obj != k))
			bump(&ledger->stale_reads);
		if (s)
			atomic_store_explicit(&used[T_STATIC][k], 1, memory_order_relaxed);
		break;
	}
	case 7: {
		unsigned c = obj % CELLS;
		struct value *cv = wof_lazy_cell_force(&cells[c]);
		if (cv && (cv->proc != me || cv->type != T_CELL || cv->obj != c))
			bump(&ledger->stale_reads);
		if (cell_inits[c] > 1)
			bump(&ledger->double_inits);
		break;
	}
	case 8: {
		unsigned j = obj % 8;
		if ((r >> 50) % 2) {
			struct value *pv = wof_once_lock_take(&w->priv[j]);
			if (pv && (!w->live[j] || pv->proc != me))
				bump(&ledger->stale_reads);
			if (!pv && w->live[j])
				bump(&ledger->missing_inits);
			w->live[j] = false;
		} else {
			struct private_arg pa = { &w->priv_value[j], j };
			struct value *pv = wof_once_lock_get_or_init(&w->priv[j], private_init, &pa);
			if (!pv || pv->proc != me || pv != &w->priv_value[j])
				bump(&ledger->stale_reads);
			w->live[j] = pv != NULL;
		}
		break;
	}
	}

	/* Now and then: a thread cancelled inside an initialiser (threaded processes only). */
	if (may_thread && (r >> 56) % 64 == 0) {
		pthread_t victim;
		struct run_arg va = { T_LOCK, obj, 0, 200 };
		if (pthread_create(&victim, NULL, cancel_victim, &va) == 0) {
			th_nap((long)((r >> 20) % 300));
			pthread_cancel(victim);
			pthread_join(victim, NULL);
			bump(&ledger->cancels);
		}
	}
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		one_op(w, true);
	return NULL;
}

/* ---- processes ---------------------------------------------------------------------- */

static void become_child(void)
{
	/* async-signal-safe only, until we know how we were made (th_fork: PR_SET_PDEATHSIG) */
	me = atomic_fetch_add_explicit(&ledger->procs, 1, memory_order_relaxed);
	if (me >= MAX_PROCS)
		_exit(0); /* ledger full: nothing to check, nothing wrong */
	depth++;
	atomic_store_explicit(&stop, false, memory_order_relaxed);
	for (unsigned t = 0; t < TYPES; t++)
		for (unsigned i = 0; i < MAX_OBJECTS; i++)
			atomic_store_explicit(&used[t][i], 0, memory_order_relaxed);
}

/* Every object this process initialised through a wof call has exactly one ledger entry. */
static unsigned verify_process(void)
{
	unsigned bad = 0;
	for (unsigned t = 0; t < TYPES; t++) {
		for (unsigned i = 0; i < nobjects; i++) {
			unsigned n = atomic_load_explicit(&COUNT(me, t, i), memory_order_relaxed);
			if (t == T_PRIVATE || t == T_CELL)
				continue; /* re-initialised after take / per thread: checked inline */
			if (n > 1) {
				bump(&ledger->double_inits);
				bad++;
			}
			if (n == 0 && atomic_load_explicit(&used[t][i], memory_order_relaxed)) {
				bump(&ledger->missing_inits);
				bad++;
			}
		}
	}
	return bad;
}

struct child {
	pid_t pid;
	double deadline;
	enum th_fork_kind path;
};

/* Async-signal-safe diagnostics (a child made by _Fork or clone may not use stdio): one line
 * "torture: <what> pid <pid> (<path>, depth <depth>) <value>" with write(2). */
static void say(const char *what, pid_t pid, enum th_fork_kind path, long value)
{
	char line[160], num[24];
	size_t len = 0;
	const char *parts[] = { "torture: ", what, " pid ", NULL, " (", th_fork_names[path],
		                ", depth ", NULL, ") ", NULL, "\n" };
	long nums[] = { pid, depth + 1, value };
	int n = 0;

	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		const char *part = parts[i];
		if (!part) {
			long v = nums[n++];
			char *q = num + sizeof num;
			bool neg = v < 0;
			unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
			*--q = 0;
			do
				*--q = (char)('0' + u % 10);
			while (u /= 10);
			if (neg)
				*--q = '-';
			part = q;
		}
		for (; *part && len < sizeof line - 1; part++)
			line[len++] = *part;
	}
	ssize_t ignored = write(STDOUT_FILENO, line, len);
	(void)ignored;
}

/* Reap children; kill those past their deadline. wait_all: until none is left. */
static void reap(struct child *kids, unsigned *nkids, bool wait_all)
{
	while (*nkids) {
		double t = th_now();
		for (unsigned i = 0; i < *nkids;) {
			int status;
			pid_t r = waitpid(kids[i].pid, &status, WNOHANG);
			if (r == 0 && t > kids[i].deadline) {
				kill(kids[i].pid, SIGKILL);
				waitpid(kids[i].pid, &status, 0);
				bump(&ledger->hangs);
				say("hang: killed", kids[i].pid, kids[i].path, 0);
				r = kids[i].pid;
				status = 0;
			} else if (r == kids[i].pid &&
			           (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
				bump(&ledger->bad_exits);
				say("failed: status", kids[i].pid, kids[i].path, status);
			}
			if (r == kids[i].pid || (r < 0 && errno == ECHILD))
				kids[i] = kids[--*nkids];
			else
				i++;
		}
		if (!wait_all)
			return;
		if (*nkids)
			th_nap(1000);
	}
}

static void run_process(double end, bool threaded);

/*
 * Make one child by a random allowed path; it runs the workload for a while (with threads
 * only if made by fork() in a threaded process), checks itself and exits. Never returns in it.
 */
static void spawn(struct child *kids, unsigned *nkids, uint64_t *rng, bool threaded)
{
	enum th_fork_kind path = th_torture_pick(paths_allowed, made_by, rng);
	if (path == TH_FORK_KINDS)
		return;
	pid_t pid = th_fork(path);
	if (pid == 0) {
		made_by = path;
		become_child();
		double child_end = th_now() + (double)(th_rnd(rng) % 200 + 20) / 1000;
		run_process(child_end, threaded && path == TH_FORK && child_threads);
		_exit(verify_process() ? 1 : 0);
	}
	if (pid < 0)
		return;
	bump(&ledger->forks[path]);
	kids[(*nkids)++] = (struct child){ pid, th_now() + CHILD_DEADLINE_S(depth + 1), path };
}

#define MAX_KIDS 6

static void run_process(double end, bool threaded)
{
	static struct worker workers[MAX_THREADS];
	unsigned n = threaded ? nthreads : 0;
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + me * 0x2545f4914f6cdd1dull + 1;

	for (unsigned i = 0; i < n; i++) {
		/* the parent's private locks are stale here; a fresh process starts with none */
		memset(&workers[i], 0, sizeof workers[i]);
		workers[i].rng = rng + i * 7919 + 1;
		if (pthread_create(&workers[i].self, NULL, worker_main, &workers[i]) != 0)
			n = i;
	}
	/* This thread makes children: between bursts of its own operations (single-threaded),
	 * or between naps while the workers hammer the objects (threaded). */
	struct worker w = { .rng = rng ^ 0x5555 };
	struct child kids[MAX_KIDS];
	unsigned nkids = 0;
	while (th_now() < end) {
		if (n == 0)
			for (int k = 0; k < 50; k++)
				one_op(&w, false);
		else
			th_nap((long)(th_rnd(&rng) % 3000));
		reap(kids, &nkids, false);
		if (depth < MAX_DEPTH && nkids < MAX_KIDS && (n > 0 || th_rnd(&rng) % 8 == 0))
			spawn(kids, &nkids, &rng, n > 0);
	}
	reap(kids, &nkids, true);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < n; i++)
		pthread_join(workers[i].self, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = (unsigned)strtoul(argv[1], NULL, 0);
	if (argc > 2)
		nobjects = (unsigned)strtoul(argv[2], NULL, 0);
	if (argc > 3)
		seconds = (unsigned)strtoul(argv[3], NULL, 0);
	if (argc > 4)
		seed = strtoull(argv[4], NULL, 0);
	if (!seed)
		seed = (unsigned long long)(th_now() * 1e9) ^ ((unsigned long long)getpid() << 32);
	if (nthreads > MAX_THREADS || nobjects == 0 || nobjects > MAX_OBJECTS) {
		fprintf(stderr, "usage: torture [threads<=%d [objects 1..%d [seconds [seed]]]]\n",
		        MAX_THREADS, MAX_OBJECTS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("torture: %u threads, %u objects, %u s, seed %llu (rerun: torture %u %u %u %llu)\n",
	       nthreads, nobjects, seconds, seed, nthreads, nobjects, seconds, seed);

	ledger = mmap(NULL, sizeof *ledger, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	              -1, 0);
	counts = mmap(NULL, (size_t)MAX_PROCS * TYPES * nobjects, PROT_READ | PROT_WRITE,
	              MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ledger == MAP_FAILED || counts == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (unsigned i = 0; i < MAX_OBJECTS; i++)
		lazies[i] = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(lazy_init, (void *)(uintptr_t)i);
	paths_allowed = th_torture_kinds(&child_threads);
	me = atomic_fetch_add_explicit(&ledger->procs, 1, memory_order_relaxed);
	th_torture_deadline(seconds + 180, /* past every child's deadline */
	                    "torture: FAILED: hang in the top process; reproduce with: torture %u %u "
	                    "%u %llu\n", nthreads, nobjects, seconds, seed);
	run_process(th_now() + seconds, nthreads > 0);
	unsigned bad = verify_process();

	unsigned long hangs = ledger->hangs, doubles = ledger->double_inits;
	unsigned long stale = ledger->stale_reads, missing = ledger->missing_inits;
	unsigned long exits = ledger->bad_exits;
	printf("torture: processes %u, forks", (unsigned)ledger->procs);
	for (int p = 0; p < TH_FORK_KINDS; p++)
		printf(" %s=%lu", th_fork_names[p], (unsigned long)ledger->forks[p]);
	printf(", inits %lu, cancels %lu, hangs %lu, double inits %lu, stale reads %lu, "
	       "missing inits %lu, failed processes %lu\n",
	       (unsigned long)ledger->inits, (unsigned long)ledger->cancels, hangs, doubles,
	       stale, missing, exits);
	if (bad || hangs || doubles || stale || missing || exits) {
		printf("torture: FAILED; reproduce with: torture %u %u %u %llu\n", nthreads,
		       nobjects, seconds, seed);
		return 1;
	}
	return 0;
}
