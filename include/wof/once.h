/* SPDX-License-Identifier: MIT */
/* wof_once_t: run a function once per process, thread-safely; wiped on fork. */
#pragma once

#include <wof/internal.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wof_once - a once flag that forgets it ran when the process forks.
 *
 * 8 bytes, aligned to 8. All-zero bytes (WOF_ONCE_INIT, static storage, calloc) are a valid
 * incomplete once. Objects must live in memory private to one process (not MAP_SHARED).
 */
typedef struct wof_once {
	/* Never touch: generation << 32 | state; see include/wof/internal.h and docs/design.md. */
	uint64_t _wof_word WOF_ALIGNED8;
} wof_once_t;

/**
 * WOF_ONCE_INIT - static initialiser of an incomplete wof_once_t; the same as all-zero bytes.
 *
 * Memory ordering: none; a constant.
 * Fork: a once that never ran is incomplete in every process.
 */
#define WOF_ONCE_INIT { 0 }

/* Out-of-line slow paths (src/once.c). Never call them directly. */
WOF_API WOF_COLD int wof_internal_once_slow(wof_once_t *once, int (*fn)(void *), void *arg,
                                            wof_internal_wipe_fn wipe, void *wipe_ctx);
WOF_API WOF_COLD int wof_internal_once_call_slow(wof_once_t *once, void (*fn)(void *),
                                                 void *arg);
WOF_API WOF_COLD int wof_internal_once_wait_slow(wof_once_t *once, wof_internal_wipe_fn wipe,
                                                 void *wipe_ctx);
WOF_API WOF_COLD void wof_internal_once_sync(wof_once_t *once, wof_internal_wipe_fn wipe,
                                             void *wipe_ctx);

/* True when `once` completed in this process: two loads (the once, the fork page) and a
 * compare. No branch hint: wof_once_is_completed()'s caller has its own. */
static inline bool wof_internal_once_completed(wof_once_t *once)
{
	/* Acquire: pairs with the release that completes the once (src/once.c, finish), so
	 * everything fn wrote is visible to whoever sees the completed word. */
	uint64_t word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
	/* generation << 32 | COMPLETE; before the process has a generation the page reads 0,
	 * and no word is (0, COMPLETE): generation 0 is never taken. */
	return wof_internal_generation_xor(word) == WOF_INTERNAL_ONCE_COMPLETE;
}

/* The same, for the fast paths, which expect it. */
static inline bool wof_internal_once_done(wof_once_t *once)
{
	return WOF_LIKELY(wof_internal_once_completed(once));
}

/**
 * wof_once_call() - run fn(arg) unless the once completed in this process.
 *
 * At most one thread runs fn at a time; concurrent callers sleep until it finishes. If fn is
 * cancelled or calls pthread_exit, the once returns to incomplete and one waiting caller runs
 * its own fn.
 *
 * Memory ordering: every call returns after a run of fn completed in this process; everything
 * fn wrote happens-before the return (acquire, paired with the completing release).
 * Fork: in a child, a once completed in an ancestor, or whose fn was running in another thread
 * at fork, is incomplete; a fork from inside fn completes the once in the parent only.
 *
 * Return: 0, or EDEADLK (nothing run) when called from inside fn on the same once; EINVAL
 * for a NULL once or fn.
 */
static inline int wof_once_call(wof_once_t *once, void (*fn)(void *arg), void *arg)
{
	/* The NULL tests cost nothing for the usual constant fn and static once. */
	if (WOF_LIKELY(once != WOF_INTERNAL_NULL && fn != WOF_INTERNAL_NULL) &&
	    wof_internal_once_done(once))
		return 0;
	return wof_internal_once_call_slow(once, fn, arg);
}

/**
 * wof_once_try_call() - as wof_once_call(), for an fn that can fail.
 *
 * fn returns 0 to complete the once. A nonzero result leaves it incomplete and is returned to
 * this caller unchanged; threads that were waiting wake and one of them runs its own fn.
 *
 * Memory ordering: as wof_once_call() when 0 is returned.
 * Fork: as wof_once_call().
 *
 * Return: 0 when the once is complete, EDEADLK on re-entry, EINVAL for a NULL once or fn,
 * else fn's nonzero result.
 */
static inline int wof_once_try_call(wof_once_t *once, int (*fn)(void *arg), void *arg)
{
	if (WOF_LIKELY(once != WOF_INTERNAL_NULL && fn != WOF_INTERNAL_NULL) &&
	    wof_internal_once_done(once))
		return 0;
	return wof_internal_once_slow(once, fn, arg, WOF_INTERNAL_NULL, WOF_INTERNAL_NULL);
}

/**
 * wof_once_is_completed() - whether the once completed in this process.
 *
 * Memory ordering: acquire when true: fn's writes are visible.
 * Fork: false in a child until the child completes it. Async-signal-safe.
 */
static inline bool wof_once_is_completed(wof_once_t *once)
{
	if (once == WOF_INTERNAL_NULL)
		return false;
	return wof_internal_once_completed(once);
}

/**
 * wof_once_wait() - sleep until the once completes in this process; run nothing.
 *
 * Memory ordering: as wof_once_call().
 * Fork: waits for a completion in this process; one in an ancestor does not count.
 *
 * Return: 0, EDEADLK when called from inside the once's own fn, EINVAL for a NULL once.
 */
static inline int wof_once_wait(wof_once_t *once)
{
	if (WOF_LIKELY(once != WOF_INTERNAL_NULL) && wof_internal_once_done(once))
		return 0;
	return wof_internal_once_wait_slow(once, WOF_INTERNAL_NULL, WOF_INTERNAL_NULL);
}

#ifdef __cplusplus
}
#endif
