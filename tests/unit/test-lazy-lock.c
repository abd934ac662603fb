/* SPDX-License-Identifier: MIT */
/*
 * wof_lazy_lock_t keeps docs/api.md's LazyLock clauses: force runs init(arg) once per process even
 * among racing threads, get never runs it, a NULL from init is retried by the next force,
 * an all-zero lazy lock (no init) fails with EINVAL, re-entry is EDEADLK, a cancelled init
 * stores nothing, and a forked child runs init again while its parent keeps the value.
 */
#include <criterion/criterion.h>

#include "wof-test-values.h"

TH_LAZY_OPS(lazy_lock, WOF_LAZY_LOCK_INIT);
#define LAZY (&th_lazy_lock_ops)

/* ---- the behaviours shared with LazyCell (wof-test-values.h) ---------------------------- */

Test(lazy_lock, get_before_force_is_null_then_force_inits_once)
{
	static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(init_arg, &value_a);

	th_lazy_get_before_force_is_null_then_force_inits_once(LAZY, &lazy);
}

Test(lazy_lock, init_returning_null_is_retried_by_the_next_force)
{
	static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(flaky_init, &value_b);

	th_lazy_init_returning_null_is_retried_by_the_next_force(LAZY, &lazy);
}

TH_LAZY_TEST(lazy_lock, all_zero_lazy_lock_has_no_init_einval, all_zero_has_no_init_einval, LAZY)
TH_LAZY_TEST(lazy_lock, null_lazy_lock_is_einval, null_is_einval, LAZY)
TH_LAZY_TEST(lazy_lock, reentry_is_edeadlk, reentry_is_edeadlk, LAZY, .timeout = 10)

Test(lazy_lock, automatic_storage_works_too)
{
	wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(init_arg, &value_b);

	cr_assert_null(wof_lazy_lock_get(&lazy));
	cr_assert_eq(wof_lazy_lock_force(&lazy), &value_b);
	cr_assert_eq(wof_lazy_lock_get(&lazy), &value_b);
	cr_assert_eq(init_calls, 1);
}

/* ---- force among threads ------------------------------------------------------------- */

Test(lazy_lock, force_racing_threads_run_one_init, .timeout = 30)
{
	th_racing_threads_run_one_init(true, 4);
}

/* Cancellation: the first thread's init blocks until cancelled; a waiter's force runs init. */
Test(lazy_lock, cancelled_init_stores_nothing_waiter_runs_init, .timeout = 20)
{
	th_cancelled_init_waiter_takes_over(true, false);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static wof_lazy_lock_t per_process = WOF_LAZY_LOCK_INIT(pid_init, NULL);

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
	TH_CHILD_CHECK(v == &pid_value);
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
	cr_assert_eq(wof_lazy_lock_get(&per_process), &pid_value);
	cr_assert_eq(pid_value, (int)getpid(), "the parent keeps its value");
	cr_assert_eq(init_calls, 1);
}

static int child_forks_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(child_reinitialises(NULL) == 0);
	TH_CHILD_CHECK(th_in_child(how, child_reinitialises, &how) == 0);
	TH_CHILD_CHECK(pid_value == (int)getpid());
	return 0;
}

TH_FORK_TEST(lazy_lock, fork_grandchild_runs_init_again, .timeout = 30)
{
	cr_assert_not_null(wof_lazy_lock_force(&per_process));
	TH_ASSERT_CHILD(how, child_forks_grandchild, &how);
	cr_assert_eq(pid_value, (int)getpid());
}
