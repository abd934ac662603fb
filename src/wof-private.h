/* SPDX-License-Identifier: MIT */
/*
 * The seams between wof's source files. once.c asks generation.c which process it is in and
 * park.c to sleep; secret.c asks generation.c to have its pages wiped on fork; nothing else
 * crosses a file boundary.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include <wof/generation.h>
#include <wof/once.h>

/*
 * generation.c -- the only file that knows about fork.
 *
 * wof_internal_generation_refresh() gives the calling process a generation if it has none,
 * and retries whatever fork detection could not be set up so far (a failed pthread_atfork, a
 * wipe page that mmap could not map). wof_internal_generation_settled is true once nothing is
 * left to retry, so slow paths call refresh only while there is.
 */
uint32_t wof_internal_generation_refresh(void);
extern bool wof_internal_generation_settled;

/* The current generation; never 0. Inline fast path, out-of-line refresh. */
static inline uint32_t wof_internal_generation(void)
{
	uint32_t gen = wof_internal_generation_peek();
	/* Relaxed: the flag only says whether refresh has work left; refresh rereads it all. */
	bool settled = __atomic_load_n(&wof_internal_generation_settled, __ATOMIC_RELAXED);
	return WOF_LIKELY(gen != 0 && settled) ? gen : wof_internal_generation_refresh();
}

/*
 * Ask the kernel to hand [addr, addr + len) -- page-aligned, private, anonymous -- to every
 * child as zeros (MADV_WIPEONFORK), once the same emulator probe as the generation page's has
 * passed. False when it will not: then only the atfork child handler zeroes it, for fork().
 */
bool wof_internal_wipe_on_fork(void *addr, size_t len);

/*
 * secret.c -- zero the data of every secret block: all of them (`all`, wof_wipe_all), or only
 * those the kernel does not wipe (the atfork child handler). Async-signal-safe.
 */
void wof_internal_secret_wipe(bool all);

/*
 * runs.c, runs.h -- the runs this thread is inside, innermost last; once.c's run() pushes one before
 * it calls fn and pops it after (also when fn unwinds). wof_internal_running_here() is true
 * when the calling thread is inside a run of `once` in generation `gen`. A thread that ends
 * inside fn without unwinding (Windows' ExitThread) has its open runs handed to
 * wof_internal_once_abandon() (once.c), as a cancelled run is.
 */
struct wof_internal_runs;
struct wof_internal_run {
	wof_once_t *once;
	uint32_t gen;
	struct wof_internal_run *outer; /* runs.c: deeper than its array only            */
	struct wof_internal_runs *in;   /* runs.c: the record it is in; NULL if none     */
};
bool wof_internal_running_here(const wof_once_t *once, uint32_t gen);
/* wof_internal_runs_push() and _pop(): inline, in src/runs.h. */
bool wof_internal_inside_run(void); /* inside any fn or on_wipe, on this thread */
void wof_internal_once_abandon(wof_once_t *once, uint32_t gen);

/*
 * sweep.c -- the list of objects with an on_wipe hook, for wof_sweep(). The value types list
 * an object inside its run, before it completes; wof_sweep() calls back the sweep of each
 * kind, which wipes the object if it is stale and returns how many on_wipe hooks that ran.
 */
void wof_internal_sweep_list_once_lock(void *lock);
void wof_internal_sweep_list_lazy_static(const void *lazy);
size_t wof_internal_once_lock_sweep(void *lock);         /* once_lock.c   */
size_t wof_internal_lazy_static_sweep(const void *lazy); /* lazy_static.c */

/*
 * Put errno back as the caller had it, writing it only when it changed (an untouched errno
 * stays untouched; bench-fork measured no page fault saved by this in a fresh child).
 */
static inline void wof_internal_restore_errno(int saved_errno)
{
	if (errno != saved_errno)
		errno = saved_errno;
}

/*
 * The get_or_init paths of the value types run a `void *init(void *arg)` as the
 * `int init(void *arg, void **out)` of their get_or_try_init paths. A NULL value is the
 * adapter's failure, WOF_INTERNAL_INIT_FAILED, as opposed to wof's own EDEADLK or EINVAL:
 * wof_internal_init_result() then leaves errno as init left it.
 */
#define WOF_INTERNAL_INIT_FAILED (-1)
struct wof_internal_init {
	void *(*init)(void *);
	void *arg;
};

static inline int wof_internal_init_adapter(void *ctx, void **out)
{
	const struct wof_internal_init *init = ctx;

	*out = init->init(init->arg);
	return *out ? 0 : WOF_INTERNAL_INIT_FAILED;
}

static inline void *wof_internal_init_result(int rc, void *value)
{
	if (rc == 0)
		return value;
	if (rc != WOF_INTERNAL_INIT_FAILED)
		errno = rc;
	return NULL;
}

/* Hand a stale value to the user's on_wipe hook; the hook's errno is not the caller's. */
static inline void wof_internal_call_on_wipe(void (*on_wipe)(void *), void *stale)
{
	int saved_errno = errno;

	on_wipe(stale);
	wof_internal_restore_errno(saved_errno);
}

/*
 * ThreadSanitizer, when the program was built with it and libwof was not: the happens-before
 * edges that libwof makes with its own atomics are invisible to TSan, so libwof tells TSan
 * about them through the runtime's annotation entry points, found as weak symbols (NULL in a
 * program without TSan, where these cost one compare on a slow path).
 */
void __tsan_acquire(void *addr) __attribute__((__weak__));
void __tsan_release(void *addr) __attribute__((__weak__));

static inline void wof_internal_tsan_acquire(const void *addr)
{
	if (__tsan_acquire)
		__tsan_acquire((void *)(uintptr_t)addr);
}

static inline void wof_internal_tsan_release(const void *addr)
{
	if (__tsan_release)
		__tsan_release((void *)(uintptr_t)addr);
}

/*
 * park.c -- the only file that knows about futexes and condition variables.
 *
 * wof_internal_park() sleeps while *word equals `expected` (futexes, condvars: the whole word;
 * WaitOnAddress: the state half): it may return early (signals, spurious wake-ups, a bound),
 * so callers re-read the generation and the word. A thread that a fork from a signal handler
 * carried into a child while it slept wakes there and finds itself in a new generation: on
 * Linux it sleeps on an event count in the fork page (WOF_INTERNAL_PARK_AREA), which reads 0 in
 * every child; elsewhere every sleep is bounded by WOF_INTERNAL_PARK_MS. wof_internal_unpark_all() wakes every thread parked on
 * `word`; call it after changing the word. Neither changes errno.
 */
#define WOF_INTERNAL_PARK_MS 50
/* Where in the fork page src/park.c keeps its event counts (a cache line each), away from the
 * generation's line; the atfork child handler clears it with the generation. */
#define WOF_INTERNAL_PARK_AREA 4096
#define WOF_INTERNAL_PARK_AREA_SIZE 4096
_Static_assert(WOF_INTERNAL_PARK_AREA + WOF_INTERNAL_PARK_AREA_SIZE <= WOF_INTERNAL_FORK_PAGE,
               "the event counts live in the fork page");
void wof_internal_park(uint64_t *word, uint64_t expected);
void wof_internal_unpark_all(uint64_t *word);
