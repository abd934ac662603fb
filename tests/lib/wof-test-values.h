/* SPDX-License-Identifier: MIT */
/*
 * The behaviours that wof_once_lock_t and wof_once_cell_t share (docs/api.md: get, set,
 * try_insert, take, get_or_init, get_or_try_init, their errors and errno, re-entry, all-zero
 * objects), written once over a small ops table and run by test-once-lock.c and
 * test-once-cell.c; likewise those that wof_lazy_lock_t and wof_lazy_cell_t share (force, get,
 * retries, EINVAL, EDEADLK), run by test-lazy-lock.c and test-once-cell.c. Also
 * th_barrier_race(): threads that race from a barrier, for the value units and test-generation.c.
 * Criterion units only (the bodies assert with cr_assert): include it after
 * <criterion/criterion.h>. TH_VALUE_TEST(suite, behaviour, ops) is one test case.
 */
#pragma once

#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>

#include "wof-test.h"

/* One object of either type: the tests make them through ops->init, or all-zero. */
union th_value_obj {
	wof_once_lock_t lock;
	wof_once_cell_t cell;
};

struct th_value_ops {
	const char *name;
	void (*init)(void *obj); /* the static initialiser (WOF_*_INIT) */
	void *(*get)(void *obj);
	int (*set)(void *obj, void *value);
	int (*try_insert)(void *obj, void *value, void **current);
	void *(*take)(void *obj);
	void *(*get_or_init)(void *obj, void *(*init)(void *), void *arg);
	int (*get_or_try_init)(void *obj, int (*init)(void *, void **), void *arg, void **out);
	void *(*wait)(void *obj); /* NULL where the type has no wait (cells) */
};

/* The ops of wof_<type>_t, named th_<type>_ops. */
#define TH_VALUE_OPS(type, INIT, wait_fn)                                                      \
	static void th_##type##_init(void *o) { *(wof_##type##_t *)o = (wof_##type##_t)INIT; } \
	static void *th_##type##_get(void *o) { return wof_##type##_get((wof_##type##_t *)o); } \
	static int th_##type##_set(void *o, void *v) { return wof_##type##_set((wof_##type##_t *)o, v); } \
	static int th_##type##_try_insert(void *o, void *v, void **c)                          \
	{                                                                                      \
		return wof_##type##_try_insert((wof_##type##_t *)o, v, c);                     \
	}                                                                                      \
	static void *th_##type##_take(void *o) { return wof_##type##_take((wof_##type##_t *)o); } \
	static void *th_##type##_get_or_init(void *o, void *(*f)(void *), void *a)             \
	{                                                                                      \
		return wof_##type##_get_or_init((wof_##type##_t *)o, f, a);                    \
	}                                                                                      \
	static int th_##type##_get_or_try_init(void *o, int (*f)(void *, void **), void *a,   \
	                                       void **out)                                     \
	{                                                                                      \
		return wof_##type##_get_or_try_init((wof_##type##_t *)o, f, a, out);           \
	}                                                                                      \
	static const struct th_value_ops th_##type##_ops = {                                   \
		#type, th_##type##_init, th_##type##_get, th_##type##_set,                     \
		th_##type##_try_insert, th_##type##_take, th_##type##_get_or_init,             \
		th_##type##_get_or_try_init, wait_fn,                                          \
	}

#define TH_VALUE_TEST(suite, behaviour, ops, ...)                                              \
	Test(suite, behaviour, ##__VA_ARGS__)                                                  \
	{                                                                                      \
		th_values_##behaviour(ops);                                                    \
	}

/* ---- values and inits ---- */

static int value_a, value_b, value_c;
static unsigned init_calls, try_calls; /* atomic: inits may run in several threads */

static inline void *init_a(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return &value_a;
}

/* Returns its argument: the value is whatever the caller passed. */
static inline void *init_arg(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return arg;
}

static inline void *init_fails_enomem(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	errno = ENOMEM;
	return NULL;
}

static inline void *init_must_not_run(void *arg)
{
	(void)arg;
	cr_assert_fail("init ran although a value was set");
	return NULL;
}

static inline int try_fails_1234(void *arg, void **out)
{
	(void)arg;
	(void)out;
	try_calls++;
	return 1234;
}

static inline int try_fails_eagain(void *arg, void **out)
{
	(void)arg;
	*out = &value_c; /* filled, but the error wins: nothing is stored */
	try_calls++;
	return EAGAIN;
}

static inline int try_ok(void *arg, void **out)
{
	try_calls++;
	*out = arg;
	return 0;
}

static inline int try_ok_but_null(void *arg, void **out)
{
	(void)arg;
	(void)out;
	try_calls++;
	return 0;
}

static inline int try_must_not_run(void *arg, void **out)
{
	(void)arg;
	(void)out;
	cr_assert_fail("try init ran although a value was set");
	return 0;
}

/* Returns its argument, after failing (NULL, errno EIO) flaky_failures_left times. */
static unsigned flaky_failures_left;

static inline void *flaky_init(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	if (flaky_failures_left > 0) {
		flaky_failures_left--;
		errno = EIO;
		return NULL;
	}
	return arg;
}

/* A value that depends on the process: a parent's and its child's differ. */
static int pid_value;

static inline void *pid_init(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	pid_value = (int)getpid();
	return &pid_value;
}

/* ---- threads that race ---- */

struct th_barrier_racer {
	pthread_barrier_t *barrier;
	void (*fn)(void *arg, int i);
	void *arg;
	int i;
};

static inline void *th_barrier_racer_thread(void *p)
{
	struct th_barrier_racer *r = p;

	pthread_barrier_wait(r->barrier);
	r->fn(r->arg, r->i);
	return NULL;
}

/*
 * Runs fn(arg, i) for i = 0 .. n-1 (n <= TH_BARRIER_RACE_MAX), each in a thread of its own, all
 * released at once by a barrier, and joins them. It asserts nothing, so children use it too; a
 * thread that cannot be started aborts the process (the others would wait at the barrier).
 */
#define TH_BARRIER_RACE_MAX 32

static inline void th_barrier_race(int n, void (*fn)(void *arg, int i), void *arg)
{
	pthread_barrier_t barrier;
	struct th_barrier_racer racers[TH_BARRIER_RACE_MAX];
	pthread_t threads[TH_BARRIER_RACE_MAX];

	if (n < 1 || n > TH_BARRIER_RACE_MAX)
		abort();
	pthread_barrier_init(&barrier, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		racers[i] = (struct th_barrier_racer){ &barrier, fn, arg, i };
		if (pthread_create(&threads[i], NULL, th_barrier_racer_thread, &racers[i]) != 0)
			abort();
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&barrier);
}

/* Where every body starts: a fresh object (ops->init), no init run yet, errno the sentinel. */
static inline void th_fresh(const struct th_value_ops *t, union th_value_obj *o)
{
	init_calls = try_calls = 0;
	t->init(o);
	errno = TH_ERRNO_SENTINEL;
}

/* ---- get / set / try_insert / take ---- */

static inline void th_values_get_on_empty_is_null_errno_unchanged(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_null(t->get(&o));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->get(&o));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

static inline void th_values_set_then_get(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_eq(t->set(&o, &value_a), 0);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->get(&o), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->get_or_init(&o, init_must_not_run, NULL), &value_a);
	if (t->wait)
		cr_assert_eq(t->wait(&o), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

static inline void th_values_set_twice_is_eexist_value_unchanged(const struct th_value_ops *t)
{
	union th_value_obj o;
	int *mine = malloc(sizeof *mine);

	th_fresh(t, &o);
	cr_assert_eq(t->set(&o, &value_a), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(t->set(&o, mine), EEXIST);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "set returns its error, errno is left alone");
	cr_assert_eq(t->get(&o), &value_a);
	/* The caller still owns `mine`: wof neither stored nor freed it. */
	*mine = 42;
	free(mine);
	cr_assert_eq(t->set(&o, &value_a), EEXIST, "even the same value");
	cr_assert_eq(t->get(&o), &value_a);
}

static inline void th_values_set_null_is_einval(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_eq(t->set(&o, NULL), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->get(&o));
	cr_assert_eq(t->set(NULL, &value_a), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	/* Nothing was stored: a real value still goes in. */
	cr_assert_eq(t->set(&o, &value_a), 0);
	cr_assert_eq(t->set(&o, NULL), EINVAL);
	cr_assert_eq(t->get(&o), &value_a);
}

static inline void th_values_try_insert_reports_the_current_value(const struct th_value_ops *t)
{
	union th_value_obj o;
	void *current = &value_c;

	th_fresh(t, &o);
	cr_assert_eq(t->try_insert(&o, &value_a, &current), 0);
	cr_assert_eq(current, &value_a);
	current = &value_c;
	cr_assert_eq(t->try_insert(&o, &value_b, &current), EEXIST);
	cr_assert_eq(current, &value_a, "EEXIST hands back the value already there");
	cr_assert_eq(t->try_insert(&o, &value_b, NULL), EEXIST);
	cr_assert_eq(t->try_insert(&o, NULL, &current), EINVAL);
	cr_assert_eq(t->try_insert(NULL, &value_b, &current), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->get(&o), &value_a);
}

static inline void th_values_take_on_empty_is_null_errno_unchanged(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_null(t->take(&o));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->take(NULL));
	cr_assert_eq(errno, EINVAL);
}

static inline void th_values_take_returns_the_value_and_empties(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_eq(t->set(&o, &value_a), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(t->take(&o), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->get(&o));
	cr_assert_null(t->take(&o));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	/* Empty again: set works, and so does a new init. */
	cr_assert_eq(t->set(&o, &value_b), 0);
	cr_assert_eq(t->get(&o), &value_b);
	cr_assert_eq(t->take(&o), &value_b);
	cr_assert_eq(t->get_or_init(&o, init_a, NULL), &value_a);
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(t->get(&o), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

/* ---- get_or_init ---- */

static inline void th_values_get_or_init_runs_init_once_with_its_arg(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_eq(t->get_or_init(&o, init_arg, &value_b), &value_b);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->get_or_init(&o, init_arg, &value_c), &value_b);
	cr_assert_eq(t->get_or_init(&o, init_a, NULL), &value_b);
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(t->get(&o), &value_b);
	cr_assert_eq(t->set(&o, &value_c), EEXIST);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

static inline void
th_values_init_returning_null_stores_nothing_and_is_retried(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_null(t->get_or_init(&o, init_fails_enomem, NULL));
	cr_assert_eq(errno, ENOMEM, "errno is what init left");
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(&o));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->get_or_init(&o, init_fails_enomem, NULL));
	cr_assert_eq(errno, ENOMEM);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(t->get_or_init(&o, init_a, NULL), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 3);
	cr_assert_eq(t->get(&o), &value_a);
}

static inline void th_values_init_returning_null_leaves_set_possible(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_null(t->get_or_init(&o, init_fails_enomem, NULL));
	cr_assert_eq(t->set(&o, &value_b), 0);
	cr_assert_eq(t->get(&o), &value_b);
}

static inline void th_values_einval_for_null_object_or_init(const struct th_value_ops *t)
{
	union th_value_obj o;

	th_fresh(t, &o);
	cr_assert_null(t->get_or_init(NULL, init_a, NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get_or_init(&o, NULL, NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(init_calls, 0);
	cr_assert_null(t->get(&o));
}

/* ---- get_or_try_init ---- */

static inline void th_values_get_or_try_init_propagates_errors_unchanged(const struct th_value_ops *t)
{
	union th_value_obj o;
	void *out = NULL;

	th_fresh(t, &o);
	cr_assert_eq(t->get_or_try_init(&o, try_fails_1234, NULL, &out), 1234);
	cr_assert_eq(t->get_or_try_init(&o, try_fails_eagain, NULL, &out), EAGAIN);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "int-returning: errno left alone");
	cr_assert_null(t->get(&o), "a failed init stores nothing");
	cr_assert_eq(try_calls, 2);
	/* ... and the next call tries again. */
	cr_assert_eq(t->get_or_try_init(&o, try_ok, &value_a, &out), 0);
	cr_assert_eq(out, &value_a);
	cr_assert_eq(try_calls, 3);
}

static inline void th_values_get_or_try_init_success_fills_out(const struct th_value_ops *t)
{
	union th_value_obj o;
	void *out = NULL;

	th_fresh(t, &o);
	cr_assert_eq(t->get_or_try_init(&o, try_ok, &value_b, &out), 0);
	cr_assert_eq(out, &value_b);
	cr_assert_eq(t->get(&o), &value_b);
	out = NULL;
	cr_assert_eq(t->get_or_try_init(&o, try_must_not_run, NULL, &out), 0);
	cr_assert_eq(out, &value_b, "a set object returns its value without running init");
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(try_calls, 1);
	cr_assert_eq(t->get_or_init(&o, init_must_not_run, NULL), &value_b);
}

static inline void th_values_get_or_try_init_zero_with_null_out_is_einval(const struct th_value_ops *t)
{
	union th_value_obj o;
	void *out = &value_c;

	th_fresh(t, &o);
	cr_assert_eq(t->get_or_try_init(&o, try_ok_but_null, NULL, &out), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->get(&o), "nothing stored");
	cr_assert_eq(t->get_or_try_init(&o, try_ok, &value_a, &out), 0);
	cr_assert_eq(out, &value_a);
	cr_assert_eq(try_calls, 2);
}

static inline void th_values_get_or_try_init_einval_for_null_arguments(const struct th_value_ops *t)
{
	union th_value_obj o;
	void *out = NULL;

	th_fresh(t, &o);
	cr_assert_eq(t->get_or_try_init(NULL, try_ok, &value_a, &out), EINVAL);
	cr_assert_eq(t->get_or_try_init(&o, NULL, &value_a, &out), EINVAL);
	cr_assert_eq(t->get_or_try_init(&o, try_ok, &value_a, NULL), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(try_calls, 0);
	cr_assert_null(t->get(&o));
}

/* ---- re-entry: every call on the object from inside its own init fails with EDEADLK ---- */

static struct th_reentry {
	const struct th_value_ops *t;
	union th_value_obj obj, other; /* all-zero: two empty objects */
	void *r_get_or_init, *r_wait, *r_get, *r_other;
	int e_get_or_init, e_wait, e_get, r_set, r_try_insert, r_try_init;
	bool ran;
} th_reentry;

static inline void th_reenter_all(struct th_reentry *r)
{
	const struct th_value_ops *t = r->t;
	void *out = NULL;

	r->ran = true;
	errno = TH_ERRNO_SENTINEL;
	r->r_get_or_init = t->get_or_init(&r->obj, init_a, NULL);
	r->e_get_or_init = errno;
	if (t->wait) {
		errno = TH_ERRNO_SENTINEL;
		r->r_wait = t->wait(&r->obj);
		r->e_wait = errno;
	}
	r->r_set = t->set(&r->obj, &value_c);
	r->r_try_insert = t->try_insert(&r->obj, &value_c, NULL);
	r->r_try_init = t->get_or_try_init(&r->obj, try_ok, &value_c, &out);
	errno = TH_ERRNO_SENTINEL;
	r->r_get = t->get(&r->obj);
	r->e_get = errno;
	/* Another object is independent: nesting is fine. */
	r->r_other = t->get_or_init(&r->other, init_arg, &value_c);
}

static inline void *th_reentrant_init(void *arg)
{
	th_reenter_all(arg);
	return &value_b;
}

static inline int th_reentrant_try_init(void *arg, void **out)
{
	th_reenter_all(arg);
	*out = &value_b;
	return 0;
}

static inline void th_check_reentry(struct th_reentry *r)
{
	cr_assert(r->ran);
	cr_assert_null(r->r_get_or_init);
	cr_assert_eq(r->e_get_or_init, EDEADLK);
	if (r->t->wait) {
		cr_assert_null(r->r_wait);
		cr_assert_eq(r->e_wait, EDEADLK);
	}
	cr_assert_eq(r->r_set, EDEADLK);
	cr_assert_eq(r->r_try_insert, EDEADLK);
	cr_assert_eq(r->r_try_init, EDEADLK);
	cr_assert_null(r->r_get, "get from inside init: nothing set yet, and no hang");
	cr_assert_eq(r->e_get, TH_ERRNO_SENTINEL);
	cr_assert_eq(r->r_other, &value_c);
	cr_assert_eq(init_calls, 1, "only the other object's init ran inside");
	cr_assert_eq(try_calls, 0);
	cr_assert_eq(r->t->get(&r->obj), &value_b, "the outer init's value is stored");
}

static inline void th_values_reentry_from_get_or_init_is_edeadlk(const struct th_value_ops *t)
{
	th_reentry.t = t;
	cr_assert_eq(t->get_or_init(&th_reentry.obj, th_reentrant_init, &th_reentry), &value_b);
	th_check_reentry(&th_reentry);
}

static inline void th_values_reentry_from_get_or_try_init_is_edeadlk(const struct th_value_ops *t)
{
	void *out = NULL;

	th_reentry.t = t;
	cr_assert_eq(t->get_or_try_init(&th_reentry.obj, th_reentrant_try_init, &th_reentry, &out),
	             0);
	cr_assert_eq(out, &value_b);
	th_check_reentry(&th_reentry);
}

/* ---- all-zero objects (calloc, static storage without an initialiser) ---- */

static inline void th_values_all_zero_is_empty_and_usable(const struct th_value_ops *t)
{
	union th_value_obj *o = calloc(1, sizeof *o), *o2 = calloc(1, sizeof *o2);
	static union th_value_obj zero_static;

	cr_assert(o && o2);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(o));
	cr_assert_null(t->take(o));
	cr_assert_eq(t->get_or_init(o, init_a, NULL), &value_a);
	cr_assert_eq(t->set(o, &value_b), EEXIST);
	cr_assert_eq(t->take(o), &value_a);
	cr_assert_eq(t->set(o2, &value_b), 0);
	cr_assert_eq(t->wait ? t->wait(o2) : t->get(o2), &value_b);
	cr_assert_null(t->get(&zero_static));
	cr_assert_eq(t->set(&zero_static, &value_c), 0);
	cr_assert_eq(t->get(&zero_static), &value_c);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	free(o);
	free(o2);
}

/* ---- one init among racing threads: get_or_init on a once lock, force on a lazy lock ---- */

struct th_init_race {
	union {
		wof_once_lock_t lock;
		wof_lazy_lock_t lazy;
	} obj;
	bool lazy;      /* force obj.lazy, else get_or_init on obj.lock */
	bool slow;      /* init sleeps, so that the others park */
	unsigned inits;
	int value;      /* what init "makes" */
	int made;       /* written by init, read by every thread after its call */
	void *got[32];
	int seen[32];
};

static inline void *th_init_race_init(void *arg)
{
	struct th_init_race *r = arg;

	__atomic_fetch_add(&r->inits, 1, __ATOMIC_RELAXED);
	if (r->slow)
		th_nap(2000);
	r->made = 0x5eed; /* plain write: the call's ordering must publish it */
	return &r->value;
}

static inline void th_init_racer(void *arg, int i)
{
	struct th_init_race *r = arg;

	r->got[i] = r->lazy ? wof_lazy_lock_force(&r->obj.lazy)
	                    : wof_once_lock_get_or_init(&r->obj.lock, th_init_race_init, r);
	r->seen[i] = r->made;
}

/* For each count of threads, `rounds` races on a fresh object: one init, whose writes every
 * thread sees. The init sleeps in every other round, or always for a lazy lock. */
static inline void th_racing_threads_run_one_init(bool lazy, int rounds)
{
	static const int counts[] = { 2, 3, 4, 8, 16, 32 };
	static struct th_init_race r;

	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		int n = counts[c];
		for (int round = 0; round < rounds; round++) {
			r = (struct th_init_race){ .lazy = lazy, .slow = lazy || round % 2 };
			if (lazy)
				r.obj.lazy = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(th_init_race_init, &r);
			else
				r.obj.lock = (wof_once_lock_t)WOF_ONCE_LOCK_INIT;
			th_barrier_race(n, th_init_racer, &r);
			cr_assert_eq(r.inits, 1, "%d threads, round %d: %u inits", n, round, r.inits);
			for (int i = 0; i < n; i++) {
				cr_assert_eq(r.got[i], &r.value, "%d threads: thread %d", n, i);
				cr_assert_eq(r.seen[i], 0x5eed, "init's writes are visible");
			}
			cr_assert_eq(lazy ? wof_lazy_lock_get(&r.obj.lazy) : wof_once_lock_get(&r.obj.lock),
			             &r.value);
		}
	}
}

/* ---- an init whose thread is cancelled or exits: nothing stored, a waiter runs its own ---- */

struct th_cancel {
	union {
		wof_once_lock_t lock;
		wof_lazy_lock_t lazy;
	} obj;
	bool lazy;     /* force obj.lazy, else get_or_init on obj.lock */
	bool use_exit; /* the first init calls pthread_exit instead of being cancelled */
	bool go_exit;
	sem_t in_init;
	unsigned inits;
	int value;
};

/* The first run never returns: it naps in a cancellation point, or exits when told to. */
static inline void *th_cancel_init(void *arg)
{
	struct th_cancel *c = arg;

	if (__atomic_fetch_add(&c->inits, 1, __ATOMIC_RELAXED) > 0)
		return &c->value;
	sem_post(&c->in_init);
	for (;;) {
		if (c->use_exit && __atomic_load_n(&c->go_exit, __ATOMIC_ACQUIRE))
			pthread_exit(NULL);
		th_cancel_nap();
	}
}

static inline void *th_cancel_get(struct th_cancel *c)
{
	return c->lazy ? wof_lazy_lock_get(&c->obj.lazy) : wof_once_lock_get(&c->obj.lock);
}

static inline void *th_cancel_waiter(void *arg)
{
	struct th_cancel *c = arg;

	return c->lazy ? wof_lazy_lock_force(&c->obj.lazy)
	               : wof_once_lock_get_or_init(&c->obj.lock, th_cancel_init, c);
}

static inline void *th_cancel_victim(void *arg)
{
	(void)th_cancel_waiter(arg);
	return &value_c; /* not reached */
}

static inline void th_cancelled_init_waiter_takes_over(bool lazy, bool use_exit)
{
	static struct th_cancel c;
	pthread_t victim, waiter;
	void *ret;

	c = (struct th_cancel){ .lazy = lazy, .use_exit = use_exit };
	if (lazy)
		c.obj.lazy = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(th_cancel_init, &c);
	else
		c.obj.lock = (wof_once_lock_t)WOF_ONCE_LOCK_INIT;
	sem_init(&c.in_init, 0, 0);
	cr_assert_eq(pthread_create(&victim, NULL, th_cancel_victim, &c), 0);
	sem_wait(&c.in_init);
	cr_assert_eq(pthread_create(&waiter, NULL, th_cancel_waiter, &c), 0);
	th_nap(30000); /* let the waiter park */
	cr_assert_null(th_cancel_get(&c));
	if (use_exit)
		__atomic_store_n(&c.go_exit, true, __ATOMIC_RELEASE);
	else
		cr_assert_eq(pthread_cancel(victim), 0);
	pthread_join(victim, &ret);
	cr_assert_eq(ret, use_exit ? NULL : PTHREAD_CANCELED);
	pthread_join(waiter, &ret);
	cr_assert_eq(ret, &c.value);
	cr_assert_eq(c.inits, 2, "the waiter ran its own init");
	cr_assert_eq(th_cancel_get(&c), &c.value);
	sem_destroy(&c.in_init);
}

/* ---- the lazy values: wof_lazy_lock_t and wof_lazy_cell_t ---- */

union th_lazy_obj {
	wof_lazy_lock_t lock;
	wof_lazy_cell_t cell;
};

struct th_lazy_ops {
	const char *name;
	void (*init)(void *obj, void *(*init)(void *), void *arg); /* WOF_LAZY_*_INIT(init, arg) */
	void *(*get)(void *obj);
	void *(*force)(void *obj);
};

/* The ops of wof_<type>_t, named th_<type>_ops. */
#define TH_LAZY_OPS(type, INIT)                                                                \
	static void th_##type##_init(void *o, void *(*f)(void *), void *a)                     \
	{                                                                                      \
		*(wof_##type##_t *)o = (wof_##type##_t)INIT(f, a);                             \
	}                                                                                      \
	static void *th_##type##_get(void *o) { return wof_##type##_get((wof_##type##_t *)o); } \
	static void *th_##type##_force(void *o) { return wof_##type##_force((wof_##type##_t *)o); } \
	static const struct th_lazy_ops th_##type##_ops = {                                    \
		#type, th_##type##_init, th_##type##_get, th_##type##_force,                   \
	}

/* `lazy` is fresh, made by WOF_LAZY_*_INIT(init_arg, &value_a). */
static inline void th_lazy_get_before_force_is_null_then_force_inits_once(const struct th_lazy_ops *t,
                                                                          void *lazy)
{
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(lazy));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 0, "get never runs init");
	cr_assert_eq(t->force(lazy), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->force(lazy), &value_a);
	cr_assert_eq(t->get(lazy), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 1);
}

/* `lazy` is fresh, made by WOF_LAZY_*_INIT(flaky_init, &value_b). */
static inline void th_lazy_init_returning_null_is_retried_by_the_next_force(const struct th_lazy_ops *t,
                                                                           void *lazy)
{
	flaky_failures_left = 2;
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->force(lazy));
	cr_assert_eq(errno, EIO, "errno is what init left");
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(lazy), "nothing stored");
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->force(lazy));
	cr_assert_eq(errno, EIO);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(t->force(lazy), &value_b);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(t->get(lazy), &value_b);
	cr_assert_eq(t->force(lazy), &value_b);
	cr_assert_eq(init_calls, 3);
}

/* All-zero (calloc, static storage without an initialiser): no init, so force is EINVAL. */
static inline void th_lazy_all_zero_has_no_init_einval(const struct th_lazy_ops *t)
{
	union th_lazy_obj *lazy = calloc(1, sizeof *lazy);
	static union th_lazy_obj zero_static;

	cr_assert_not_null(lazy);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(lazy));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(t->force(lazy));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->force(&zero_static));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(&zero_static));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	free(lazy);
}

static inline void th_lazy_null_is_einval(const struct th_lazy_ops *t)
{
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->force(NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(t->get(NULL));
	cr_assert_eq(errno, EINVAL);
}

/* Re-entry: force from inside the object's own init is NULL with EDEADLK; get is NULL. */
static struct th_lazy_reentry {
	const struct th_lazy_ops *t;
	union th_lazy_obj obj;
	void *r_force, *r_get;
	int e_force, e_get;
} th_lazy_reentry;

static inline void *th_lazy_reentrant_init(void *arg)
{
	struct th_lazy_reentry *r = &th_lazy_reentry;

	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	errno = TH_ERRNO_SENTINEL;
	r->r_force = r->t->force(&r->obj);
	r->e_force = errno;
	errno = TH_ERRNO_SENTINEL;
	r->r_get = r->t->get(&r->obj);
	r->e_get = errno;
	return arg;
}

static inline void th_lazy_reentry_is_edeadlk(const struct th_lazy_ops *t)
{
	struct th_lazy_reentry *r = &th_lazy_reentry;

	r->t = t;
	t->init(&r->obj, th_lazy_reentrant_init, &value_a);
	cr_assert_eq(t->force(&r->obj), &value_a);
	cr_assert_null(r->r_force);
	cr_assert_eq(r->e_force, EDEADLK);
	cr_assert_null(r->r_get, "get from inside init: NULL, no hang");
	cr_assert_eq(r->e_get, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 1, "no recursion");
	cr_assert_eq(t->get(&r->obj), &value_a);
}

/* TH_LAZY_TEST(suite, name, behaviour, ops): a test case that runs th_lazy_<behaviour>(ops). */
#define TH_LAZY_TEST(suite, name, behaviour, ops, ...)                                         \
	Test(suite, name, ##__VA_ARGS__)                                                       \
	{                                                                                      \
		th_lazy_##behaviour(ops);                                                      \
	}

/* The same behaviours under the names each type's tests have always had. */
#define th_values_set_stores_and_get_returns_it th_values_set_then_get
#define th_values_einval_for_null_lock_or_init th_values_einval_for_null_object_or_init
#define th_values_einval_for_null_cell_or_init th_values_einval_for_null_object_or_init
#define th_values_all_zero_lock_is_empty_and_usable th_values_all_zero_is_empty_and_usable
#define th_values_all_zero_cell_is_empty_and_usable th_values_all_zero_is_empty_and_usable
