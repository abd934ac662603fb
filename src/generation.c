/* SPDX-License-Identifier: MIT */
/*
 * Fork detection: the only file in wof that knows processes fork.
 *
 * A process's generation lives in the *fork page*, wof_internal_fork (include/wof/internal.h),
 * which reads 0 in every new process:
 *
 *   generation == 0        this process has not taken a generation yet (every child starts
 *                          here)
 *   generation == g << 32  this process's generation; set once, by the first thread that
 *                          needs it (and replaced only by wof_wipe_all(), which makes the
 *                          process a new one); kept where a once word keeps it, so that a fast
 *                          path compares with one xor
 *
 * Two mechanisms zero the page in a child:
 *   - the kernel, once the page is marked MADV_WIPEONFORK: in every child that copies the
 *     address space -- fork(), _Fork(), syscall(SYS_fork), clone() without CLONE_VM -- with no
 *     code running in the child. The page is an ordinary object of libwof (or, copy-relocated,
 *     of the executable), page-aligned and a whole number of pages long, so it is marked where
 *     it lies: no mapping, and no pointer for the fast paths to follow;
 *   - a pthread_atfork child handler, for fork() only: the one mechanism where MADV_WIPEONFORK
 *     is missing or untrusted, a harmless repeat where it works. It also zeroes secret memory
 *     that the kernel does not wipe.
 * Nothing is walked at fork: objects compare their recorded generation with the page on their
 * next use.
 *
 * Setting up can fail part-way, and what failed is retried on later slow paths rather than
 * given up for the life of the process and its descendants:
 *
 *   atfork_state   NONE -> REGISTERING -> DONE; a failed registration returns to NONE
 *   wipe_state     UNKNOWN -> TRANSIENT (madvise ran out of memory: retry) -> ...
 *                  -> WORKS | REFUSED (no such advice, or an emulator that fakes it)
 *
 * The generation never moves, so objects stamped before a retry succeeded stay valid.
 * `settled` turns true when nothing is left to retry. wof_fork_detection() reports what is in
 * effect now, 0 when neither mechanism is.
 *
 * New values come from `last_generation`, an ordinary counter that children inherit: a
 * process takes last_generation + 1 (skipping 0), so every descendant's generation is larger
 * than any value its ancestors had taken before they forked. The library is linked with
 * -z nodelete, so a dlclose() never unloads it and a later dlopen() never starts the counter
 * again from 0.
 *
 * Windows (WOF_HAVE_FORK 0) has no fork(): no child to detect, no handler to register, no page
 * to mark. The process takes its generation on first use like any other and keeps it until
 * wof_wipe_all() takes the next; nothing else ever wipes an object. wof_fork_detection()
 * reports WOF_FORK_DETECT_NO_FORK, alone.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wof-private.h"

#if WOF_HAVE_FORK
#include <pthread.h>
#include <sched.h>

/* Whole pages of its own, so that MADV_WIPEONFORK marks the page and nothing else. */
#define FORK_PAGE_ALIGNED __attribute__((__aligned__(WOF_INTERNAL_FORK_PAGE)))
#else
/* Windows: nothing marks the page, and PE objects cannot be aligned beyond 8 KiB. */
#define FORK_PAGE_ALIGNED
#endif

#if WOF_HAVE_WIPEONFORK
#include <sys/mman.h>
#include <unistd.h>
#endif

WOF_API struct wof_internal_fork wof_internal_fork FORK_PAGE_ALIGNED;

static uint32_t last_generation;

enum { ATFORK_NONE, ATFORK_REGISTERING, ATFORK_DONE };
static int atfork_state;

enum { WIPE_UNKNOWN, WIPE_TRANSIENT, WIPE_WORKS, WIPE_REFUSED };
static int wipe_state;

bool wof_internal_generation_settled;

/* Set the page to generation `gen` (0: none). Relaxed: a generation carries no data. */
static void set_generation(uint32_t gen)
{
	__atomic_store_n(&wof_internal_fork.generation, wof_internal_once_word(gen, 0),
	                 __ATOMIC_RELAXED);
}

#if WOF_HAVE_FORK
static void clear_page_in_child(void)
{
	/* Async-signal-safe: atomic stores and memset. The child is single-threaded here. */
	set_generation(0);
	/* Relaxed: as in wof_fork_detection(). A wiped page is zero already, and writing it
	 * would cost the child a page fault. */
	if (__atomic_load_n(&wipe_state, __ATOMIC_RELAXED) != WIPE_WORKS)
		memset((unsigned char *)&wof_internal_fork + WOF_INTERNAL_PARK_AREA, 0,
		       WOF_INTERNAL_PARK_AREA_SIZE);
	wof_internal_secret_wipe(false);
}
#endif

#if WOF_HAVE_WIPEONFORK
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* The kernel's answer for a page-aligned private anonymous range. Emulators (qemu-user) accept
 * any advice and ignore it, so an advice no kernel knows must fail before WIPEONFORK counts. */
static bool advise_wipe(void *addr, size_t len)
{
	return madvise(addr, len, -1) != 0 && madvise(addr, len, MADV_WIPEONFORK) == 0;
}

bool wof_internal_wipe_on_fork(void *addr, size_t len)
{
	return advise_wipe(addr, len);
}

/* Mark the fork page; wipe_state says whether trying again can help. */
static void wipe_page(void)
{
	int state = WIPE_WORKS;

	if (!advise_wipe(&wof_internal_fork, sizeof wof_internal_fork))
		state = errno == ENOMEM || errno == EAGAIN ? WIPE_TRANSIENT : WIPE_REFUSED;
	/* Relaxed: the state only steers retries and what wof_fork_detection() reports. */
	__atomic_store_n(&wipe_state, state, __ATOMIC_RELAXED);
}
#else
bool wof_internal_wipe_on_fork(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return false;
}

static void wipe_page(void)
{
	__atomic_store_n(&wipe_state, WIPE_REFUSED, __ATOMIC_RELAXED);
}
#endif

#if WOF_HAVE_FORK
/*
 * Register the atfork handler unless done; one thread tries at a time, a failure is retried.
 * A thread that finds another registering waits for the outcome, so that no first call
 * returns while detection is still being set up (wof_fork_detection() would say "none", and
 * secret memory would be refused). The wait is bounded: a child forked (from a signal
 * handler) while its parent was registering inherits REGISTERING with no thread to finish it.
 */
static void register_atfork(void)
{
	int expected = ATFORK_NONE;

	/* Relaxed: the state elects one registering thread and publishes nothing. */
	if (!__atomic_compare_exchange_n(&atfork_state, &expected, ATFORK_REGISTERING, false,
	                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		for (int spins = 0; spins < 10000 && expected == ATFORK_REGISTERING; spins++) {
			sched_yield();
			expected = __atomic_load_n(&atfork_state, __ATOMIC_RELAXED);
		}
		if (expected == ATFORK_REGISTERING) /* orphaned: take over */
			__atomic_compare_exchange_n(&atfork_state, &expected, ATFORK_NONE, false,
			                            __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return;
	}
	int rc = pthread_atfork(NULL, NULL, clear_page_in_child);
	__atomic_store_n(&atfork_state, rc == 0 ? ATFORK_DONE : ATFORK_NONE, __ATOMIC_RELAXED);
}
#else
/* No fork(), so no handler: nothing is left to set up. Relaxed: as above. */
static void register_atfork(void)
{
	__atomic_store_n(&atfork_state, ATFORK_DONE, __ATOMIC_RELAXED);
}
#endif

/* The process's generation, taking a new one if it has none. */
static uint32_t take_generation(void)
{
	/* Relaxed throughout: a generation carries no data; objects publish their own. */
	uint64_t word = __atomic_load_n(&wof_internal_fork.generation, __ATOMIC_RELAXED);
	uint32_t next;

	if (word != 0)
		return (uint32_t)(word >> 32);
	/* Taken from the inherited counter *before* it is published in the page, so a fork
	 * between the two still leaves the child's counter past this value. */
	do
		next = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
	while (next == 0);
	if (!__atomic_compare_exchange_n(&wof_internal_fork.generation, &word,
	                                 wof_internal_once_word(next, 0), false, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED))
		return (uint32_t)(word >> 32); /* another thread was first */
	return next;
}

uint32_t wof_internal_generation_refresh(void)
{
	int saved_errno = errno;

	/* Registered before a generation is taken, so no fork() sees one it would not clear. */
	if (__atomic_load_n(&atfork_state, __ATOMIC_RELAXED) != ATFORK_DONE)
		register_atfork();
	/* Relaxed, the states throughout: they steer retries and publish no data. */
	int wipe = __atomic_load_n(&wipe_state, __ATOMIC_RELAXED);
	if (wipe == WIPE_UNKNOWN || wipe == WIPE_TRANSIENT)
		wipe_page();

	uint32_t gen = take_generation();

	wipe = __atomic_load_n(&wipe_state, __ATOMIC_RELAXED);
	/* Relaxed: an early `true` would only skip a retry; a late one costs a refresh. */
	__atomic_store_n(&wof_internal_generation_settled,
	                 __atomic_load_n(&atfork_state, __ATOMIC_RELAXED) == ATFORK_DONE &&
	                         (wipe == WIPE_WORKS || wipe == WIPE_REFUSED),
	                 __ATOMIC_RELAXED);
	wof_internal_restore_errno(saved_errno);
	return gen;
}

/* Parenthesised: <wof/generation.h> also defines wof_generation() as an inline macro. */
WOF_API uint32_t(wof_generation)(void)
{
	return wof_internal_generation();
}

WOF_API unsigned wof_fork_detection(void)
{
	(void)wof_internal_generation();
	if (!WOF_HAVE_FORK)
		return WOF_FORK_DETECT_NO_FORK;
	unsigned how = WOF_FORK_DETECT_NONE;
	/* Relaxed: the states publish no data; this reports what is in effect. */
	if (__atomic_load_n(&atfork_state, __ATOMIC_RELAXED) == ATFORK_DONE)
		how |= WOF_FORK_DETECT_ATFORK;
	if (__atomic_load_n(&wipe_state, __ATOMIC_RELAXED) == WIPE_WORKS)
		how |= WOF_FORK_DETECT_WIPEONFORK;
	return how;
}

/*
 * The caller promises that no other thread uses wof objects; what is cheap to check is that
 * this thread is not inside an initialiser or on_wipe hook, whose run would end in the new
 * generation as if it had forked. Debug builds stop there; release builds refuse (EDEADLK).
 */
WOF_API void wof_wipe_all(void)
{
	int saved_errno = errno;
	uint32_t next;

	if (wof_internal_inside_run()) {
#ifndef NDEBUG
		fprintf(stderr, "wof: wof_wipe_all() called from inside a wof initialiser or "
		                "on_wipe hook; call it while no wof object is in use\n");
		abort();
#else
		errno = EDEADLK;
		return;
#endif
	}
	(void)wof_internal_generation(); /* set up detection first, as any first call does */
	wof_internal_secret_wipe(true);
	/* Relaxed: as take_generation; the caller guarantees that no other thread uses wof. */
	do
		next = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
	while (next == 0);
	set_generation(next);
	wof_internal_restore_errno(saved_errno);
}
