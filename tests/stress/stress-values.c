/* SPDX-License-Identifier: MIT */
/*
 * stress-values race|first-use THREADS ITERATIONS: threads race on the value primitives and
 * must agree.
 *
 * Each iteration, THREADS threads start together on empty once locks and fresh lazy locks:
 * they call get_or_init, get_or_try_init, wait, get, or set with a value of their own; the
 * first init of every object fails, so a waiting caller must take over. Every thread must get
 * the one stored value and see what its init (or setter) wrote (plain writes: the primitives'
 * acquire/release is all that orders them, which is what ThreadSanitizer checks here). Between
 * iterations the main thread
 * takes the locks back. Lazy statics are raced once each; `_Thread_local` cells must give each
 * thread its own value. In "first-use" mode the main thread makes no wof call before the
 * threads start, so their first calls are also the first of the process. Exit status 0 on
 * success, 1 on a failed check.
 */
#include <stddef.h>

#include "wof-test.h"

#define NOBJ 16
#define MAX_THREADS 64
#define NSTATIC 8

struct payload {
	int magic;
	int index;
	unsigned char bytes[60];
};

struct objects {
	wof_once_lock_t lock[NOBJ]; /* first: an iteration starts over from the rest on */
	wof_lazy_lock_t lazy[NOBJ];
	struct payload lock_payload[NOBJ];
	struct payload lazy_payload[NOBJ];
	struct payload set_payload[MAX_THREADS][NOBJ];
	struct payload *agreed[NOBJ]; /* the value the lock's callers got */
	unsigned lock_inits[NOBJ]; /* successful inits and sets, per lock */
	unsigned lazy_inits[NOBJ];
	unsigned lock_attempts[NOBJ]; /* every init call, failed ones included */
	unsigned lazy_attempts[NOBJ];
};

static struct objects *objs;
static int nthreads, iterations;
static pthread_barrier_t barrier;

static void fill(struct payload *p, int index)
{
	p->magic = 0x5eed;
	p->index = index;
	memset(p->bytes, index & 0xff, sizeof p->bytes);
}

static bool filled(const struct payload *p, int index)
{
	return p->magic == 0x5eed && p->index == index &&
	       th_all_bytes(p->bytes, sizeof p->bytes, (unsigned char)index);
}

/* The first attempt on each object fails after a short while, so that callers queue behind it. */
static void *lock_init(void *arg)
{
	int i = (int)(intptr_t)arg;

	if (__atomic_fetch_add(&objs->lock_attempts[i], 1, __ATOMIC_RELAXED) == 0) {
		th_nap(1000);
		errno = EAGAIN;
		return NULL;
	}
	fill(&objs->lock_payload[i], i);
	__atomic_fetch_add(&objs->lock_inits[i], 1, __ATOMIC_RELAXED);
	return &objs->lock_payload[i];
}

static int lock_try_init(void *arg, void **out)
{
	void *v = lock_init(arg);

	if (!v)
		return EAGAIN;
	*out = v;
	return 0;
}

static void *lazy_init(void *arg)
{
	int i = (int)(intptr_t)arg;

	if (__atomic_fetch_add(&objs->lazy_attempts[i], 1, __ATOMIC_RELAXED) == 0) {
		errno = EAGAIN;
		return NULL;
	}
	fill(&objs->lazy_payload[i], i + 1000);
	__atomic_fetch_add(&objs->lazy_inits[i], 1, __ATOMIC_RELAXED);
	return &objs->lazy_payload[i];
}

/* ---- lazy statics, raced one per iteration ------------------------------------------------ */

static unsigned static_inits[NSTATIC];

#define STRESS_STATIC(n)                                                                          \
	static int static##n##_init(struct payload *slot)                                         \
	{                                                                                         \
		if (slot->magic != 0)                                                             \
			return EINVAL;                                                            \
		__atomic_fetch_add(&static_inits[n], 1, __ATOMIC_RELAXED);                        \
		th_nap(1000);                                                                   \
		fill(slot, 2000 + n);                                                             \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_STATIC(struct payload, static##n, static##n##_init)

STRESS_STATIC(0);
STRESS_STATIC(1);
STRESS_STATIC(2);
STRESS_STATIC(3);
STRESS_STATIC(4);
STRESS_STATIC(5);
STRESS_STATIC(6);
STRESS_STATIC(7);

static struct payload *(*const statics[NSTATIC])(void) = {
	static0, static1, static2, static3, static4, static5, static6, static7,
};

/* ---- per-thread cells --------------------------------------------------------------------- */

static _Thread_local struct payload tls_payload;
static _Thread_local wof_once_cell_t tls_cell = WOF_ONCE_CELL_INIT;

static void *tls_init(void *arg)
{
	fill(&tls_payload, (int)(intptr_t)arg);
	return &tls_payload;
}

/* ---- the racers --------------------------------------------------------------------------- */

/* Every caller of a lock must end up with the same value: the first one seen is recorded. */
static void agree(int i, struct payload *got, const char *how)
{
	struct payload *expected = NULL;

	if (!got || !filled(got, i)) {
		TH_FAIL("lock %d (%s): got %p, not an initialised payload", i, how, (void *)got);
		return;
	}
	if (!__atomic_compare_exchange_n(&objs->agreed[i], &expected, got, false, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED) &&
	    expected != got)
		TH_FAIL("lock %d (%s): two values, %p and %p", i, how, (void *)expected, (void *)got);
}

static void race_lock(int t, int i, int it)
{
	wof_once_lock_t *lock = &objs->lock[i];
	void *arg = (void *)(intptr_t)i;
	struct payload *got = NULL;
	void *out = NULL;
	int rc, kind = (t + i + it) % 5;

	if (kind == 2 && t == 0)
		kind = 0; /* thread 0 never waits, so every lock gets set eventually */
	switch (kind) {
	case 0:
		/* A NULL here is this caller's own init failing: try again, as a user would. */
		while (!(got = wof_once_lock_get_or_init(lock, lock_init, arg)))
			if (errno != EAGAIN) {
				TH_FAIL("lock %d: get_or_init: NULL with errno %d", i, errno);
				return;
			}
		agree(i, got, "get_or_init");
		break;
	case 1:
		while ((rc = wof_once_lock_get_or_try_init(lock, lock_try_init, arg, &out)) == EAGAIN)
			;
		if (rc != 0) {
			TH_FAIL("lock %d: get_or_try_init: %d", i, rc);
			return;
		}
		agree(i, out, "get_or_try_init");
		break;
	case 2:
		agree(i, wof_once_lock_wait(lock), "wait");
		break;
	case 3:
		got = wof_once_lock_get(lock); /* NULL or the value: never waits */
		if (got)
			agree(i, got, "get");
		while (!(got = wof_once_lock_get_or_init(lock, lock_init, arg)))
			;
		agree(i, got, "get_or_init after get");
		break;
	default: {
		struct payload *mine = &objs->set_payload[t][i];
		fill(mine, i);
		rc = wof_once_lock_set(lock, mine);
		if (rc == 0)
			__atomic_fetch_add(&objs->lock_inits[i], 1, __ATOMIC_RELAXED);
		else if (rc != EEXIST)
			TH_FAIL("lock %d: set: %d", i, rc);
		agree(i, wof_once_lock_get(lock), "set then get");
		break;
	}
	}
	if (wof_once_lock_set(lock, &objs->lock_payload[0]) != EEXIST)
		TH_FAIL("lock %d: set on a set lock did not say EEXIST", i);
}

static void race_lazy(int i)
{
	struct payload *got;

	while (!(got = wof_lazy_lock_force(&objs->lazy[i])))
		if (errno != EAGAIN) {
			TH_FAIL("lazy %d: force: NULL with errno %d", i, errno);
			return;
		}
	if (got != &objs->lazy_payload[i] || !filled(got, i + 1000))
		TH_FAIL("lazy %d: got %p, not the one initialised payload", i, (void *)got);
	if (wof_lazy_lock_get(&objs->lazy[i]) != got)
		TH_FAIL("lazy %d: get disagrees with force", i);
}

static void *racer(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int it = 0; it < iterations; it++) {
		pthread_barrier_wait(&barrier);
		for (int k = 0; k < NOBJ; k++) {
			int i = (k + t) % NOBJ; /* every thread starts somewhere else */
			race_lock(t, i, it);
			race_lazy(NOBJ - 1 - i);
		}
		if (it < NSTATIC) {
			struct payload *p = statics[it]();
			if (!p || !filled(p, 2000 + it))
				TH_FAIL("static %d: not its payload", it);
		}
		struct payload *mine = wof_once_cell_get_or_init(&tls_cell, tls_init,
		                                                 (void *)(intptr_t)(t + 3000));
		if (mine != &tls_payload || !filled(mine, t + 3000))
			TH_FAIL("thread %d: its cell holds someone else's value", t);
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

/* Everything but the locks (empty, not all-zero, after a take): fresh lazy locks, no counts. */
static void reset_objects(void)
{
	memset(objs->lazy, 0, sizeof *objs - offsetof(struct objects, lazy));
	for (int i = 0; i < NOBJ; i++)
		objs->lazy[i] = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(lazy_init, (void *)(intptr_t)i);
}

/* Between iterations, with every racer at the barrier: each object got exactly one value. */
static void check_iteration(int it)
{
	for (int i = 0; i < NOBJ; i++) {
		if (objs->lock_inits[i] != 1)
			TH_FAIL("iteration %d, lock %d: %u successful inits", it, i, objs->lock_inits[i]);
		if (objs->lazy_inits[i] != 1)
			TH_FAIL("iteration %d, lazy %d: %u successful inits", it, i, objs->lazy_inits[i]);
		if (objs->lazy_attempts[i] < 2)
			TH_FAIL("iteration %d, lazy %d: the failing first init did not run", it, i);
		/* Take the lock back: the next iteration starts from empty, not from all-zero. */
		if (wof_once_lock_take(&objs->lock[i]) != objs->agreed[i])
			TH_FAIL("iteration %d, lock %d: take returned something else", it, i);
		if (wof_once_lock_get(&objs->lock[i]) != NULL)
			TH_FAIL("iteration %d, lock %d: not empty after take", it, i);
	}
	if (it < NSTATIC && static_inits[it] != 1)
		TH_FAIL("static %d: %u inits", it, static_inits[it]);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "race";
	nthreads = argc > 2 ? atoi(argv[2]) : 8;
	iterations = argc > 3 ? atoi(argv[3]) : 100;
	bool first_use = strcmp(mode, "first-use") == 0;
	if ((!first_use && strcmp(mode, "race") != 0) || nthreads < 1 || nthreads > MAX_THREADS ||
	    iterations < 1) {
		fprintf(stderr, "usage: %s race|first-use [THREADS 1..%d] [ITERATIONS]\n", argv[0],
		        MAX_THREADS);
		return 1;
	}
	/* "race": the process has used wof before the threads start. "first-use": the racers'
	 * calls are the first wof calls of the process, so they also race to set wof up. */
	if (!first_use)
		(void)wof_generation();
	objs = calloc(1, sizeof *objs);
	if (!objs)
		return 1;
	reset_objects(); /* the lazy locks' initialisers */

	pthread_t threads[MAX_THREADS];
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (int t = 0; t < nthreads; t++)
		th_start(&threads[t], racer, (void *)(intptr_t)t);
	for (int it = 0; it < iterations; it++) {
		pthread_barrier_wait(&barrier); /* go */
		pthread_barrier_wait(&barrier); /* all done */
		check_iteration(it);
		reset_objects(); /* the locks are empty again (taken) */
	}
	for (int t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	pthread_barrier_destroy(&barrier);
	free(objs);

	unsigned n = th_failures();
	printf("stress-values %s: %d threads x %d iterations: %s (%u failed checks)\n", mode,
	       nthreads, iterations, n ? "FAIL" : "ok", n);
	return n ? 1 : 0;
}
