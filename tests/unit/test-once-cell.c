/* SPDX-License-Identifier: MIT */
/*
 * wof_once_cell_t and wof_lazy_cell_t, the single-threaded values, keep the OnceLock/LazyLock
 * contract (docs/api.md, wof_once_cell(3)) where it applies to one thread: set/get/EEXIST/
 * EINVAL, take, try_insert, get_or_init and get_or_try_init with retries after a failed init,
 * NULL with EDEADLK on re-entry, all-zero cells; an init that unwinds (pthread_exit,
 * cancellation) leaves the cell empty and usable; `_Thread_local` cells give each thread its
 * own value; and a forked child sees every cell uninitialised and makes its own value, while
 * the parent keeps its own.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "wof-test-values.h"

TH_VALUE_OPS(once_cell, WOF_ONCE_CELL_INIT, NULL);
#define OPS (&th_once_cell_ops)

/* ---- OnceCell: the behaviours shared with OnceLock (wof-test-values.h) --------------------- */

TH_VALUE_TEST(once_cell, get_on_empty_is_null_errno_unchanged, OPS)
TH_VALUE_TEST(once_cell, set_then_get, OPS)
TH_VALUE_TEST(once_cell, set_twice_is_eexist_value_unchanged, OPS)
TH_VALUE_TEST(once_cell, set_null_is_einval, OPS)
TH_VALUE_TEST(once_cell, try_insert_reports_the_current_value, OPS)
TH_VALUE_TEST(once_cell, get_or_init_runs_init_once_with_its_arg, OPS)
TH_VALUE_TEST(once_cell, einval_for_null_cell_or_init, OPS)
TH_VALUE_TEST(once_cell, reentry_from_get_or_init_is_edeadlk, OPS, .timeout = 10)
TH_VALUE_TEST(once_cell, reentry_from_get_or_try_init_is_edeadlk, OPS, .timeout = 10)
TH_VALUE_TEST(once_cell, all_zero_cell_is_empty_and_usable, OPS)

Test(once_cell, take_returns_the_value_and_empties)
{
	th_values_take_on_empty_is_null_errno_unchanged(OPS);
	th_values_take_returns_the_value_and_empties(OPS);
}

Test(once_cell, init_returning_null_stores_nothing_and_is_retried)
{
	th_values_init_returning_null_stores_nothing_and_is_retried(OPS);
	th_values_init_returning_null_leaves_set_possible(OPS);
}

Test(once_cell, get_or_try_init_errors_success_and_null_out)
{
	th_values_get_or_try_init_propagates_errors_unchanged(OPS);
	th_values_get_or_try_init_success_fills_out(OPS);
	th_values_get_or_try_init_zero_with_null_out_is_einval(OPS);
	th_values_get_or_try_init_einval_for_null_arguments(OPS);
}

/* ---- LazyCell: the behaviours shared with LazyLock (wof-test-values.h) --------------------- */

TH_LAZY_OPS(lazy_cell, WOF_LAZY_CELL_INIT);
#define LAZY (&th_lazy_cell_ops)

Test(lazy_cell, get_before_force_is_null_then_force_inits_once)
{
	wof_lazy_cell_t lazy = WOF_LAZY_CELL_INIT(init_arg, &value_a);

	th_lazy_get_before_force_is_null_then_force_inits_once(LAZY, &lazy);
}

Test(lazy_cell, init_returning_null_is_retried_by_the_next_force)
{
	wof_lazy_cell_t lazy = WOF_LAZY_CELL_INIT(flaky_init, &value_b);

	th_lazy_init_returning_null_is_retried_by_the_next_force(LAZY, &lazy);
}

Test(lazy_cell, all_zero_or_null_lazy_cell_is_einval)
{
	th_lazy_all_zero_has_no_init_einval(LAZY);
	th_lazy_null_is_einval(LAZY);
}

TH_LAZY_TEST(lazy_cell, reentry_is_null_with_edeadlk, reentry_is_edeadlk, LAZY, .timeout = 10)

/* ---- an init that unwinds ---------------------------------------------------------------------- */

/*
 * An init that never returns, because its thread calls pthread_exit or is cancelled inside it,
 * must not leave the cell "init in progress": afterwards (here: in the thread that joined the
 * unwound one) every call works as on an empty cell. The init unwinds on its first run only.
 */
static wof_once_cell_t unwind_cell;
static wof_lazy_cell_t unwind_lazy;
static bool unwind_by_cancel;
static int unwind_started, unwind_runs;

static void *unwind_init(void *arg)
{
	if (unwind_runs++ == 0) {
		if (!unwind_by_cancel)
			pthread_exit(&value_c);
		/* Cancelled here: say so, then sleep in a cancellation point. */
		th_set(&unwind_started, 1);
		for (;;)
			th_cancel_nap();
	}
	return arg;
}

static int unwind_try_init(void *arg, void **out)
{
	*out = unwind_init(arg);
	return 0;
}

enum unwind_call { UNWIND_GET_OR_INIT, UNWIND_GET_OR_TRY_INIT, UNWIND_FORCE };

static void *unwind_thread(void *arg)
{
	enum unwind_call call = *(enum unwind_call *)arg;
	void *out = NULL;

	if (call == UNWIND_GET_OR_INIT)
		return wof_once_cell_get_or_init(&unwind_cell, unwind_init, &value_a);
	if (call == UNWIND_GET_OR_TRY_INIT)
		return wof_once_cell_get_or_try_init(&unwind_cell, unwind_try_init, &value_a, &out)
		       ? NULL : out;
	return wof_lazy_cell_force(&unwind_lazy);
}

/* Runs `call` on fresh cells in a thread whose init unwinds, and joins it. */
static void unwind_in_thread(enum unwind_call call, bool cancel)
{
	pthread_t thread;
	void *result = NULL;

	unwind_cell = (wof_once_cell_t)WOF_ONCE_CELL_INIT;
	unwind_lazy = (wof_lazy_cell_t)WOF_LAZY_CELL_INIT(unwind_init, &value_b);
	unwind_by_cancel = cancel;
	unwind_started = 0;
	unwind_runs = 0;
	cr_assert_eq(pthread_create(&thread, NULL, unwind_thread, &call), 0);
	if (cancel) {
		cr_assert(th_await(&unwind_started, 1, 5.0), "the init never started");
		cr_assert_eq(pthread_cancel(thread), 0);
	}
	cr_assert_eq(pthread_join(thread, &result), 0);
	cr_assert_eq(result, cancel ? PTHREAD_CANCELED : (void *)&value_c, "the init unwound");
	cr_assert_eq(unwind_runs, 1);
}

/* After the unwind: empty, and every call behaves as on an empty cell. */
static void check_cell_usable_after_unwind(void)
{
	void *out = NULL;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_cell_get(&unwind_cell), "nothing was stored");
	cr_assert_eq(wof_once_cell_get_or_init(&unwind_cell, unwind_init, &value_b), &value_b,
	             "not EDEADLK: the cell is not left busy");
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(unwind_runs, 2);
	cr_assert_eq(wof_once_cell_take(&unwind_cell), &value_b);
	cr_assert_eq(wof_once_cell_set(&unwind_cell, &value_a), 0);
	cr_assert_eq(wof_once_cell_try_insert(&unwind_cell, &value_b, &out), EEXIST);
	cr_assert_eq(out, &value_a);
	cr_assert_eq(wof_once_cell_take(&unwind_cell), &value_a);
	cr_assert_eq(wof_once_cell_get_or_try_init(&unwind_cell, try_ok, &value_c, &out), 0);
	cr_assert_eq(out, &value_c);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

Test(once_cell, init_calling_pthread_exit_leaves_the_cell_empty_and_usable, .timeout = 10)
{
	unwind_in_thread(UNWIND_GET_OR_INIT, false);
	check_cell_usable_after_unwind();
	unwind_in_thread(UNWIND_GET_OR_TRY_INIT, false);
	check_cell_usable_after_unwind();
}

Test(once_cell, cancelled_init_leaves_the_cell_empty_and_usable, .timeout = 10)
{
	unwind_in_thread(UNWIND_GET_OR_INIT, true);
	check_cell_usable_after_unwind();
	unwind_in_thread(UNWIND_GET_OR_TRY_INIT, true);
	check_cell_usable_after_unwind();
}

static void check_lazy_usable_after_unwind(void)
{
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_lazy_cell_get(&unwind_lazy), "nothing was stored");
	cr_assert_eq(wof_lazy_cell_force(&unwind_lazy), &value_b,
	             "not EDEADLK: the cell is not left busy");
	cr_assert_eq(wof_lazy_cell_get(&unwind_lazy), &value_b);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(unwind_runs, 2);
}

Test(lazy_cell, init_calling_pthread_exit_leaves_the_lazy_cell_usable, .timeout = 10)
{
	unwind_in_thread(UNWIND_FORCE, false);
	check_lazy_usable_after_unwind();
}

Test(lazy_cell, cancelled_init_leaves_the_lazy_cell_usable, .timeout = 10)
{
	unwind_in_thread(UNWIND_FORCE, true);
	check_lazy_usable_after_unwind();
}

/* ---- _Thread_local cells: one value per thread ------------------------------------------------ */

struct per_thread {
	int value;
	pthread_t owner;
};

static unsigned tls_inits;

static void *tls_init(void *arg)
{
	static struct per_thread slots[64];
	unsigned i = __atomic_fetch_add(&tls_inits, 1, __ATOMIC_RELAXED);

	(void)arg;
	if (i >= 64)
		return NULL;
	slots[i].value = (int)i;
	slots[i].owner = pthread_self();
	return &slots[i];
}

static _Thread_local wof_once_cell_t tls_cell = WOF_ONCE_CELL_INIT;
static _Thread_local wof_lazy_cell_t tls_lazy = WOF_LAZY_CELL_INIT(tls_init, NULL);

struct tls_result {
	pthread_barrier_t *barrier;
	struct per_thread *cell, *lazy;
	bool stable;
};

static void *tls_thread(void *arg)
{
	struct tls_result *r = arg;

	pthread_barrier_wait(r->barrier);
	r->cell = wof_once_cell_get_or_init(&tls_cell, tls_init, NULL);
	r->lazy = wof_lazy_cell_force(&tls_lazy);
	pthread_barrier_wait(r->barrier); /* all threads hold their values at once */
	r->stable = r->cell && r->lazy && wof_once_cell_get(&tls_cell) == r->cell &&
	            wof_lazy_cell_get(&tls_lazy) == r->lazy &&
	            pthread_equal(r->cell->owner, pthread_self()) &&
	            pthread_equal(r->lazy->owner, pthread_self());
	return NULL;
}

Test(once_cell, thread_local_cells_give_each_thread_its_own_value, .timeout = 20)
{
	enum { N = 8 };
	pthread_barrier_t barrier;
	pthread_t threads[N];
	struct tls_result results[N];

	pthread_barrier_init(&barrier, NULL, N);
	for (int i = 0; i < N; i++) {
		results[i] = (struct tls_result){ .barrier = &barrier };
		cr_assert_eq(pthread_create(&threads[i], NULL, tls_thread, &results[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&barrier);
	cr_assert_eq(tls_inits, 2 * N, "one init per thread per cell");
	for (int i = 0; i < N; i++) {
		cr_assert(results[i].stable, "thread %d", i);
		for (int j = 0; j < i; j++) {
			cr_assert_neq(results[i].cell, results[j].cell);
			cr_assert_neq(results[i].lazy, results[j].lazy);
		}
	}
	cr_assert_null(wof_once_cell_get(&tls_cell), "the main thread's cell is untouched");
	cr_assert_null(wof_lazy_cell_get(&tls_lazy));
}

/* ---- fork ------------------------------------------------------------------------------------- */

static wof_once_cell_t fork_cell = WOF_ONCE_CELL_INIT;
static wof_lazy_cell_t fork_lazy = WOF_LAZY_CELL_INIT(pid_init, NULL);
static _Thread_local wof_once_cell_t fork_tls_cell = WOF_ONCE_CELL_INIT;
static _Thread_local wof_lazy_cell_t fork_tls_lazy = WOF_LAZY_CELL_INIT(pid_init, NULL);

static int child_cells_reinitialise(void *arg)
{
	(void)arg;
	unsigned before = init_calls;

	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(wof_once_cell_get(&fork_cell) == NULL);
	TH_CHILD_CHECK(wof_lazy_cell_get(&fork_lazy) == NULL);
	TH_CHILD_CHECK(wof_once_cell_get(&fork_tls_cell) == NULL);
	TH_CHILD_CHECK(wof_lazy_cell_get(&fork_tls_lazy) == NULL);
	TH_CHILD_CHECK(wof_once_cell_take(&fork_cell) == NULL);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(init_calls == before);
	TH_CHILD_CHECK(wof_once_cell_get_or_init(&fork_cell, pid_init, NULL) == &pid_value);
	TH_CHILD_CHECK(pid_value == (int)getpid());
	TH_CHILD_CHECK(wof_lazy_cell_force(&fork_lazy) == &pid_value);
	TH_CHILD_CHECK(wof_once_cell_get_or_init(&fork_tls_cell, pid_init, NULL) == &pid_value);
	TH_CHILD_CHECK(wof_lazy_cell_force(&fork_tls_lazy) == &pid_value);
	TH_CHILD_CHECK(init_calls == before + 4);
	TH_CHILD_CHECK(wof_once_cell_set(&fork_cell, &value_a) == EEXIST);
	TH_CHILD_CHECK(wof_lazy_cell_force(&fork_lazy) == &pid_value);
	TH_CHILD_CHECK(init_calls == before + 4);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	return 0;
}

/* The first call in the child is a set, a force, a try_insert or a get_or_try_init. */
static int child_cells_first_call_kinds(void *arg)
{
	(void)arg;
	void *out = NULL;

	TH_CHILD_CHECK(wof_once_cell_set(&fork_cell, &value_b) == 0);
	TH_CHILD_CHECK(wof_once_cell_get(&fork_cell) == &value_b);
	TH_CHILD_CHECK(wof_lazy_cell_force(&fork_lazy) == &pid_value);
	TH_CHILD_CHECK(wof_once_cell_try_insert(&fork_tls_cell, &value_c, &out) == 0 && out == &value_c);
	TH_CHILD_CHECK(wof_once_cell_get(&fork_tls_cell) == &value_c);
	return 0;
}

static int child_cells_try_init_first(void *arg)
{
	(void)arg;
	void *out = NULL;

	TH_CHILD_CHECK(wof_once_cell_get_or_try_init(&fork_cell, try_ok, &value_c, &out) == 0);
	TH_CHILD_CHECK(out == &value_c);
	return 0;
}

static int child_and_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(child_cells_reinitialise(NULL) == 0);
	TH_CHILD_CHECK(th_in_child(how, child_cells_reinitialise, NULL) == 0);
	TH_CHILD_CHECK(pid_value == (int)getpid());
	TH_CHILD_CHECK(wof_once_cell_get(&fork_cell) == &pid_value);
	return 0;
}

TH_FORK_TEST(once_cell, fork_child_sees_cells_uninitialised, .timeout = 30)
{
	cr_assert_eq(wof_once_cell_get_or_init(&fork_cell, init_arg, &value_a), &value_a);
	cr_assert_eq(wof_lazy_cell_force(&fork_lazy), &pid_value);
	cr_assert_eq(wof_once_cell_set(&fork_tls_cell, &value_a), 0);
	cr_assert_eq(wof_lazy_cell_force(&fork_tls_lazy), &pid_value);
	cr_assert_eq(init_calls, 3);
	TH_ASSERT_CHILD(how, child_cells_reinitialise, NULL);
	TH_ASSERT_CHILD(how, child_cells_first_call_kinds, NULL);
	TH_ASSERT_CHILD(how, child_cells_try_init_first, NULL);
	TH_ASSERT_CHILD(how, child_and_grandchild, &how);
	cr_assert_eq(wof_once_cell_get(&fork_cell), &value_a, "the parent keeps its values");
	cr_assert_eq(wof_lazy_cell_get(&fork_lazy), &pid_value);
	cr_assert_eq(wof_once_cell_get(&fork_tls_cell), &value_a);
	cr_assert_eq(pid_value, (int)getpid());
	cr_assert_eq(init_calls, 3);
}

/* A _Thread_local cell of a thread other than main, forked from that thread. */
static void *fork_from_thread(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;
	static int rc;

	if (wof_once_cell_set(&fork_tls_cell, &value_b) != 0)
		return (void *)"set";
	rc = th_in_child(how, child_cells_reinitialise, NULL);
	if (rc != 0)
		return th_why;
	if (wof_once_cell_get(&fork_tls_cell) != &value_b)
		return (void *)"the forking thread lost its value";
	return NULL;
}

TH_FORK_TEST(once_cell, fork_from_a_thread_child_sees_its_tls_cells_uninitialised, .timeout = 30)
{
	pthread_t thread;
	void *why;

	cr_assert_eq(pthread_create(&thread, NULL, fork_from_thread, &how), 0);
	pthread_join(thread, &why);
	cr_assert_null(why, "%s", why ? (const char *)why : "");
}
