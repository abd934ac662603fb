/* SPDX-License-Identifier: MIT */
/*
 * Misuse is refused, not crashed on: every entry point rejects NULL objects and NULL functions
 * with EINVAL, and a once word that no wof code could have written stops a debug build with a
 * clear message (release builds refuse it with EINVAL).
 */
#include <criterion/criterion.h>

#include "wof-test.h"

static void *make(void *arg)
{
	return arg;
}

static int try_make(void *arg, void **out)
{
	*out = arg;
	return 0;
}

Test(misuse, int_functions_reject_null_with_einval)
{
	wof_once_t once = WOF_ONCE_INIT;
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;
	int x = 1;
	void *out = &x;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_call(NULL, th_count_run, NULL), EINVAL);
	cr_assert_eq(wof_once_call(&once, NULL, NULL), EINVAL);
	cr_assert_eq(wof_once_try_call(NULL, th_count_ok, NULL), EINVAL);
	cr_assert_eq(wof_once_try_call(&once, NULL, NULL), EINVAL);
	cr_assert_eq(wof_once_wait(NULL), EINVAL);
	cr_assert_not(wof_once_is_completed(NULL));
	cr_assert_eq(wof_once_lock_set(NULL, &x), EINVAL);
	cr_assert_eq(wof_once_lock_set(&lock, NULL), EINVAL);
	cr_assert_eq(wof_once_lock_try_insert(NULL, &x, &out), EINVAL);
	cr_assert_eq(wof_once_lock_get_or_try_init(NULL, try_make, &x, &out), EINVAL);
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, NULL, &x, &out), EINVAL);
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_make, &x, NULL), EINVAL);
	cr_assert_eq(wof_once_cell_set(NULL, &x), EINVAL);
	cr_assert_eq(wof_once_cell_set(&cell, NULL), EINVAL);
	cr_assert_eq(wof_once_cell_try_insert(NULL, &x, &out), EINVAL);
	cr_assert_eq(wof_once_cell_get_or_try_init(NULL, try_make, &x, &out), EINVAL);
	cr_assert_eq(wof_once_cell_get_or_try_init(&cell, NULL, &x, &out), EINVAL);
	cr_assert_eq(wof_once_cell_get_or_try_init(&cell, try_make, &x, NULL), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "an int function changed errno");
	/* Nothing was stored or completed by any of the refused calls. */
	cr_assert_not(wof_once_is_completed(&once));
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_null(wof_once_cell_get(&cell));
	cr_assert_eq(out, &x);
}

/* A NULL object or init makes a pointer function return NULL with errno EINVAL. */
#define CHECK_EINVAL(call)                                                                        \
	do {                                                                                      \
		errno = 0;                                                                        \
		cr_assert_null(call, #call " returned a value");                                  \
		cr_assert_eq(errno, EINVAL, #call ": errno %d, not EINVAL", errno);               \
	} while (0)

Test(misuse, pointer_functions_reject_null_with_einval)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;
	wof_lazy_lock_t no_init_lock = WOF_LAZY_LOCK_INIT(NULL, NULL);
	wof_lazy_cell_t no_init_cell = WOF_LAZY_CELL_INIT(NULL, NULL);
	int x;

	CHECK_EINVAL(wof_once_lock_get(NULL));
	CHECK_EINVAL(wof_once_lock_get_or_init(NULL, make, &x));
	CHECK_EINVAL(wof_once_lock_get_or_init(&lock, NULL, &x));
	CHECK_EINVAL(wof_once_lock_wait(NULL));
	CHECK_EINVAL(wof_once_lock_take(NULL));
	CHECK_EINVAL(wof_lazy_lock_force(NULL));
	CHECK_EINVAL(wof_lazy_lock_force(&no_init_lock));
	CHECK_EINVAL(wof_lazy_lock_get(NULL));
	CHECK_EINVAL(wof_once_cell_get(NULL));
	CHECK_EINVAL(wof_once_cell_get_or_init(NULL, make, &x));
	CHECK_EINVAL(wof_once_cell_get_or_init(&cell, NULL, &x));
	CHECK_EINVAL(wof_once_cell_take(NULL));
	CHECK_EINVAL(wof_lazy_cell_force(NULL));
	CHECK_EINVAL(wof_lazy_cell_force(&no_init_cell));
	CHECK_EINVAL(wof_lazy_cell_get(NULL));
	/* The objects still work afterwards. */
	cr_assert_eq(wof_once_lock_get_or_init(&lock, make, &x), &x);
	cr_assert_eq(wof_once_cell_get_or_init(&cell, make, &x), &x);
}

/* A word of this generation whose state is none of wof's (here 0x77). */
static void corrupt(wof_once_t *once)
{
	once->_wof_word = (uint64_t)wof_generation() << 32 | 0x77;
}

#ifndef NDEBUG
Test(misuse, corrupt_word_aborts_debug_builds_with_a_message, .signal = SIGABRT)
{
	wof_once_t once = WOF_ONCE_INIT;

	corrupt(&once);
	wof_once_call(&once, th_count_run, NULL);
}

Test(misuse, corrupt_lock_word_aborts_debug_builds, .signal = SIGABRT)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	int x;

	corrupt(&lock._wof_once);
	wof_once_lock_get_or_init(&lock, make, &x);
}
#else
Test(misuse, corrupt_word_is_refused_in_release_builds)
{
	wof_once_t once = WOF_ONCE_INIT;
	int runs = 0;

	corrupt(&once);
	cr_assert_eq(wof_once_call(&once, th_count_run, &runs), EINVAL);
	cr_assert_eq(wof_once_wait(&once), EINVAL);
	cr_assert_not(wof_once_is_completed(&once));
}
#endif

/* A word left by another generation is never "corrupt": whatever its state, it is stale. */
Test(misuse, stale_words_with_any_state_are_simply_incomplete)
{
	for (uint32_t state = 0; state < 8; state++) {
		wof_once_t once = { ((uint64_t)(wof_generation() + 1) << 32) | state };
		int runs = 0;
		cr_assert_not(wof_once_is_completed(&once));
		cr_assert_eq(wof_once_call(&once, th_count_run, &runs), 0);
		cr_assert(wof_once_is_completed(&once), "state %u", state);
	}
}

/* NULL functions are refused even when the object is complete and the fast path would do. */
Test(misuse, null_functions_are_refused_on_completed_objects_too)
{
	wof_once_t once = WOF_ONCE_INIT;
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;
	int x = 0;
	void *out = NULL;

	cr_assert_eq(wof_once_call(&once, th_count_run, &x), 0);
	cr_assert_eq(wof_once_call(&once, NULL, NULL), EINVAL);
	cr_assert_eq(wof_once_try_call(&once, NULL, NULL), EINVAL);
	cr_assert_eq(wof_once_lock_set(&lock, &x), 0);
	CHECK_EINVAL(wof_once_lock_get_or_init(&lock, NULL, NULL));
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, NULL, NULL, &out), EINVAL);
	cr_assert_eq(wof_once_cell_set(&cell, &x), 0);
	CHECK_EINVAL(wof_once_cell_get_or_init(&cell, NULL, NULL));
	cr_assert_eq(wof_once_lock_get(&lock), &x);
	cr_assert_eq(wof_once_cell_get(&cell), &x);
}
