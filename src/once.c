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

#include "thread-exit.h"
#include "wof-private.h"
#include <wof/once.h>

enum mode {
	MODE_RUN,  /* claim the run and call fn unless complete          */
	MODE_WAIT, /* sleep until complete; never call fn                */
	MODE_SYNC, /* only bring a stale word into this process (wipe)   */
};

/*
 * The runs this thread is inside: re-entry is EDEADLK, not a hang. The first RUNS_MAX live in
 * an array in the thread's record rather than in a list through the runners' stack frames, so
 * that a run left by longjmp leaves an entry that is merely stale (its once answers EDEADLK to
 * this thread from then on) and never a pointer into a dead frame. Deeper runs are chained
 * through their frames, innermost first.
 */
#define RUNS_MAX 32
struct run {
	wof_once_t *once;
	uint32_t gen;
	struct run *outer; /* deeper than RUNS_MAX only */
	struct runs *in;   /* the record it is in; NULL if the thread could have none */
};
struct runs {
	unsigned depth;
	struct run *overflow; /* the innermost of the runs deeper than RUNS_MAX */
	struct run open[RUNS_MAX];
};

static void finish(wof_once_t *once, uint32_t gen, uint32_t state);

/*
 * The thread's record, and a thread that ends inside fn.
 *
 * POSIX: cancellation and pthread_exit leave fn through run()'s cleanup handler (abandon), so
 * the record is plain thread-local storage.
 *
 * Windows: C++ exceptions leave through the same handler (thread-exit.h), but a thread that
 * calls ExitThread or _endthreadex inside fn does not unwind at all, and its waiters would
 * wait for ever. So the record lives in fiber-local storage, whose callback runs when the
 * thread ends, with the thread's record, and abandons every run still open in it, innermost
 * first: the next caller claims the run, as after a cancellation. Not in thread-local storage:
 * mingw emulates that, and frees a thread's blocks before the callback runs when the thread
 * ends by winpthreads' pthread_exit. Runs deeper than RUNS_MAX are not abandoned there: their
 * entries live in frames that such a thread has already left (by longjmp). The record is
 * allocated at the thread's first run and freed at its end. The DLL that holds the callback is
 * pinned, as -z nodelete pins libwof on Linux: after a FreeLibrary() the callback would be
 * gone while threads still hold records.
 *
 * A thread that cannot have a record (no memory, or no fiber-local slot left in the process)
 * runs fn all the same, unrecorded: a call from inside fn on its own once then waits instead of
 * returning EDEADLK, and its waiters wait if it ends inside fn. No thread-local fallback: mingw
 * would emulate it through winpthreads (posix) or leak it at every thread's end (win32).
 */
#if defined(_WIN32)
#include <windows.h>

static DWORD runs_slot = FLS_OUT_OF_INDEXES;

static void WINAPI runs_at_thread_exit(void *record)
{
	struct runs *runs = record;

	for (unsigned i = runs->depth < RUNS_MAX ? runs->depth : RUNS_MAX; i-- > 0;)
		finish(runs->open[i].once, runs->open[i].gen, WOF_INTERNAL_ONCE_INCOMPLETE);
	HeapFree(GetProcessHeap(), 0, runs);
}

static DWORD runs_slot_get(void)
{
	/* Relaxed: a slot is an index; FlsAlloc itself makes it valid for every thread. */
	DWORD slot = __atomic_load_n(&runs_slot, __ATOMIC_RELAXED);
	HMODULE self;

	if (slot != FLS_OUT_OF_INDEXES)
		return slot;
	DWORD mine = FlsAlloc(runs_at_thread_exit);
	if (mine == FLS_OUT_OF_INDEXES)
		return mine;
	/* Relaxed: as the load; the loser frees its own slot, which no thread has used. */
	if (!__atomic_compare_exchange_n(&runs_slot, &slot, mine, false, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED)) {
		FlsFree(mine);
		return slot;
	}
	(void)GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
	                                 GET_MODULE_HANDLE_EX_FLAG_PIN,
	                         (LPCWSTR)(const void *)&runs_slot, &self);
	return mine;
}

/* The calling thread's record, made if `create`; NULL if it has none. */
static struct runs *thread_runs(bool create)
{
	DWORD saved_error = GetLastError(); /* the caller's GetLastError() is not ours to change */
	DWORD slot = runs_slot_get();
	struct runs *runs = slot == FLS_OUT_OF_INDEXES ? NULL : FlsGetValue(slot);

	if (!runs && create && slot != FLS_OUT_OF_INDEXES) {
		runs = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *runs);
		if (runs && !FlsSetValue(slot, runs)) {
			HeapFree(GetProcessHeap(), 0, runs);
			runs = NULL;
		}
	}
	SetLastError(saved_error);
	return runs;
}
#else
static _Thread_local struct runs thread_record;

static struct runs *thread_runs(bool create)
{
	(void)create;
	return &thread_record;
}
#endif

static bool running_here(const wof_once_t *once, uint32_t gen)
{
	const struct runs *runs = thread_runs(false);

	for (unsigned i = 0; runs && i < runs->depth && i < RUNS_MAX; i++)
		if (runs->open[i].once == once && runs->open[i].gen == gen)
			return true;
	for (const struct run *r = runs && runs->depth > RUNS_MAX ? runs->overflow : NULL; r;
	     r = r->outer)
		if (r->once == once && r->gen == gen)
			return true;
	return false;
}

static void runs_push(struct run *run)
{
	struct runs *runs = run->in = thread_runs(true);

	if (!runs)
		return;
	if (runs->depth < RUNS_MAX) {
		runs->open[runs->depth] = *run;
	} else {
		run->outer = runs->overflow;
		runs->overflow = run;
	}
	runs->depth++;
}

static void runs_pop(struct run *run)
{
	struct runs *runs = run->in;

	if (runs && --runs->depth >= RUNS_MAX)
		runs->overflow = run->outer;
}

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

/* Cancellation, pthread_exit and (with -fexceptions) C++ exceptions unwind through here. */
static void abandon(void *arg)
{
	struct run *run = arg;

	runs_pop(run);
	finish(run->once, run->gen, WOF_INTERNAL_ONCE_INCOMPLETE);
}

/*
 * run: the claimed run -- the wipe hook if due, then fn -- and its finish. fn's result, or
 * false in *started when the process turned out to be a child of the one that claimed: fn
 * starts when the runner has read the generation for the last time, just before the call, and
 * a fork (from a signal handler) before that read leaves the claim to the parent.
 */
static int run(wof_once_t *once, uint32_t gen, wof_internal_wipe_fn wipe, void *wipe_ctx,
               bool held, int (*fn)(void *), void *arg, bool *started)
{
	struct run self = { once, gen, NULL, NULL };
	int rc = 0;

	*started = true;
	runs_push(&self);
	WOF_INTERNAL_CLEANUP_PUSH(abandon, &self);
	if (wipe)
		wipe(wipe_ctx, held);
	if (fn && wof_internal_generation() != gen)
		*started = false;
	else if (fn)
		rc = fn(arg);
	WOF_INTERNAL_CLEANUP_POP(0);
	runs_pop(&self);
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
			if (running_here(once, gen))
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
			if (!started)
				gen = wof_internal_generation();
			else if (mode == MODE_RUN)
				return rc;
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
