/* SPDX-License-Identifier: MIT */
/*
 * The once state machine. One 64-bit word: generation << 32 | state (include/wof/internal.h).
 *
 * A word whose generation is not this process's is incomplete here whatever its state says:
 * it was written by an ancestor, and the threads that state talks about are not in this
 * process. With the current generation g the state is one of
 *
 *   INCOMPLETE           nobody runs fn; anyone may claim the run
 *   INCOMPLETE|QUEUED    nobody runs fn; wof_once_wait() callers are parked
 *   RUNNING              one thread runs fn
 *   RUNNING|QUEUED       one thread runs fn; others are (about to be) parked
 *   COMPLETE             fn returned 0 in this process; terminal until the next fork
 *
 * Transitions, and who makes them:
 *   any caller   (stale, *) or (g, INCOMPLETE[|QUEUED]) -> (g, RUNNING[|QUEUED])  claim
 *   a waiter     (g, RUNNING) -> (g, RUNNING|QUEUED), (stale|g, INCOMPLETE) -> (g, QUEUED)
 *   the runner   (g, RUNNING[|QUEUED]) -> (g, COMPLETE)    fn returned 0
 *                (g, RUNNING[|QUEUED]) -> (g, INCOMPLETE)  fn failed, was cancelled or exited
 * and the runner wakes all parked threads when it leaves a QUEUED state. A run started by an
 * ancestor never finishes in the child: its word stays stale, so a child never waits for a
 * thread it does not have, and a fork from inside fn leaves the child incomplete.
 *
 * A thread's idea of g can itself go stale: a signal handler may fork, and the interrupted
 * thread carries on in the child. So g is read again after every park (parks are bounded, so
 * one that began in the parent ends in the child) and just before fn is called: a run claimed
 * in the parent whose fn had not started -- fn starts when the runner has read g for the last
 * time -- is claimed again in the child and runs there, once.
 *
 * A value type may pass a wipe hook: taking over a stale word that is not all-zero then
 * becomes a run of its own, which calls the hook (with held = "the ancestor had completed")
 * before any new fn, so the hook runs exactly once per object per process.
 *
 * The slow path is a loop over four named steps: claim, queue_and_park, run, finish.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "runs.h"
#include "thread-exit.h"
#include "wof-private.h"
#include <wof/once.h>

enum mode {
	MODE_RUN,  /* claim the run and call fn unless complete          */
	MODE_WAIT, /* sleep until complete; never call fn                */
	MODE_SYNC, /* only bring a stale word into this process (wipe)   */
};

/* finish: the runner leaves its run with `state`, waking parked threads if any. */
static void finish(wof_once_t *once, uint32_t gen, uint32_t state)
{
	/* A child forked from inside fn: the run belongs to the parent's generation. Leaving the
	 * word stale makes the once incomplete here, with no value held. */
	if (wof_internal_generation() != gen)
		return;
	wof_internal_tsan_release(once);
	/* Release: pairs with the acquire loads of the fast path and of waiters (COMPLETE), and
	 * with the claiming CAS of the next runner (INCOMPLETE). Only the runner leaves RUNNING,
	 * so an exchange cannot lose another thread's transition except QUEUED, which it reads. */
	uint64_t old = __atomic_exchange_n(&once->_wof_word, wof_internal_once_word(gen, state),
	                                   __ATOMIC_RELEASE);
	if (old & WOF_INTERNAL_ONCE_QUEUED)
		wof_internal_unpark_all(&once->_wof_word);
}

/* A run whose thread ends without returning from it: waiters wake, and one of them runs. */
void wof_internal_once_abandon(wof_once_t *once, uint32_t gen)
{
	finish(once, gen, WOF_INTERNAL_ONCE_INCOMPLETE);
}

/* Cancellation, pthread_exit and (with -fexceptions) C++ exceptions unwind through here. */
static void abandon(void *arg)
{
	struct wof_internal_run *run = arg;

	wof_internal_runs_pop(run);
	finish(run->once, run->gen, WOF_INTERNAL_ONCE_INCOMPLETE);
}

/*
 * start: fn starts when the runner has read the generation for the last time, just before the
 * call; false, without calling, in a child of the process that claimed. The read and the call
 * are kept together in a function of their own, so that the window between them is a few
 * instructions wherever the compiler lays out run() (tests/stress/signal-fork measures it).
 */
static __attribute__((noinline)) bool start(uint32_t gen, int (*fn)(void *), void *arg, int *rc)
{
	if (wof_internal_generation() != gen)
		return false;
	*rc = fn(arg);
	return true;
}

/*
 * run: the claimed run -- the wipe hook if due, then fn -- and its finish. fn's result, or
 * false in *started when the process turned out to be a child of the one that claimed: a fork
 * (from a signal handler) before start()'s read leaves the claim to the parent.
 */
static int run(wof_once_t *once, uint32_t gen, wof_internal_wipe_fn wipe, void *wipe_ctx,
               bool held, int (*fn)(void *), void *arg, bool *started)
{
	struct wof_internal_run self = { once, gen, NULL, NULL };
	int rc = 0;

	*started = true;
	wof_internal_runs_push(&self);
	WOF_INTERNAL_CLEANUP_PUSH(abandon, &self);
	if (wipe)
		wipe(wipe_ctx, held);
	if (fn)
		*started = start(gen, fn, arg, &rc);
	WOF_INTERNAL_CLEANUP_POP(0);
	wof_internal_runs_pop(&self);
	if (!*started)
		return 0; /* the word is stale here: the caller claims it again in this process */
	finish(once, gen, fn && rc == 0 ? WOF_INTERNAL_ONCE_COMPLETE : WOF_INTERNAL_ONCE_INCOMPLETE);
	return rc;
}

/* claim: CAS `*word` (incomplete here) to a run of ours in `gen`; false with *word reloaded. */
static bool claim(wof_once_t *once, uint64_t *word, uint32_t gen)
{
	bool stale = (uint32_t)(*word >> 32) != gen;
	uint32_t queued = stale ? 0 : (uint32_t)*word & WOF_INTERNAL_ONCE_QUEUED;

	/* Acquire: pairs with the release of a failed run, whose writes fn may see. */
	if (!__atomic_compare_exchange_n(&once->_wof_word, word,
	                                 wof_internal_once_word(gen, WOF_INTERNAL_ONCE_RUNNING | queued),
	                                 false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
		return false;
	wof_internal_tsan_acquire(once);
	return true;
}

/* queue_and_park: mark `word` QUEUED (as `queued`) and sleep; the word as it is afterwards. */
static uint64_t queue_and_park(wof_once_t *once, uint64_t word, uint64_t queued)
{
	/* Acquire: on failure the caller may find COMPLETE in `word` (pairs with finish's
	 * release); success needs no more than that (C11 forbids less). */
	if (word != queued && !__atomic_compare_exchange_n(&once->_wof_word, &word, queued, false,
	                                                   __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
		return word;
	wof_internal_park(&once->_wof_word, queued);
	/* Acquire: pairs with finish's release. */
	return __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
}

/*
 * A word of this generation whose state is none of the five is not a wof_once_t any more:
 * something overwrote it. Debug builds stop there, loudly; release builds refuse with EINVAL
 * rather than guess (running fn could run it twice; waiting could wait forever).
 */
static int corrupt(const wof_once_t *once, uint64_t word)
{
#ifndef NDEBUG
	fprintf(stderr,
	        "wof: corrupt wof_once_t at %p: word 0x%016" PRIx64 " has state 0x%" PRIx32
	        ", which is none of wof's states (memory overwritten, or not a wof_once_t?)\n",
	        (const void *)once, word, (uint32_t)word);
	abort();
#else
	(void)once;
	(void)word;
	return EINVAL;
#endif
}

static int once_slow(wof_once_t *once, enum mode mode, int (*fn)(void *), void *arg,
                     wof_internal_wipe_fn wipe, void *wipe_ctx)
{
	uint32_t gen = wof_internal_generation();
	/* Acquire: pairs with finish's release. */
	uint64_t word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);

	for (;;) {
		bool stale = (uint32_t)(word >> 32) != gen;
		uint32_t state = stale ? WOF_INTERNAL_ONCE_INCOMPLETE : (uint32_t)word;

		if (state == WOF_INTERNAL_ONCE_COMPLETE) {
			wof_internal_tsan_acquire(once);
			return 0;
		}
		if (state > WOF_INTERNAL_ONCE_COMPLETE)
			return corrupt(once, word);

		if (state & WOF_INTERNAL_ONCE_RUNNING) {
			if (mode == MODE_SYNC)
				return 0;
			if (wof_internal_running_here(once, gen))
				return EDEADLK;
			word = queue_and_park(once, word, word | WOF_INTERNAL_ONCE_QUEUED);
			gen = wof_internal_generation();
			continue;
		}

		/* Incomplete here. A stale word with a wipe hook needs a run of its own first. */
		bool wipe_first = stale && wipe != NULL && word != 0;
		if (mode == MODE_RUN || wipe_first) {
			if (!claim(once, &word, gen))
				continue;
			/* `word` is still the value claimed over. */
			bool held = wipe_first && (uint32_t)word == WOF_INTERNAL_ONCE_COMPLETE;
			bool started;
			int rc = run(once, gen, wipe_first ? wipe : NULL, wipe_ctx, held,
			             mode == MODE_RUN ? fn : NULL, arg, &started);
			if (started && mode == MODE_RUN)
				return rc;
			/* A wipe-only run, or one not started here: a fork from a signal handler may
			 * have come in between, as after a park. */
			gen = wof_internal_generation();
			/* Acquire: pairs with finish's release (of this or a later run). */
			word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
			continue;
		}

		if (mode == MODE_SYNC)
			return 0;
		/* MODE_WAIT on an incomplete once: say so in the word, then sleep. */
		word = queue_and_park(once, word,
		                      wof_internal_once_word(gen, WOF_INTERNAL_ONCE_QUEUED));
		gen = wof_internal_generation();
	}
}

/* errno is the caller's again when the call succeeds; a failing fn's errno is the result. */
static int once_entry(wof_once_t *once, enum mode mode, int (*fn)(void *), void *arg,
                      wof_internal_wipe_fn wipe, void *wipe_ctx)
{
	int saved_errno = errno;
	int rc = once_slow(once, mode, fn, arg, wipe, wipe_ctx);

	if (rc == 0)
		wof_internal_restore_errno(saved_errno);
	return rc;
}

WOF_API WOF_COLD int wof_internal_once_slow(wof_once_t *once, int (*fn)(void *), void *arg,
                                            wof_internal_wipe_fn wipe, void *wipe_ctx)
{
	if (!once || !fn)
		return EINVAL;
	return once_entry(once, MODE_RUN, fn, arg, wipe, wipe_ctx);
}

WOF_API WOF_COLD int wof_internal_once_wait_slow(wof_once_t *once, wof_internal_wipe_fn wipe,
                                                 void *wipe_ctx)
{
	if (!once)
		return EINVAL;
	return once_entry(once, MODE_WAIT, NULL, NULL, wipe, wipe_ctx);
}

WOF_API WOF_COLD void wof_internal_once_sync(wof_once_t *once, wof_internal_wipe_fn wipe,
                                             void *wipe_ctx)
{
	(void)once_entry(once, MODE_SYNC, NULL, NULL, wipe, wipe_ctx);
}

struct call_adapter {
	void (*fn)(void *);
	void *arg;
};

static int call_adapter(void *arg)
{
	struct call_adapter *call = arg;

	call->fn(call->arg);
	return 0;
}

WOF_API WOF_COLD int wof_internal_once_call_slow(wof_once_t *once, void (*fn)(void *), void *arg)
{
	struct call_adapter call = { fn, arg };

	if (!once || !fn)
		return EINVAL;
	return once_entry(once, MODE_RUN, call_adapter, &call, NULL, NULL);
}
