/* SPDX-License-Identifier: MIT */
/*
 * wof_once_lock_t keeps every clause of docs/api.md's OnceLock section: set-once storage with
 * EEXIST/EINVAL, take, get_or_init with exactly one init among racing threads, failed inits
 * retried (by a waiting caller too), get_or_try_init's error paths, wait, EDEADLK on re-entry,
 * cancellation inside init, errno left alone on success, all-zero locks, and a forked child
 * seeing the lock uninitialised while its parent keeps the value.
 */
#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>

#include "wof-test-values.h"

static void *lock_wait(void *lock)
{
	return wof_once_lock_wait(lock);
}

TH_VALUE_OPS(once_lock, WOF_ONCE_LOCK_INIT, lock_wait);
#define OPS (&th_once_lock_ops)

/* ---- the behaviours shared with OnceCell (wof-test-values.h) ------------------------------ */

TH_VALUE_TEST(once_lock, get_on_empty_is_null_errno_unchanged, OPS)
TH_VALUE_TEST(once_lock, set_stores_and_get_returns_it, OPS)
TH_VALUE_TEST(once_lock, set_twice_is_eexist_value_unchanged, OPS)
TH_VALUE_TEST(once_lock, set_null_is_einval, OPS)
TH_VALUE_TEST(once_lock, try_insert_reports_the_current_value, OPS)
TH_VALUE_TEST(once_lock, take_returns_the_value_and_empties, OPS)
TH_VALUE_TEST(once_lock, take_on_empty_is_null_errno_unchanged, OPS)
TH_VALUE_TEST(once_lock, get_or_init_runs_init_once_with_its_arg, OPS)
TH_VALUE_TEST(once_lock, init_returning_null_stores_nothing_and_is_retried, OPS)
TH_VALUE_TEST(once_lock, init_returning_null_leaves_set_possible, OPS)
TH_VALUE_TEST(once_lock, get_or_try_init_propagates_errors_unchanged, OPS)
TH_VALUE_TEST(once_lock, get_or_try_init_success_fills_out, OPS)
TH_VALUE_TEST(once_lock, get_or_try_init_zero_with_null_out_is_einval, OPS)
TH_VALUE_TEST(once_lock, get_or_try_init_einval_for_null_arguments, OPS)
TH_VALUE_TEST(once_lock, reentry_from_get_or_init_is_edeadlk, OPS, .timeout = 10)
TH_VALUE_TEST(once_lock, reentry_from_get_or_try_init_is_edeadlk, OPS, .timeout = 10)
TH_VALUE_TEST(once_lock, einval_for_null_lock_or_init, OPS)
TH_VALUE_TEST(once_lock, all_zero_lock_is_empty_and_usable, OPS)

/* ---- get_or_init among threads ------------------------------------------------------- */

Test(once_lock, get_or_init_racing_threads_run_one_init, .timeout = 30)
{
	th_racing_threads_run_one_init(false, 8);
}

struct set_race {
	wof_once_lock_t lock;
	void *got[32];
	int set_rc[32];
};

static void racer_set(void *arg, int i)
{
	struct set_race *race = arg;
	static int values[32];

	race->set_rc[i] = wof_once_lock_set(&race->lock, &values[i]);
	race->got[i] = wof_once_lock_get(&race->lock);
}

Test(once_lock, set_racing_threads_one_wins, .timeout = 30)
{
	for (int n = 2; n <= 32; n *= 2) {
		struct set_race race = { .lock = WOF_ONCE_LOCK_INIT };
		int winners = 0;

		th_barrier_race(n, racer_set, &race);
		void *winner = wof_once_lock_get(&race.lock);
		cr_assert_not_null(winner);
		for (int i = 0; i < n; i++) {
			cr_assert(race.set_rc[i] == 0 || race.set_rc[i] == EEXIST);
			winners += race.set_rc[i] == 0;
			cr_assert_eq(race.got[i], winner, "every thread gets the winner's value");
		}
		cr_assert_eq(winners, 1, "%d threads: %d winners", n, winners);
	}
}

/* A failing init that holds the lock until the waiters have arrived. */
struct takeover {
	wof_once_lock_t lock;
	sem_t started;
	unsigned waiters_started;
	unsigned good_inits;
	void *first_got;
	int first_errno;
	void *got[8];
	int value;
};

static void *takeover_failing_init(void *arg)
{
	struct takeover *t = arg;

	sem_post(&t->started);
	/* Wait until every waiter is about to call, then give them time to park. */
	while (__atomic_load_n(&t->waiters_started, __ATOMIC_ACQUIRE) < 8)
		th_nap(1000);
	th_nap(30000);
	errno = EAGAIN;
	return NULL;
}

static void *takeover_good_init(void *arg)
{
	struct takeover *t = arg;

	__atomic_fetch_add(&t->good_inits, 1, __ATOMIC_RELAXED);
	return &t->value;
}

static void *takeover_first(void *arg)
{
	struct takeover *t = arg;

	t->first_got = wof_once_lock_get_or_init(&t->lock, takeover_failing_init, t);
	t->first_errno = errno;
	return NULL;
}

struct takeover_waiter {
	struct takeover *t;
	int index;
};

static void *takeover_waiter(void *arg)
{
	struct takeover_waiter *w = arg;

	__atomic_fetch_add(&w->t->waiters_started, 1, __ATOMIC_RELEASE);
	w->t->got[w->index] = wof_once_lock_get_or_init(&w->t->lock, takeover_good_init, w->t);
	return NULL;
}

Test(once_lock, waiting_caller_takes_over_after_failed_init, .timeout = 20)
{
	struct takeover t = { .lock = WOF_ONCE_LOCK_INIT };
	struct takeover_waiter w[8];
	pthread_t first, waiters[8];

	sem_init(&t.started, 0, 0);
	cr_assert_eq(pthread_create(&first, NULL, takeover_first, &t), 0);
	sem_wait(&t.started);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct takeover_waiter){ &t, i };
		cr_assert_eq(pthread_create(&waiters[i], NULL, takeover_waiter, &w[i]), 0);
	}
	pthread_join(first, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(waiters[i], NULL);
	cr_assert_null(t.first_got);
	cr_assert_eq(t.first_errno, EAGAIN);
	cr_assert_eq(t.good_inits, 1, "exactly one waiter ran its own init");
	for (int i = 0; i < 8; i++)
		cr_assert_eq(t.got[i], &t.value);
	cr_assert_eq(wof_once_lock_get(&t.lock), &t.value);
	sem_destroy(&t.started);
}

/* ---- wait ------------------------------------------------------------------------------------ */

struct waiter {
	wof_once_lock_t *lock;
	void *got;
	int err;
	bool done;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	errno = TH_ERRNO_SENTINEL;
	w->got = wof_once_lock_wait(w->lock);
	w->err = errno;
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

Test(once_lock, wait_is_woken_by_set, .timeout = 20)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	struct waiter w[4];
	pthread_t threads[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .lock = &lock };
		cr_assert_eq(pthread_create(&threads[i], NULL, wait_thread, &w[i]), 0);
	}
	th_nap(50000);
	for (int i = 0; i < 4; i++)
		cr_assert_not(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE),
		              "wait returned before anything was set");
	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		cr_assert_eq(w[i].got, &value_a);
		cr_assert_eq(w[i].err, TH_ERRNO_SENTINEL);
	}
}

Test(once_lock, wait_is_woken_by_get_or_init_not_by_a_failed_init, .timeout = 20)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	struct waiter w = { .lock = &lock };
	pthread_t thread;

	cr_assert_eq(pthread_create(&thread, NULL, wait_thread, &w), 0);
	th_nap(20000);
	cr_assert_null(wof_once_lock_get_or_init(&lock, init_fails_enomem, NULL));
	th_nap(30000);
	cr_assert_not(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "a failed init ended the wait");
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_arg, &value_b), &value_b);
	pthread_join(thread, NULL);
	cr_assert_eq(w.got, &value_b);
	cr_assert_eq(w.err, TH_ERRNO_SENTINEL);
}

Test(once_lock, wait_returns_at_once_when_set)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	cr_assert_eq(wof_once_lock_set(&lock, &value_c), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_wait(&lock), &value_c);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_wait(NULL));
	cr_assert_eq(errno, EINVAL);
}

/* ---- cancellation --------------------------------------------------------------------------- */

Test(once_lock, cancelled_init_stores_nothing_waiter_takes_over, .timeout = 20)
{
	th_cancelled_init_waiter_takes_over(false, false);
}

Test(once_lock, pthread_exit_in_init_stores_nothing_waiter_takes_over, .timeout = 20)
{
	th_cancelled_init_waiter_takes_over(false, true);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static wof_once_lock_t forked = WOF_ONCE_LOCK_INIT;

/* The first call in a child is `*kind`: whatever it is, the lock is empty there. */
enum { FIRST_GET, FIRST_GET_OR_INIT, FIRST_TRY_INSERT, FIRST_TRY_INIT, FIRST_TAKE, FIRST_N };

static int child_first_call(void *kind)
{
	unsigned before = init_calls;
	void *out = NULL, *want = &value_b;

	errno = TH_ERRNO_SENTINEL;
	switch (*(const int *)kind) {
	case FIRST_GET:
		TH_CHILD_CHECK(wof_once_lock_get(&forked) == NULL);
		TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
		TH_CHILD_CHECK(wof_once_lock_take(&forked) == NULL);
		/* fall through */
	case FIRST_GET_OR_INIT:
		TH_CHILD_CHECK(wof_once_lock_get_or_init(&forked, init_arg, &value_b) == &value_b);
		TH_CHILD_CHECK(init_calls == before + 1);
		TH_CHILD_CHECK(wof_once_lock_set(&forked, &value_c) == EEXIST);
		break;
	case FIRST_TRY_INSERT:
		want = &value_c;
		TH_CHILD_CHECK(wof_once_lock_try_insert(&forked, &value_c, &out) == 0 && out == &value_c);
		TH_CHILD_CHECK(wof_once_lock_wait(&forked) == &value_c);
		break;
	case FIRST_TRY_INIT:
		want = &value_c;
		TH_CHILD_CHECK(wof_once_lock_get_or_try_init(&forked, try_ok, &value_c, &out) == 0);
		TH_CHILD_CHECK(out == &value_c);
		break;
	case FIRST_TAKE:
		TH_CHILD_CHECK(wof_once_lock_take(&forked) == NULL);
		TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
		TH_CHILD_CHECK(wof_once_lock_set(&forked, &value_b) == 0);
		break;
	default:
		TH_CHILD_CHECK(false);
	}
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == want);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	return 0;
}

TH_FORK_TEST(once_lock, fork_child_sees_it_uninitialised, .timeout = 30)
{
	cr_assert_eq(wof_once_lock_get_or_init(&forked, init_a, NULL), &value_a);
	for (int kind = 0; kind < FIRST_N; kind++)
		TH_ASSERT_CHILD(how, child_first_call, &kind);
	cr_assert_eq(wof_once_lock_get(&forked), &value_a, "the parent keeps its value");
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(wof_once_lock_set(&forked, &value_b), EEXIST);
}

static int child_get_or_init_then_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;
	static const int first = FIRST_TRY_INSERT;

	TH_CHILD_CHECK(wof_once_lock_get_or_init(&forked, init_arg, &value_b) == &value_b);
	TH_CHILD_CHECK(th_in_child(how, child_first_call, (void *)&first) == 0);
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == &value_b);
	return 0;
}

TH_FORK_TEST(once_lock, fork_grandchild_sees_it_uninitialised, .timeout = 30)
{
	cr_assert_eq(wof_once_lock_set(&forked, &value_a), 0);
	TH_ASSERT_CHILD(how, child_get_or_init_then_grandchild, &how);
	cr_assert_eq(wof_once_lock_get(&forked), &value_a);
}
