/* SPDX-License-Identifier: MIT */
/*
 * errno after a successful call is the caller's, even when the initialiser set errno on its
 * way to success (as real initialisers do: a probe that fails before one that works); after a
 * failed initialiser it is what the initialiser left; wof's own errors set it only where the
 * function reports through errno.
 */
#include <criterion/criterion.h>

#include "wof-test.h"

static void noisy_call(void *arg)
{
	(void)arg;
	errno = ENOENT;
}

static int noisy_try(void *arg)
{
	(void)arg;
	errno = ENOENT;
	return 0;
}

static int failing_try(void *arg)
{
	(void)arg;
	errno = ENOENT;
	return EIO;
}

static int value = 7;

static void *noisy_init(void *arg)
{
	(void)arg;
	errno = ENOENT;
	return &value;
}

static void *failing_init(void *arg)
{
	(void)arg;
	errno = ENOENT;
	return NULL;
}

static int noisy_try_init(void *arg, void **out)
{
	*out = noisy_init(arg);
	return 0;
}

static int noisy_static_init(int *slot)
{
	errno = ENOENT;
	*slot = 1;
	return 0;
}

static int failing_static_init(int *slot)
{
	(void)slot;
	errno = ENOENT;
	return -1;
}

WOF_LAZY_STATIC(int, noisy_static, noisy_static_init);
WOF_LAZY_STATIC(int, failing_static, failing_static_init);

/* With errno at the sentinel before it, `call` gives `expected` and leaves errno at `want`. */
#define CHECK_ERRNO(call, expected, want)                                                      \
	do {                                                                                   \
		errno = TH_ERRNO_SENTINEL;                                                     \
		cr_assert_eq((call), (expected), #call);                                       \
		cr_assert_eq(errno, (want), #call ": errno %d", errno);                        \
	} while (0)
#define KEPT TH_ERRNO_SENTINEL

Test(errno_rule, success_leaves_the_callers_errno)
{
	wof_once_t once = WOF_ONCE_INIT, try_once = WOF_ONCE_INIT;
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT, try_lock = WOF_ONCE_LOCK_INIT;
	wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(noisy_init, NULL);
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT, try_cell = WOF_ONCE_CELL_INIT;
	wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT(noisy_init, NULL);
	void *out = NULL;

	CHECK_ERRNO(wof_once_call(&once, noisy_call, NULL), 0, KEPT);
	CHECK_ERRNO(wof_once_try_call(&try_once, noisy_try, NULL), 0, KEPT);
	CHECK_ERRNO(wof_once_lock_get_or_init(&lock, noisy_init, NULL), &value, KEPT);
	CHECK_ERRNO(wof_once_lock_get_or_try_init(&try_lock, noisy_try_init, NULL, &out), 0, KEPT);
	CHECK_ERRNO(wof_lazy_lock_force(&lazy), &value, KEPT);
	CHECK_ERRNO(*noisy_static(), 1, KEPT);
	CHECK_ERRNO(wof_once_cell_get_or_init(&cell, noisy_init, NULL), &value, KEPT);
	CHECK_ERRNO(wof_once_cell_get_or_try_init(&try_cell, noisy_try_init, NULL, &out), 0, KEPT);
	CHECK_ERRNO(wof_lazy_cell_force(&lazy_cell), &value, KEPT);
	/* Completed: the fast paths touch nothing. */
	CHECK_ERRNO(wof_once_call(&once, noisy_call, NULL), 0, KEPT);
	CHECK_ERRNO(wof_lazy_lock_force(&lazy), &value, KEPT);
}

Test(errno_rule, failure_leaves_the_initialisers_errno)
{
	wof_once_t once = WOF_ONCE_INIT;
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;

	CHECK_ERRNO(wof_once_try_call(&once, failing_try, NULL), EIO, ENOENT);
	CHECK_ERRNO(wof_once_lock_get_or_init(&lock, failing_init, NULL), NULL, ENOENT);
	CHECK_ERRNO(failing_static(), NULL, ENOENT);
	CHECK_ERRNO(wof_once_cell_get_or_init(&cell, failing_init, NULL), NULL, ENOENT);
}

/* A hook's errno is not the caller's either, in a child's first use. */
static void noisy_wipe(void *stale)
{
	(void)stale;
	errno = ENOENT;
}

static wof_once_lock_t wiped = WOF_ONCE_LOCK_INIT_ON_WIPE(noisy_wipe);

static int child_errno(void *arg)
{
	(void)arg;
	errno = TH_ERRNO_SENTINEL;
	if (wof_once_lock_get_or_init(&wiped, noisy_init, NULL) != &value)
		return 1;
	return errno == TH_ERRNO_SENTINEL ? 0 : 2;
}

Test(errno_rule, child_first_use_leaves_the_callers_errno, .timeout = 30)
{
	cr_assert_eq(wof_once_lock_set(&wiped, &value), 0);
	TH_ASSERT_CHILD(TH_FORK, child_errno, NULL);
}
