/* SPDX-License-Identifier: MIT */
/*
 * fork-values THREADS ITERATIONS: forking while threads are inside the value primitives.
 *
 *  1. Threads run get_or_init/force on fresh once locks and lazy locks with slow inits while
 *     the main thread forks (fork(), and _Fork() where MADV_WIPEONFORK detects it). The child,
 *     single-threaded, must find every object empty without waiting for a thread it does not
 *     have; on_wipe must run at most once per object, with that object's parent value, exactly
 *     once where the parent's call had returned before the fork and never where no init had
 *     started; then the child initialises every object with values of its own.
 *  2. A child whose parent set every object runs several threads that get and initialise them
 *     all at once: on_wipe and the child's init each run exactly once per object.
 *  3. An init forks while other threads wait for it: the waiters get its value in the parent;
 *     in the child the lock is empty, no on_wipe runs, and the child initialises it.
 *
 * Under ThreadSanitizer, part 2 is left out (with gcc 12 a child of a multi-threaded process
 * cannot start threads) and so are the _Fork() children (TSan does not intercept _Fork, and
 * such a child can hang in TSan's runtime); children are not race-checked (th_child_begin).
 * Exit status 0 on success, 1 on a failed check.
 */
#include "wof-test.h"

#define NOBJ 24
#define MAX_THREADS 32
#define LOCK 0
#define LAZY 1

static int nthreads, iterations;

/* Values: the parent's, then each child's, told apart by address. */
static int parent_vals[2][NOBJ];
static int child_vals[2][NOBJ];
static bool in_child;

/*
 * Everything a child reads or writes that threads of its parent touched goes through atomics:
 * ThreadSanitizer keeps the parent's threads alive in its books after fork and would report
 * the child's plain accesses as races with them.
 */
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SET_IN_CHILD() __atomic_store_n(&in_child, true, __ATOMIC_RELAXED)

struct objects {
	wof_once_lock_t lock[NOBJ];
	wof_lazy_lock_t lazy[NOBJ];
	unsigned started[2][NOBJ]; /* an init of the object began (in the parent) */
	unsigned done[2][NOBJ];    /* a parent call returned the value */
	unsigned inits[2][NOBJ];   /* successful inits in this process */
	unsigned wipes[2][NOBJ];   /* on_wipe calls in this process */
	unsigned bad_wipes;        /* on_wipe with a value that is no parent value */
	int slow_us;               /* how long an init sleeps */
};

static struct objects *objs;

static void *make(int type, int i)
{
	if (!LD(in_child)) {
		__atomic_store_n(&objs->started[type][i], 1, __ATOMIC_RELAXED);
		if (objs->slow_us)
			th_nap(objs->slow_us / 2 + rand() % objs->slow_us);
	}
	__atomic_fetch_add(&objs->inits[type][i], 1, __ATOMIC_RELAXED);
	return LD(in_child) ? &child_vals[type][i] : &parent_vals[type][i];
}

static void *lock_init(void *arg)
{
	return make(LOCK, (int)(intptr_t)arg);
}

static void *lazy_init(void *arg)
{
	return make(LAZY, (int)(intptr_t)arg);
}

static void on_wipe(int type, void *stale)
{
	int *v = stale;

	if (v < &parent_vals[type][0] || v >= &parent_vals[type][NOBJ]) {
		__atomic_fetch_add(&objs->bad_wipes, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_add(&objs->wipes[type][v - &parent_vals[type][0]], 1, __ATOMIC_RELAXED);
}

static void lock_on_wipe(void *stale)
{
	on_wipe(LOCK, stale);
}

static void lazy_on_wipe(void *stale)
{
	on_wipe(LAZY, stale);
}

static void reset_objects(int slow_us)
{
	memset(objs, 0, sizeof *objs);
	objs->slow_us = slow_us;
	for (int i = 0; i < NOBJ; i++) {
		objs->lock[i] = (wof_once_lock_t)WOF_ONCE_LOCK_INIT_ON_WIPE(lock_on_wipe);
		objs->lazy[i] = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT_ON_WIPE(lazy_init,
		                                                           (void *)(intptr_t)i,
		                                                           lazy_on_wipe);
	}
}

static void *get_value(int type, int i)
{
	return type == LOCK ? wof_once_lock_get(&objs->lock[i]) : wof_lazy_lock_get(&objs->lazy[i]);
}

static void *init_value(int type, int i)
{
	return type == LOCK ? wof_once_lock_get_or_init(&objs->lock[i], lock_init, (void *)(intptr_t)i)
	                    : wof_lazy_lock_force(&objs->lazy[i]);
}

/* ---- 1. fork while threads are inside inits -------------------------------------------------- */

static pthread_barrier_t barrier;

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int it = 0; it < iterations; it++) {
		pthread_barrier_wait(&barrier);
		for (int k = 0; k < NOBJ; k++) {
			int i = (k * 7 + t * 5) % NOBJ;
			for (int type = 0; type < 2; type++) {
				void *v = init_value(type, i);
				if (v != &parent_vals[type][i])
					TH_FAIL("parent: object %d/%d: got %p", type, i, v);
				__atomic_store_n(&objs->done[type][i], 1, __ATOMIC_RELEASE);
			}
		}
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

/* The child of a fork among busy threads; it has only this thread. */
static int child_among_inits(void *arg)
{
	(void)arg;
	SET_IN_CHILD();
	/* What the parent had done when it forked (this process's copy of its memory). */
	unsigned started[2][NOBJ], done[2][NOBJ], inits[2][NOBJ];
	for (int i = 0; i < NOBJ; i++)
		for (int type = 0; type < 2; type++) {
			started[type][i] = __atomic_load_n(&objs->started[type][i], __ATOMIC_RELAXED);
			done[type][i] = __atomic_load_n(&objs->done[type][i], __ATOMIC_RELAXED);
			inits[type][i] = __atomic_load_n(&objs->inits[type][i], __ATOMIC_RELAXED);
		}
	TH_CHILD_CHECK(__atomic_load_n(&objs->bad_wipes, __ATOMIC_RELAXED) == 0);

	for (int i = 0; i < NOBJ; i++)
		for (int type = 0; type < 2; type++) {
			errno = TH_ERRNO_SENTINEL;
			TH_CHILD_CHECK(get_value(type, i) == NULL); /* no hang, nothing of the parent's */
			TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
			unsigned w = LD(objs->wipes[type][i]);
			TH_CHILD_CHECK(w <= 1);
			if (done[type][i])
				TH_CHILD_CHECK(w == 1); /* the parent held a value at fork */
			if (!started[type][i])
				TH_CHILD_CHECK(w == 0); /* no init had begun: nothing was held */
			TH_CHILD_CHECK(init_value(type, i) == &child_vals[type][i]);
			TH_CHILD_CHECK(LD(objs->inits[type][i]) == inits[type][i] + 1);
			TH_CHILD_CHECK(init_value(type, i) == &child_vals[type][i]);
			TH_CHILD_CHECK(get_value(type, i) == &child_vals[type][i]);
			TH_CHILD_CHECK(LD(objs->wipes[type][i]) == w); /* not again */
		}
	TH_CHILD_CHECK(LD(objs->bad_wipes) == 0);
	return 0;
}

static void fork_among_inits(enum th_fork_kind how, int slow_us, const char *what)
{
	pthread_t threads[MAX_THREADS];

	reset_objects(slow_us);
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (int t = 0; t < nthreads; t++)
		th_start(&threads[t], worker, (void *)(intptr_t)t);
	for (int it = 0; it < iterations; it++) {
		pthread_barrier_wait(&barrier); /* go */
		th_nap(rand() % (slow_us * 4 + 50)); /* forks land at other points of the work */
		if (th_in_child(how, child_among_inits, NULL) != 0)
			TH_FAIL("%s, %s, iteration %d: %s", what, th_fork_names[how], it, th_why);
		pthread_barrier_wait(&barrier); /* all done */
		for (int i = 0; i < NOBJ; i++)
			for (int type = 0; type < 2; type++) {
				if (get_value(type, i) != &parent_vals[type][i])
					TH_FAIL("parent lost object %d/%d", type, i);
				if (LD(objs->inits[type][i]) != 1)
					TH_FAIL("parent: object %d/%d: %u inits", type, i,
					     LD(objs->inits[type][i]));
				if (LD(objs->wipes[type][i]) != 0)
					TH_FAIL("parent: on_wipe ran in the parent");
			}
		/* Empty the objects again for the next round, with the workers parked. */
		unsigned bad = LD(objs->bad_wipes);
		reset_objects(slow_us);
		objs->bad_wipes = bad;
	}
	for (int t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	pthread_barrier_destroy(&barrier);
}

/* ---- 2. several threads of a child on wiped objects -------------------------------------------- */

static pthread_barrier_t child_barrier;

static void *child_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	bool ok = true;

	pthread_barrier_wait(&child_barrier);
	for (int k = 0; k < NOBJ; k++) {
		int i = (k + t * 3) % NOBJ;
		for (int type = 0; type < 2; type++) {
			if (t % 2 == 0) {
				void *v = get_value(type, i);
				ok &= v == NULL || v == &child_vals[type][i];
			}
			ok &= init_value(type, i) == &child_vals[type][i];
		}
	}
	return ok ? NULL : (void *)"wrong value";
}

static int child_threads(void *arg)
{
	pthread_t threads[MAX_THREADS];
	int n = nthreads < 2 ? 2 : nthreads;
	void *why;
	bool ok = true;

	(void)arg;
	SET_IN_CHILD();
	pthread_barrier_init(&child_barrier, NULL, (unsigned)n);
	for (int t = 0; t < n; t++)
		TH_CHILD_CHECK(pthread_create(&threads[t], NULL, child_thread, (void *)(intptr_t)t) == 0);
	for (int t = 0; t < n; t++) {
		pthread_join(threads[t], &why);
		ok &= why == NULL;
	}
	TH_CHILD_CHECK(ok);
	for (int i = 0; i < NOBJ; i++)
		for (int type = 0; type < 2; type++) {
			TH_CHILD_CHECK(LD(objs->wipes[type][i]) == 1);
			TH_CHILD_CHECK(LD(objs->inits[type][i]) == 2); /* the parent's, copied, and ours */
		}
	TH_CHILD_CHECK(LD(objs->bad_wipes) == 0);
	return 0;
}

static void threads_in_child(enum th_fork_kind how)
{
	for (int it = 0; it < iterations; it++) {
		reset_objects(0);
		for (int i = 0; i < NOBJ; i++)
			for (int type = 0; type < 2; type++)
				(void)init_value(type, i);
		if (th_in_child(how, child_threads, NULL) != 0)
			TH_FAIL("threads in a child, %s, iteration %d: %s", th_fork_names[how], it, th_why);
	}
}

/* ---- 3. an init that forks while others wait ----------------------------------------------- */

static wof_once_lock_t forking_lock = WOF_ONCE_LOCK_INIT_ON_WIPE(lock_on_wipe);
static enum th_fork_kind forking_how;
static unsigned waiters_started;
static int forker_in_init; /* atomic (th_set) */
static pid_t forked_pid;

static void *forking_init(void *arg)
{
	(void)arg;
	th_set(&forker_in_init, 1);
	while (__atomic_load_n(&waiters_started, __ATOMIC_ACQUIRE) < (unsigned)nthreads)
		th_nap(1000);
	th_nap(5000); /* let them park */
	forked_pid = th_fork(forking_how);
	if (forked_pid == 0) {
		th_child_begin();
		SET_IN_CHILD();
		return &child_vals[LOCK][0];
	}
	return &parent_vals[LOCK][0];
}

static void *plain_init(void *arg)
{
	(void)arg;
	return &child_vals[LOCK][1];
}

/* In the child, after the forking init returned there: the lock is empty and usable. */
static int after_forking_init(void *got)
{
	TH_CHILD_CHECK(got == &child_vals[LOCK][0]); /* the init's own result, in this process */
	TH_CHILD_CHECK(wof_once_lock_get(&forking_lock) == NULL);
	TH_CHILD_CHECK(LD(objs->wipes[LOCK][0]) == 0 && LD(objs->bad_wipes) == 0); /* nothing was held */
	TH_CHILD_CHECK(wof_once_lock_get_or_init(&forking_lock, plain_init, NULL) == &child_vals[LOCK][1]);
	TH_CHILD_CHECK(wof_once_lock_get(&forking_lock) == &child_vals[LOCK][1]);
	TH_CHILD_CHECK(LD(objs->wipes[LOCK][0]) == 0 && LD(objs->bad_wipes) == 0);
	return 0;
}

static void *forking_thread(void *arg)
{
	(void)arg;
	void *got = wof_once_lock_get_or_init(&forking_lock, forking_init, NULL);
	if (forked_pid == 0)
		th_child_exit(after_forking_init(got));
	if (forked_pid < 0)
		return (void *)"the forking init did not run, or its fork failed";
	if (th_reap(forked_pid, th_fork_names[forking_how]) != 0)
		return th_why;
	return got == &parent_vals[LOCK][0] ? NULL : (void *)"the forking init's caller";
}

static void *waiter_thread(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&waiters_started, 1, __ATOMIC_RELEASE);
	void *got = wof_once_lock_get_or_init(&forking_lock, plain_init, NULL);
	return got == &parent_vals[LOCK][0] ? NULL : (void *)"a waiter got another value";
}

static void fork_inside_init(enum th_fork_kind how)
{
	pthread_t forker, waiters[MAX_THREADS];
	void *why;

	for (int it = 0; it < 3; it++) {
		reset_objects(0);
		forking_lock = (wof_once_lock_t)WOF_ONCE_LOCK_INIT_ON_WIPE(lock_on_wipe);
		forking_how = how;
		waiters_started = 0;
		forker_in_init = 0;
		forked_pid = -1;
		th_start(&forker, forking_thread, NULL);
		th_gate_wait(&forker_in_init);
		for (int t = 0; t < nthreads; t++)
			th_start(&waiters[t], waiter_thread, NULL);
		pthread_join(forker, &why);
		if (why)
			TH_FAIL("init that forks, %s: %s", th_fork_names[how], (const char *)why);
		for (int t = 0; t < nthreads; t++) {
			pthread_join(waiters[t], &why);
			if (why)
				TH_FAIL("init that forks, %s: %s", th_fork_names[how], (const char *)why);
		}
		if (LD(objs->wipes[LOCK][0]) != 0)
			TH_FAIL("init that forks: on_wipe in the parent");
	}
}

int main(int argc, char **argv)
{
	nthreads = argc > 1 ? atoi(argv[1]) : 4;
	iterations = argc > 2 ? atoi(argv[2]) : 20;
	if (nthreads < 1 || nthreads > MAX_THREADS || iterations < 1) {
		fprintf(stderr, "usage: %s [THREADS 1..%d] [ITERATIONS]\n", argv[0], MAX_THREADS);
		return 1;
	}
	objs = calloc(1, sizeof *objs);
	if (!objs)
		return 1;
	srand((unsigned)getpid());

	enum th_fork_kind hows[2] = { TH_FORK, TH_UFORK };
	int nhows = 2;
	if (!th_fork_detected(TH_UFORK)) {
		printf("fork-values: only atfork detection: _Fork() cases skipped\n");
		nhows = 1;
	} else if (TH_TSAN) {
		/* TSan does not see _Fork(): a child can hang on a runtime lock another thread held. */
		printf("fork-values: under ThreadSanitizer: _Fork() cases skipped\n");
		nhows = 1;
	}

	for (int h = 0; h < nhows; h++) {
		fork_among_inits(hows[h], 200, "slow inits");
		fork_among_inits(hows[h], 0, "fast inits");
		if (!TH_TSAN)
			threads_in_child(hows[h]);
		fork_inside_init(hows[h]);
	}
	if (TH_TSAN)
		printf("fork-values: under ThreadSanitizer: threads in a child skipped\n");
	free(objs);

	unsigned n = th_failures();
	printf("fork-values: %d threads x %d iterations: %s (%u failed checks)\n", nthreads,
	       iterations, n ? "FAIL" : "ok", n);
	return n ? 1 : 0;
}
