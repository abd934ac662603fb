/* SPDX-License-Identifier: MIT */
/*
 * test-once: proves each clause of the wof_once_t contract (wof_once(3), "Once" and the
 * "Conventions" it is bound by): exactly one run per process among racing threads, fn's writes
 * visible to every caller, re-runs in children made by fork(), _Fork(), SYS_fork and clone(),
 * hand-over after cancellation, pthread_exit and failure, EDEADLK on re-entry, waiting,
 * argument checks, all-zero initialisation and an untouched errno.
 *
 * The concurrency and fork scenarios also exist as plain programs (stress-once.c,
 * stress-fork.c) for ThreadSanitizer, which cannot run Criterion.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdalign.h>
#include <string.h>

#include "wof-test.h"

/* Every test has a deadline; a hang is a failure, not a stuck run. Fork tests poll their
 * children with deadlines of their own (TH_DEADLINE_S). */
TestSuite(once, .timeout = 30);
TestSuite(once_fork, .timeout = 30);

/* ---- Zero is uninitialised; layout ---- */

static wof_once_t static_once = WOF_ONCE_INIT;
static wof_once_t bss_once; /* no initialiser: zero by static storage */

Test(once, layout_and_static_initialisers)
{
	static const unsigned char zero[sizeof(wof_once_t)];
	wof_once_t automatic = WOF_ONCE_INIT;
	wof_once_t *onces[] = { &static_once, &bss_once, &automatic };
	int n = 0;

	cr_assert_eq(sizeof(wof_once_t), 8);
	cr_assert_eq(alignof(wof_once_t), 8);
	cr_assert_eq(memcmp(&automatic, zero, sizeof zero), 0, "WOF_ONCE_INIT is not all-zero");
	for (size_t i = 0; i < sizeof onces / sizeof *onces; i++) {
		cr_assert_not(wof_once_is_completed(onces[i]));
		cr_assert_eq(wof_once_call(onces[i], th_count_run, &n), 0);
		cr_assert(wof_once_is_completed(onces[i]));
		cr_assert_eq(n, (int)i + 1, "once %zu did not run its fn exactly once", i);
	}
}

Test(once, zeroed_heap_onces_are_independent)
{
	enum { N = 256 };
	wof_once_t *onces = calloc(N, sizeof *onces);
	wof_once_t *scribbled = malloc(N * sizeof *scribbled);
	int n[N] = { 0 };

	cr_assert(onces && scribbled);
	memset(scribbled, 0, N * sizeof *scribbled);
	/* Complete the even ones only: a neighbour in the same cache line stays incomplete. */
	for (int i = 0; i < N; i += 2)
		cr_assert_eq(wof_once_call(&onces[i], th_count_run, &n[i]), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(wof_once_is_completed(&onces[i]), i % 2 == 0, "once %d", i);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wof_once_call(&onces[i], th_count_run, &n[i]), 0);
		cr_assert_eq(wof_once_call(&scribbled[i], th_count_run, &n[i]), 0);
		cr_assert_eq(n[i], 2, "once %d ran %d times", i, n[i]);
	}
	free(onces);
	free(scribbled);
}

/* ---- wof_once_call, one thread ---- */

struct seen {
	void *arg;
	int runs;
};

static void record_arg(void *arg)
{
	struct seen *s = arg;

	s->arg = arg;
	s->runs++;
}

Test(once, call_runs_fn_once_with_its_arg)
{
	wof_once_t once = WOF_ONCE_INIT;
	struct seen s = { NULL, 0 };
	int other = 0;

	cr_assert_not(wof_once_is_completed(&once));
	cr_assert_eq(wof_once_call(&once, record_arg, &s), 0);
	cr_assert_eq(s.arg, &s);
	cr_assert_eq(s.runs, 1);
	cr_assert(wof_once_is_completed(&once));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(wof_once_call(&once, record_arg, &s), 0);
		cr_assert_eq(wof_once_call(&once, th_count_run, &other), 0);
		cr_assert_eq(wof_once_try_call(&once, th_count_ok, &other), 0);
		cr_assert_eq(wof_once_wait(&once), 0);
	}
	cr_assert_eq(s.runs, 1);
	cr_assert_eq(other, 0, "a completed once ran another fn");
}

Test(once, einval_for_null_arguments)
{
	wof_once_t once = WOF_ONCE_INIT;
	int n = 0;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_call(NULL, th_count_run, &n), EINVAL);
	cr_assert_eq(wof_once_call(&once, NULL, &n), EINVAL);
	cr_assert_eq(wof_once_try_call(NULL, th_count_ok, &n), EINVAL);
	cr_assert_eq(wof_once_try_call(&once, NULL, &n), EINVAL);
	cr_assert_eq(wof_once_wait(NULL), EINVAL);
	cr_assert_not(wof_once_is_completed(NULL));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "EINVAL was also put in errno (%d)", errno);
	cr_assert_eq(n, 0);
	cr_assert_not(wof_once_is_completed(&once), "a NULL fn completed the once");
	cr_assert_eq(wof_once_call(&once, th_count_run, &n), 0);
	cr_assert_eq(n, 1);
}

/* ---- Exactly once among racing threads; fn's writes visible to every caller ---- */

static void race(int nthreads, bool use_try)
{
	TH_ASSERT_PASSED(th_race_run(nthreads, 48, use_try));
}

Test(once, exactly_once_2_threads) { race(2, false); }
Test(once, exactly_once_4_threads) { race(4, false); }
Test(once, exactly_once_8_threads) { race(8, false); }
Test(once, exactly_once_16_threads) { race(16, false); }
Test(once, exactly_once_32_threads) { race(32, false); }
Test(once, exactly_once_64_threads) { race(64, false); }
Test(once, try_call_exactly_one_success_4_threads) { race(4, true); }
Test(once, try_call_exactly_one_success_64_threads) { race(64, true); }

/* ---- A run that blocks until released, and the threads that wait for it ---- */

/* Starts `n` waiters on b->once, all `how` (ALL_HOWS: each kind in turn), and waits until they
 * park. */
#define ALL_HOWS (-1)
static void start_waiters(struct th_blocker *b, struct th_waiter *w, pthread_t *t, int n, int how)
{
	for (int i = 0; i < n; i++) {
		w[i] = (struct th_waiter){ .once = &b->once, .payload = &b->payload,
		                           .how = (enum th_how)(how < 0 ? i % 3 : how) };
		th_start(&t[i], th_waiter_thread, &w[i]);
	}
	cr_assert(th_await_queued(&b->once, TH_DEADLINE_S), "no waiter parked");
	for (int i = 0; i < n; i++)
		cr_assert_not(th_get(&w[i].returned), "waiter %d returned while fn was running", i);
}

static int join_waiters(struct th_waiter *w, pthread_t *t, int n)
{
	int ran = 0;

	for (int i = 0; i < n; i++) {
		cr_assert_eq(th_join(t[i], NULL, TH_DEADLINE_S), 0, "waiter %d hung", i);
		cr_assert_eq(w[i].rc, 0, "waiter %d got %d", i, w[i].rc);
		cr_assert(w[i].errno_kept, "waiter %d: errno changed", i);
		ran += w[i].ran;
	}
	return ran;
}

/* Six waiters of each kind in turn, parked for 20 ms before the runner returns or leaves fn. */
static void blocked(enum th_block_end end, bool cancel, bool use_try)
{
	TH_ASSERT_PASSED(th_blocked_run(end, cancel, use_try, 6, 20000));
}

Test(once, callers_sleep_until_fn_returns_and_see_its_writes)
{
	blocked(TH_END_RETURN, false, false);
}

/* ---- Hand-over: cancellation, pthread_exit, failure ---- */

Test(once, cancelled_fn_hands_over_to_a_waiter) { blocked(TH_END_RETURN, true, false); }
Test(once, pthread_exit_in_fn_hands_over_to_a_waiter) { blocked(TH_END_EXIT, false, false); }
Test(once, cancelled_try_fn_hands_over_to_a_waiter) { blocked(TH_END_RETURN, true, true); }
Test(once, failed_try_fn_hands_over_to_a_waiter) { blocked(TH_END_RETURN, false, true); }

Test(once, cancelled_fn_without_waiters_leaves_once_incomplete)
{
	struct th_blocker b = { .once = WOF_ONCE_INIT };
	pthread_t runner;
	void *rc;
	int n = 0;

	th_start(&runner, th_run_blocker, &b);
	cr_assert(th_await(&b.entered, 1, TH_DEADLINE_S));
	cr_assert_eq(pthread_cancel(runner), 0);
	cr_assert_eq(th_join(runner, &rc, TH_DEADLINE_S), 0);
	cr_assert_eq(rc, PTHREAD_CANCELED);
	cr_assert_not(wof_once_is_completed(&b.once));
	cr_assert_eq(wof_once_call(&b.once, th_count_run, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(wof_once_is_completed(&b.once));
}

struct nest {
	wof_once_t outer;
	struct th_blocker inner;
	int outer_rc;
};

static void nest_fn(void *arg)
{
	struct nest *n = arg;

	n->outer_rc = wof_once_call(&n->inner.once, th_block_fn, &n->inner);
}

static void *run_nest(void *arg)
{
	struct nest *n = arg;

	return (void *)(intptr_t)wof_once_call(&n->outer, nest_fn, n);
}

Test(once, cancelled_nested_runs_both_return_to_incomplete)
{
	struct nest n = { .outer = WOF_ONCE_INIT, .inner = { .once = WOF_ONCE_INIT } };
	pthread_t runner;
	void *rc;

	th_start(&runner, run_nest, &n);
	cr_assert(th_await(&n.inner.entered, 1, TH_DEADLINE_S));
	cr_assert_eq(pthread_cancel(runner), 0);
	cr_assert_eq(th_join(runner, &rc, TH_DEADLINE_S), 0);
	cr_assert_eq(rc, PTHREAD_CANCELED);
	cr_assert_not(wof_once_is_completed(&n.outer));
	cr_assert_not(wof_once_is_completed(&n.inner.once));
	/* Both can run again, here, without EDEADLK from a stale record of the dead run. */
	n.inner.entered = 0;
	th_set(&n.inner.gate, 1);
	cr_assert_eq(wof_once_call(&n.outer, nest_fn, &n), 0);
	cr_assert_eq(n.outer_rc, 0);
	cr_assert(n.inner.finished);
	cr_assert(wof_once_is_completed(&n.outer));
	cr_assert(wof_once_is_completed(&n.inner.once));
}

/*
 * Cancelling a thread that is waiting (not running fn) must not wedge the others: POSIX makes
 * pthread_once no cancellation point; if wof's wait is one, it must clean up after itself.
 */
Test(once, cancelled_waiter_does_not_block_the_runner)
{
	struct th_blocker b = { .once = WOF_ONCE_INIT };
	struct th_blocker other = { .once = WOF_ONCE_INIT };
	struct th_waiter w = { .once = &b.once, .how = TH_CALL, .testcancel = true }, w2;
	pthread_t runner, t, t2;
	void *rc;

	th_start(&runner, th_run_blocker, &b);
	cr_assert(th_await(&b.entered, 1, TH_DEADLINE_S));
	th_start(&t, th_waiter_thread, &w);
	cr_assert(th_await_queued(&b.once, TH_DEADLINE_S));
	cr_assert_eq(pthread_cancel(t), 0);
	th_nap(20000); /* time for the cancellation to act, if waiting is a cancellation point */
	th_set(&b.gate, 1);
	cr_assert_eq(th_join(runner, &rc, TH_DEADLINE_S), 0,
	             "the runner hung waking waiters after one of them was cancelled");
	cr_assert_eq(th_join(t, &rc, TH_DEADLINE_S), 0, "the cancelled waiter hung");
	cr_assert_eq(rc, PTHREAD_CANCELED);
	cr_assert_not(th_get(&w.ran));
	cr_assert(wof_once_is_completed(&b.once));
	/* Parking still works afterwards, for another once. */
	th_start(&runner, th_run_blocker, &other);
	cr_assert(th_await(&other.entered, 1, TH_DEADLINE_S));
	start_waiters(&other, &w2, &t2, 1, TH_CALL);
	th_set(&other.gate, 1);
	cr_assert_eq(th_join(runner, NULL, TH_DEADLINE_S), 0, "a later runner hung");
	cr_assert_eq(join_waiters(&w2, &t2, 1), 0);
}

/* ---- try_call on one thread ---- */

static int return_arg(void *arg)
{
	return *(int *)arg;
}

Test(once, try_call_returns_failures_unchanged_and_stays_incomplete)
{
	static const int failures[] = { 1, EAGAIN, 42, -1, INT_MIN, INT_MAX };
	wof_once_t once = WOF_ONCE_INIT;
	int zero = 0, n = 0;

	for (size_t i = 0; i < sizeof failures / sizeof *failures; i++) {
		int f = failures[i];
		errno = TH_ERRNO_SENTINEL;
		cr_assert_eq(wof_once_try_call(&once, return_arg, &f), f);
		cr_assert_eq(errno, TH_ERRNO_SENTINEL);
		cr_assert_not(wof_once_is_completed(&once), "failure %d completed the once", f);
	}
	/* The same thread may run it again: the failed run is not "running" any more. */
	cr_assert_eq(wof_once_try_call(&once, return_arg, &zero), 0);
	cr_assert(wof_once_is_completed(&once));
	cr_assert_eq(wof_once_try_call(&once, th_fail_eio, NULL), 0, "a completed once ran fn");
	cr_assert_eq(wof_once_call(&once, th_count_run, &n), 0);
	cr_assert_eq(n, 0);
}

Test(once, failed_try_call_then_call_runs)
{
	wof_once_t once = WOF_ONCE_INIT;
	int n = 0;

	cr_assert_eq(wof_once_try_call(&once, th_fail_eio, NULL), EIO);
	cr_assert_eq(wof_once_call(&once, th_count_run, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert(wof_once_is_completed(&once));
}

/* ---- Re-entry and nesting ---- */

struct reentry {
	wof_once_t once, other;
	bool outer_try;
	int inner_runs, other_runs;
	int rc_call, rc_try, rc_wait, rc_other;
	bool completed_inside, errno_kept;
};

static void reenter_fn(void *arg)
{
	struct reentry *r = arg;

	errno = TH_ERRNO_SENTINEL;
	r->rc_call = wof_once_call(&r->once, th_count_run, &r->inner_runs);
	r->rc_try = wof_once_try_call(&r->once, th_count_ok, &r->inner_runs);
	r->rc_wait = wof_once_wait(&r->once);
	r->completed_inside = wof_once_is_completed(&r->once);
	r->errno_kept = errno == TH_ERRNO_SENTINEL;
	r->rc_other = wof_once_call(&r->other, th_count_run, &r->other_runs);
}

static int reenter_try_fn(void *arg)
{
	reenter_fn(arg);
	return 0;
}

static void reentry(bool outer_try)
{
	struct reentry r = { .once = WOF_ONCE_INIT, .other = WOF_ONCE_INIT };
	int rc = outer_try ? wof_once_try_call(&r.once, reenter_try_fn, &r)
	                   : wof_once_call(&r.once, reenter_fn, &r);

	cr_assert_eq(rc, 0);
	cr_assert_eq(r.rc_call, EDEADLK, "call from inside fn: %d", r.rc_call);
	cr_assert_eq(r.rc_try, EDEADLK, "try_call from inside fn: %d", r.rc_try);
	cr_assert_eq(r.rc_wait, EDEADLK, "wait from inside fn: %d", r.rc_wait);
	cr_assert_eq(r.inner_runs, 0, "a re-entrant call ran its fn");
	cr_assert_not(r.completed_inside);
	cr_assert(r.errno_kept, "EDEADLK was also put in errno");
	cr_assert_eq(r.rc_other, 0, "another once from inside fn: %d", r.rc_other);
	cr_assert_eq(r.other_runs, 1);
	cr_assert(wof_once_is_completed(&r.once));
	cr_assert(wof_once_is_completed(&r.other));
}

Test(once, reentry_from_call_is_edeadlk) { reentry(false); }
Test(once, reentry_from_try_call_is_edeadlk) { reentry(true); }

#define DEPTH 48

struct chain {
	wof_once_t onces[DEPTH];
	struct link {
		struct chain *chain;
		int level;
	} links[DEPTH];
	int ran[DEPTH];
	int bad;
};

/* Level i runs level i + 1 from inside its fn; every outer level is EDEADLK from inside. */
static void chain_fn(void *arg)
{
	struct link *l = arg;
	struct chain *c = l->chain;
	int dummy = 0;

	c->ran[l->level]++;
	for (int j = 0; j <= l->level; j++)
		if (wof_once_call(&c->onces[j], th_count_run, &dummy) != EDEADLK ||
		    wof_once_wait(&c->onces[j]) != EDEADLK)
			c->bad++;
	if (dummy != 0)
		c->bad++;
	if (l->level + 1 < DEPTH) {
		wof_once_t *next = &c->onces[l->level + 1];
		if (wof_once_call(next, chain_fn, &c->links[l->level + 1]) != 0 ||
		    !wof_once_is_completed(next))
			c->bad++;
	}
}

Test(once, nested_onces_run_and_outer_ones_are_edeadlk)
{
	struct chain *c = calloc(1, sizeof *c);

	cr_assert_not_null(c);
	for (int i = 0; i < DEPTH; i++)
		c->links[i] = (struct link){ c, i };
	cr_assert_eq(wof_once_call(&c->onces[0], chain_fn, &c->links[0]), 0);
	cr_assert_eq(c->bad, 0, "%d wrong results inside nested fns", c->bad);
	for (int i = 0; i < DEPTH; i++) {
		cr_assert_eq(c->ran[i], 1, "level %d ran %d times", i, c->ran[i]);
		cr_assert(wof_once_is_completed(&c->onces[i]));
	}
	free(c);
}

/* ---- wof_once_wait ---- */

Test(once, wait_sleeps_until_another_thread_completes)
{
	struct th_blocker b = { .once = WOF_ONCE_INIT }; /* used for its once and payload only */
	struct th_waiter w[3];
	pthread_t t[3];

	/* Nobody runs fn: the waiters must not return, and must not run anything. */
	start_waiters(&b, w, t, 3, TH_WAIT);
	cr_assert_not(wof_once_is_completed(&b.once));
	b.gate = 1;
	cr_assert_eq(wof_once_call(&b.once, th_block_fn, &b), 0);
	cr_assert_eq(join_waiters(w, t, 3), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(w[i].saw, 42, "waiter %d returned without seeing fn's write", i);
	/* Complete: returns 0 at once. */
	cr_assert_eq(wof_once_wait(&b.once), 0);
}

Test(once, wait_outlasts_failed_and_cancelled_runs)
{
	struct th_blocker b = { .once = WOF_ONCE_INIT };
	struct th_waiter w;
	pthread_t t, runner;
	int n = 0;

	start_waiters(&b, &w, &t, 1, TH_WAIT);
	cr_assert_eq(wof_once_try_call(&b.once, th_fail_eio, NULL), EIO);
	th_start(&runner, th_run_blocker, &b);
	cr_assert(th_await(&b.entered, 1, TH_DEADLINE_S));
	cr_assert_eq(pthread_cancel(runner), 0);
	cr_assert_eq(th_join(runner, NULL, TH_DEADLINE_S), 0);
	th_nap(20000);
	cr_assert_not(th_get(&w.returned), "wait returned after a failed or cancelled run");
	cr_assert_not(wof_once_is_completed(&b.once));
	cr_assert_eq(wof_once_call(&b.once, th_count_run, &n), 0);
	cr_assert_eq(join_waiters(&w, &t, 1), 0);
	cr_assert_eq(n, 1);
}

/* With condvar parking, onces share buckets: a broadcast for one must not end another's wait. */
Test(once, wait_is_not_ended_by_other_onces_completing)
{
	enum { N = 256 };
	struct th_blocker b = { .once = WOF_ONCE_INIT };
	struct th_blocker *others = calloc(N, sizeof *others);
	struct th_waiter w, wo;
	pthread_t t, to;
	int n = 0;

	cr_assert_not_null(others);
	start_waiters(&b, &w, &t, 1, TH_WAIT);
	for (int i = 0; i < N; i++) {
		wo = (struct th_waiter){ .once = &others[i].once, .how = TH_WAIT };
		th_start(&to, th_waiter_thread, &wo);
		cr_assert(th_await_queued_now(&others[i].once, TH_DEADLINE_S));
		cr_assert_eq(wof_once_call(&others[i].once, th_count_run, &n), 0);
		cr_assert_eq(th_join(to, NULL, TH_DEADLINE_S), 0, "waiter on once %d hung", i);
	}
	cr_assert_eq(n, N);
	cr_assert_not(th_get(&w.returned), "a wait ended when other onces completed");
	cr_assert_eq(wof_once_call(&b.once, th_count_run, &n), 0);
	cr_assert_eq(join_waiters(&w, &t, 1), 0);
	free(others);
}

/* ---- errno ---- */

static int first_use_keeps_errno(void *arg)
{
	wof_once_t once = WOF_ONCE_INIT;
	int n = 0;

	(void)arg;
	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(wof_once_call(&once, th_count_run, &n) == 0 && n == 1);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	return 0;
}

Test(once, errno_kept_by_the_first_call_of_a_process)
{
	/* No wof call before this fork(): the child's first call sets up fork detection. */
	TH_ASSERT_CHILD(TH_FORK, first_use_keeps_errno, NULL);
	cr_assert_eq(first_use_keeps_errno(NULL), 0);
}

Test(once, errno_kept_by_slow_paths_and_parked_callers)
{
	wof_once_t once = WOF_ONCE_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_try_call(&once, th_fail_eio, NULL), EIO);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "a failed try_call changed errno");
	cr_assert_eq(wof_once_try_call(&once, th_count_ok, &(int){ 0 }), 0);
	cr_assert_eq(wof_once_wait(&once), 0);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "a completing try_call changed errno");
	blocked(TH_END_RETURN, false, false); /* each parked caller checks its own errno */
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

static void ignore_signal(int sig)
{
	(void)sig;
}

/* A signal handled without SA_RESTART interrupts a parked caller's sleep (FUTEX_WAIT returns
 * EINTR): the caller must sleep again, and its errno must not show the interruption. */
Test(once, signals_neither_end_waits_nor_change_errno)
{
	struct sigaction sa = { .sa_handler = ignore_signal }, old;
	struct th_blocker b = { .once = WOF_ONCE_INIT };
	struct th_waiter w[3];
	pthread_t runner, t[3];

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	th_start(&runner, th_run_blocker, &b);
	cr_assert(th_await(&b.entered, 1, TH_DEADLINE_S));
	start_waiters(&b, w, t, 3, ALL_HOWS);
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 3; i++)
			cr_assert_eq(pthread_kill(t[i], SIGUSR1), 0);
		th_nap(5000);
	}
	for (int i = 0; i < 3; i++)
		cr_assert_not(th_get(&w[i].returned), "a signal ended waiter %d's wait", i);
	th_set(&b.gate, 1);
	cr_assert_eq(th_join(runner, NULL, TH_DEADLINE_S), 0);
	cr_assert_eq(join_waiters(w, t, 3), 0); /* each checks its errno */
	sigaction(SIGUSR1, &old, NULL);
}

/* ---- Fork: children re-run; the parent keeps its state ---- */

struct fork_ctx {
	wof_once_t once;
	int runs;
	uint32_t parent_gen;
	enum th_fork_kind kind;
	int depth;
};

/* In the child (and grandchild): the ancestor's completion does not count here. */
static int child_reruns_body(void *arg)
{
	struct fork_ctx *c = arg;
	int before = c->runs;

	TH_CHILD_CHECK(!wof_once_is_completed(&c->once));
	TH_CHILD_CHECK(wof_generation() != c->parent_gen);
	TH_CHILD_CHECK(wof_once_try_call(&c->once, th_fail_eio, NULL) == EIO);
	TH_CHILD_CHECK(wof_once_call(&c->once, th_count_run, &c->runs) == 0);
	TH_CHILD_CHECK(c->runs == before + 1 && wof_once_is_completed(&c->once));
	TH_CHILD_CHECK(wof_once_call(&c->once, th_count_run, &c->runs) == 0);
	TH_CHILD_CHECK(c->runs == before + 1 && wof_once_wait(&c->once) == 0);
	if (c->depth++ == 0) {
		/* A grandchild made the same way forgets this child's completion too (its failed
		 * check is the one the parent reports: the first recorded wins). */
		c->parent_gen = wof_generation();
		pid_t grandchild = th_spawn(c->kind, child_reruns_body, c);
		TH_CHILD_CHECK(th_wait(grandchild, TH_DEADLINE_S) == 0);
	}
	return 0;
}

static void child_reruns(enum th_fork_kind kind)
{
	struct fork_ctx c = { .once = WOF_ONCE_INIT, .kind = kind };

	TH_REQUIRE_DETECTED(kind);
	cr_assert_eq(wof_once_call(&c.once, th_count_run, &c.runs), 0);
	c.parent_gen = wof_generation();
	TH_ASSERT_CHILD(kind, child_reruns_body, &c);
	cr_assert(wof_once_is_completed(&c.once), "the parent lost its completion");
	cr_assert_eq(wof_once_call(&c.once, th_count_run, &c.runs), 0);
	cr_assert_eq(c.runs, 1, "the parent ran fn again");
	cr_assert_eq(wof_generation(), c.parent_gen);
}

Test(once_fork, child_reruns_after_fork) { child_reruns(TH_FORK); }
Test(once_fork, child_reruns_after__Fork) { child_reruns(TH_UFORK); }
Test(once_fork, child_reruns_after_SYS_fork) { child_reruns(TH_SYS_FORK); }
Test(once_fork, child_reruns_after_clone) { child_reruns(TH_CLONE); }

/* Fork while another thread is inside fn, and another is parked waiting for it. */

static void fork_during_fn(enum th_fork_kind kind)
{
	TH_REQUIRE_DETECTED(kind);
	TH_ASSERT_PASSED(th_during_run(kind, 1, true, NULL));
}

Test(once_fork, fork_while_fn_runs_elsewhere) { fork_during_fn(TH_FORK); }
Test(once_fork, _Fork_while_fn_runs_elsewhere) { fork_during_fn(TH_UFORK); }
Test(once_fork, SYS_fork_while_fn_runs_elsewhere) { fork_during_fn(TH_SYS_FORK); }
Test(once_fork, clone_while_fn_runs_elsewhere) { fork_during_fn(TH_CLONE); }

/* A thread of the child waits; the child's main thread completes later. fork() only: the
 * child starts a thread. */
static int child_waits_completed(void *arg)
{
	struct fork_ctx *c = arg;

	return th_child_waits(&c->once, &c->runs);
}

Test(once_fork, wait_in_child_ignores_completion_in_parent)
{
	struct fork_ctx c = { .once = WOF_ONCE_INIT };

	cr_assert_eq(wof_once_call(&c.once, th_count_run, &c.runs), 0);
	TH_ASSERT_CHILD(TH_FORK, child_waits_completed, &c);
	cr_assert_eq(c.runs, 1);
}

static int child_waits_running(void *arg)
{
	struct th_during *d = arg;

	/* The inherited word says RUNNING|QUEUED, about the parent's threads. */
	return th_child_waits(&d->b.once, &d->child_runs);
}

Test(once_fork, wait_in_child_ignores_run_in_parent)
{
	TH_ASSERT_PASSED(th_during_run(TH_FORK, 3, true, child_waits_running));
}

/* fn itself forks: complete in the parent, incomplete in the child. */

static void fork_inside_fn(enum th_fork_kind kind, int nwaiters)
{
	TH_REQUIRE_DETECTED(kind);
	TH_ASSERT_PASSED(th_inside_run(kind, nwaiters));
}

Test(once_fork, fork_inside_fn) { fork_inside_fn(TH_FORK, 0); }
Test(once_fork, fork_inside_fn_with_waiters) { fork_inside_fn(TH_FORK, 3); }
Test(once_fork, _Fork_inside_fn) { fork_inside_fn(TH_UFORK, 3); }
Test(once_fork, SYS_fork_inside_fn) { fork_inside_fn(TH_SYS_FORK, 3); }
Test(once_fork, clone_inside_fn) { fork_inside_fn(TH_CLONE, 3); }

/* Hundreds of children forked while two threads go through fresh onces and a hot one. */
Test(once_fork, children_forked_while_threads_hammer, .timeout = 60)
{
	enum th_fork_kind kinds[TH_FORK_KINDS];
	int nkinds = th_detected_kinds(kinds);

	TH_ASSERT_PASSED(th_hammer_run(2, 240, kinds, nkinds));
}
