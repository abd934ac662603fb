/* SPDX-License-Identifier: MIT */
/*
 * wof_lazy_lock_t keeps docs/api.md's LazyLock clauses: force runs init(arg) once per process even
 * among racing threads, get never runs it, a NULL from init is retried by the next force,
 * an all-zero lazy lock (no init) fails with EINVAL, re-entry is EDEADLK, a cancelled init
 * stores nothing, and a forked child runs init again while its parent keeps the value.
 */
#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>

#include "wof-test.h"

static int value_a, value_b;
static unsigned init_calls;

static void *init_arg(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return arg;
}

Test(lazy_lock, get_before_force_is_null_then_force_inits_once)
{
	static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(init_arg, &value_a);

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_get(&lazy));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 0, "get never runs init");
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_a);
	cr_assert_eq(wof_lazy_lock_get(&lazy), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 1);
}

Test(lazy_lock, automatic_storage_works_too)
{
	wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(init_arg, &value_b);

	cr_assert_null(wof_lazy_lock_get(&lazy));
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_b);
	cr_assert_eq(wof_lazy_lock_get(&lazy), &value_b);
	cr_assert_eq(init_calls, 1);
}

struct race {
	wof_lazy_lock_t lazy;
	pthread_barrier_t barrier;
	unsigned inits;
	int value;
	int made;
	void *got[32];
	int seen[32];
};

struct racer {
	struct race *race;
	int index;
};

static void *race_init(void *arg)
{
	struct race *race = arg;

	__atomic_fetch_add(&race->inits, 1, __ATOMIC_RELAXED);
	th_nap(1000);
	race->made = 77;
	return &race->value;
}

static void *racer(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(&r->race->barrier);
	r->race->got[r->index] = wof_lazy_lock_force(&r->race->lazy);
	r->race->seen[r->index] = r->race->made;
	return NULL;
}

Test(lazy_lock, force_racing_threads_run_one_init, .timeout = 30)
{
	static const int counts[] = { 2, 4, 8, 16, 32 };

	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		int n = counts[c];
		for (int round = 0; round < 4; round++) {
			static struct race race;
			pthread_t threads[32];
			struct racer racers[32];

			race = (struct race){ .lazy = WOF_LAZY_LOCK_INIT(race_init, &race) };
			pthread_barrier_init(&race.barrier, NULL, (unsigned)n);
			for (int i = 0; i < n; i++) {
				racers[i] = (struct racer){ &race, i };
				cr_assert_eq(pthread_create(&threads[i], NULL, racer, &racers[i]), 0);
			}
			for (int i = 0; i < n; i++)
				pthread_join(threads[i], NULL);
			pthread_barrier_destroy(&race.barrier);
			cr_assert_eq(race.inits, 1, "%d threads: %u inits", n, race.inits);
			for (int i = 0; i < n; i++) {
				cr_assert_eq(race.got[i], &race.value);
				cr_assert_eq(race.seen[i], 77);
			}
		}
	}
}

static unsigned flaky_failures_left;

static void *flaky_init(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	if (flaky_failures_left > 0) {
		flaky_failures_left--;
		errno = EIO;
		return NULL;
	}
	return arg;
}

Test(lazy_lock, init_returning_null_is_retried_by_the_next_force)
{
	static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(flaky_init, &value_b);

	flaky_failures_left = 2;
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_force(&lazy));
	cr_assert_eq(errno, EIO, "errno is what init left");
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_get(&lazy), "nothing stored");
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_lazy_lock_force(&lazy));
	cr_assert_eq(errno, EIO);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_b);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_lazy_lock_get(&lazy), &value_b);
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_b);
	cr_assert_eq(init_calls, 3);
}

Test(lazy_lock, all_zero_lazy_lock_has_no_init_einval)
{
	wof_lazy_lock_t *lazy = calloc(1, sizeof *lazy);
	static wof_lazy_lock_t zero_static;

	cr_assert_not_null(lazy);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_get(lazy));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_lazy_lock_force(lazy));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_force(&zero_static));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_get(&zero_static));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	free(lazy);
}

Test(lazy_lock, null_lazy_lock_is_einval)
{
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_force(NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_lock_get(NULL));
	cr_assert_eq(errno, EINVAL);
}

static wof_lazy_lock_t reentrant;
static void *reentry_force;
static int reentry_force_errno;
static void *reentry_get;
static int reentry_get_errno;

static void *reentrant_init(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	errno = TH_ERRNO_SENTINEL;
	reentry_force = wof_lazy_lock_force(&reentrant);
	reentry_force_errno = errno;
	errno = TH_ERRNO_SENTINEL;
	reentry_get = wof_lazy_lock_get(&reentrant);
	reentry_get_errno = errno;
	return arg;
}

static wof_lazy_lock_t reentrant = WOF_LAZY_LOCK_INIT(reentrant_init, &value_a);

Test(lazy_lock, reentry_is_edeadlk, .timeout = 10)
{
	cr_assert_eq(wof_lazy_lock_force(&reentrant), &value_a);
	cr_assert_null(reentry_force);
	cr_assert_eq(reentry_force_errno, EDEADLK);
	cr_assert_null(reentry_get, "get from inside init: NULL, no hang");
	cr_assert_eq(reentry_get_errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(wof_lazy_lock_get(&reentrant), &value_a);
}

/* Cancellation: the first thread's init blocks until cancelled; a waiter's force runs init. */
static sem_t in_init;
static unsigned cancel_inits;

static void *cancel_init(void *arg)
{
	if (__atomic_fetch_add(&cancel_inits, 1, __ATOMIC_RELAXED) == 0) {
		sem_post(&in_init);
		for (;;)
			th_cancel_nap(); /* a cancellation point */
	}
	return arg;
}

static wof_lazy_lock_t cancellable = WOF_LAZY_LOCK_INIT(cancel_init, &value_b);

static void *force_thread(void *arg)
{
	(void)arg;
	return wof_lazy_lock_force(&cancellable);
}

Test(lazy_lock, cancelled_init_stores_nothing_waiter_runs_init, .timeout = 20)
{
	pthread_t victim, waiter;
	void *ret;

	sem_init(&in_init, 0, 0);
	cr_assert_eq(pthread_create(&victim, NULL, force_thread, NULL), 0);
	sem_wait(&in_init);
	cr_assert_eq(pthread_create(&waiter, NULL, force_thread, NULL), 0);
	th_nap(30000);
	cr_assert_null(wof_lazy_lock_get(&cancellable));
	cr_assert_eq(pthread_cancel(victim), 0);
	pthread_join(victim, &ret);
	cr_assert_eq(ret, PTHREAD_CANCELED);
	pthread_join(waiter, &ret);
	cr_assert_eq(ret, &value_b);
	cr_assert_eq(cancel_inits, 2);
	cr_assert_eq(wof_lazy_lock_get(&cancellable), &value_b);
	sem_destroy(&in_init);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static int child_value;

/* The value depends on the process: the parent's and the child's differ. */
static void *per_process_init(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	child_value = (int)getpid();
	return &child_value;
}

static wof_lazy_lock_t per_process = WOF_LAZY_LOCK_INIT(per_process_init, NULL);

static int child_reinitialises(void *arg)
{
	bool get_first = arg != NULL;
	unsigned before = init_calls;

	if (get_first) {
		errno = TH_ERRNO_SENTINEL;
		TH_CHILD_CHECK(wof_lazy_lock_get(&per_process) == NULL);
		TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
		TH_CHILD_CHECK(init_calls == before);
	}
	int *v = wof_lazy_lock_force(&per_process);
	TH_CHILD_CHECK(v == &child_value);
	TH_CHILD_CHECK(*v == (int)getpid());
	TH_CHILD_CHECK(init_calls == before + 1);
	TH_CHILD_CHECK(wof_lazy_lock_force(&per_process) == v);
	TH_CHILD_CHECK(wof_lazy_lock_get(&per_process) == v);
	TH_CHILD_CHECK(init_calls == before + 1);
	return 0;
}

TH_FORK_TEST(lazy_lock, fork_child_runs_init_again, .timeout = 30)
{
	int *v = wof_lazy_lock_force(&per_process);

	cr_assert_eq(*v, (int)getpid());
	TH_ASSERT_CHILD(how, child_reinitialises, NULL);
	TH_ASSERT_CHILD(how, child_reinitialises, &how);
	cr_assert_eq(wof_lazy_lock_get(&per_process), &child_value);
	cr_assert_eq(child_value, (int)getpid(), "the parent keeps its value");
	cr_assert_eq(init_calls, 1);
}

static int child_forks_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(child_reinitialises(NULL) == 0);
	TH_CHILD_CHECK(th_in_child(how, child_reinitialises, &how) == 0);
	TH_CHILD_CHECK(child_value == (int)getpid());
	return 0;
}

TH_FORK_TEST(lazy_lock, fork_grandchild_runs_init_again, .timeout = 30)
{
	cr_assert_not_null(wof_lazy_lock_force(&per_process));
	TH_ASSERT_CHILD(how, child_forks_grandchild, &how);
	cr_assert_eq(child_value, (int)getpid());
}
