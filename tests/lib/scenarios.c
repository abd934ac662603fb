/* SPDX-License-Identifier: MIT */
/*
 * The part of the test support library that calls wof (see wof-test.h): which children wof
 * notices, polls on a once's state word, the building blocks of the scenarios, and the fork
 * scenarios. Apart from wof-test.c, so that a program that loads libwof itself (dlopen-fork,
 * reload) links only the process helpers.
 */
#include "wof-test.h"

#include <stdarg.h>
#include <string.h>
#if TH_PTHREADS
#include <sched.h>
#endif
#ifndef _WIN32
#include <unistd.h>
#endif

#if TH_PTHREADS
bool th_await_queued_now(wof_once_t *once, double seconds)
{
	uint64_t mine = (uint64_t)wof_generation() << 32;
	double deadline = th_now() + seconds;

	for (;;) {
		/* Acquire: pairs with the parking thread's release of QUEUED (as the library's). */
		uint64_t word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
		if ((word & ~(uint64_t)UINT32_MAX) == mine && (word & WOF_INTERNAL_ONCE_QUEUED))
			return true;
		if (th_now() > deadline)
			return false;
		th_nap(50);
	}
}

bool th_await_queued(wof_once_t *once, double seconds)
{
	if (!th_await_queued_now(once, seconds))
		return false;
	th_nap(20000);
	return true;
}

/* ---- Building blocks of the scenarios: fns, and the threads around them ---- */

void th_count_run(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

int th_count_ok(void *arg)
{
	th_count_run(arg);
	return 0;
}

int th_fail_eio(void *arg)
{
	(void)arg;
	return EIO;
}

int th_runs(int *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static int th_payload_of(const struct th_item *it)
{
	return (int)(((uintptr_t)it >> 3) ^ 0x5eed);
}

static void th_item_enter(struct th_item *it)
{
	if (__atomic_fetch_add(&it->active, 1, __ATOMIC_RELAXED) != 0)
		__atomic_store_n(&it->overlap, 1, __ATOMIC_RELAXED);
	/* A run that takes a while now and then: other callers find RUNNING and park. */
	if (((uintptr_t)it / sizeof *it) % 8 == 0)
		sched_yield();
}

static int th_item_try(void *arg)
{
	struct th_item *it = arg;
	int attempt = __atomic_add_fetch(&it->attempts, 1, __ATOMIC_RELAXED);
	int rc = EAGAIN;

	th_item_enter(it);
	if (attempt > it->fails) {
		it->payload = th_payload_of(it);
		__atomic_add_fetch(&it->runs, 1, __ATOMIC_RELAXED);
		rc = 0;
	}
	__atomic_sub_fetch(&it->active, 1, __ATOMIC_RELAXED);
	return rc;
}

static void th_item_fill(void *arg)
{
	(void)th_item_try(arg);
}

enum th_how th_racer_how(int id, bool use_try)
{
	return id % 4 == 3 ? TH_WAIT : use_try ? TH_TRY : TH_CALL;
}

bool th_item_take_part(struct th_item *it, enum th_how how)
{
	int rc;

	switch (how) {
	case TH_WAIT:
		rc = wof_once_wait(&it->once);
		break;
	case TH_TRY:
		do
			rc = wof_once_try_call(&it->once, th_item_try, it);
		while (rc == EAGAIN);
		break;
	default:
		rc = wof_once_call(&it->once, th_item_fill, it);
		break;
	}
	return rc == 0 && it->payload == th_payload_of(it) && th_runs(&it->runs) == 1 &&
	       wof_once_is_completed(&it->once);
}

#define TH_RACE_BATCH 64

struct th_race {
	struct th_item items[TH_RACE_BATCH];
	int rounds;
	bool use_try;
	pthread_barrier_t barrier;
	int bad;         /* atomic: calls that returned early, with an error or a wrong payload */
	const char *err; /* the first failure the checks found */
};

/* A thread of a race or a hammer: the shared state, and its own number. */
struct th_racer {
	void *group;
	int id;
};

/* Fresh onces for the next round. */
static void th_race_refill(struct th_race *r, int round)
{
	memset(r->items, 0, sizeof r->items);
	for (int j = 0; j < TH_RACE_BATCH; j++)
		r->items[j].fails = r->use_try ? (round + j) % 3 : 0;
}

/* Run by one thread between rounds, while the others wait at the barrier. */
static void th_race_check(struct th_race *r, int round)
{
	for (int j = 0; !r->err && j < TH_RACE_BATCH; j++) {
		struct th_item *it = &r->items[j];
		if (it->runs != 1 || it->attempts != it->fails + 1 || it->overlap ||
		    !wof_once_is_completed(&it->once))
			r->err = th_failed("round %d, once %d: %d completing runs, %d in all "
			                   "(expected %d), overlapping %d", round, j, it->runs,
			                   it->attempts, it->fails + 1, it->overlap);
	}
	if (!r->err && r->bad)
		r->err = th_failed("round %d: %d calls returned early, with an error or saw a "
		                   "wrong payload", round, r->bad);
	th_race_refill(r, round + 1);
}

static void *th_race_thread(void *arg)
{
	struct th_racer *me = arg;
	struct th_race *r = me->group;
	enum th_how how = th_racer_how(me->id, r->use_try);
	int offset = me->id % 2 ? me->id * 7 : 0;

	for (int round = 0; round < r->rounds; round++) {
		pthread_barrier_wait(&r->barrier);
		for (int k = 0; k < TH_RACE_BATCH; k++)
			if (!th_item_take_part(&r->items[(k + offset) % TH_RACE_BATCH], how))
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		if (pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
			th_race_check(r, round);
	}
	return NULL;
}

const char *th_race_run(int nthreads, int rounds, bool use_try)
{
	struct th_race *r = calloc(1, sizeof *r);
	struct th_racer racers[TH_MAX_RACERS];
	pthread_t t[TH_MAX_RACERS];
	const char *err;

	if (!r || nthreads > TH_MAX_RACERS)
		return "cannot set up the race";
	r->rounds = rounds;
	r->use_try = use_try;
	th_race_refill(r, 0);
	pthread_barrier_init(&r->barrier, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		racers[i] = (struct th_racer){ r, i };
		th_start(&t[i], th_race_thread, &racers[i]);
	}
	for (int i = 0; i < nthreads; i++)
		if (th_join(t[i], NULL, 12 * TH_DEADLINE_S) != 0)
			return th_failed("racing thread %d hung", i);
	pthread_barrier_destroy(&r->barrier);
	err = r->err;
	free(r);
	return err;
}

void th_block_fn(void *arg)
{
	struct th_blocker *b = arg;

	th_set(&b->entered, 1);
	th_gate_wait(&b->gate); /* a cancellation point */
	if (b->end == TH_END_EXIT)
		pthread_exit(NULL);
	b->payload = 42;
	th_set(&b->finished, 1);
}

static int th_block_try_fn(void *arg)
{
	th_block_fn(arg);
	return ((struct th_blocker *)arg)->result;
}

void *th_run_blocker(void *arg)
{
	struct th_blocker *b = arg;
	int rc = b->use_try ? wof_once_try_call(&b->once, th_block_try_fn, b)
	                    : wof_once_call(&b->once, th_block_fn, b);

	return (void *)(intptr_t)rc;
}

static void th_waiter_fn(void *arg)
{
	th_set(&((struct th_waiter *)arg)->ran, 1);
}

static int th_waiter_try_fn(void *arg)
{
	th_waiter_fn(arg);
	return 0;
}

void *th_waiter_thread(void *arg)
{
	struct th_waiter *w = arg;

	errno = TH_ERRNO_SENTINEL;
	th_set(&w->entered, 1);
	switch (w->how) {
	case TH_CALL:
		w->rc = wof_once_call(w->once, th_waiter_fn, w);
		break;
	case TH_TRY:
		w->rc = wof_once_try_call(w->once, th_waiter_try_fn, w);
		break;
	case TH_WAIT:
		w->rc = wof_once_wait(w->once);
		break;
	}
	w->errno_kept = errno == TH_ERRNO_SENTINEL;
	if (w->rc == 0 && w->payload)
		w->saw = *w->payload;
	th_set(&w->returned, 1);
	if (w->testcancel)
		pthread_testcancel();
	return NULL;
}

/* Starts n (at most TH_MAX_WAITERS) waiters on `once`: call, try_call, wait in turn. */
static int th_start_waiters(struct th_waiter *w, pthread_t *t, int n, wof_once_t *once,
                            int *payload)
{
	n = n < TH_MAX_WAITERS ? n : TH_MAX_WAITERS;
	for (int i = 0; i < n; i++) {
		w[i] = (struct th_waiter){ .once = once, .how = (enum th_how)(i % 3),
		                           .payload = payload };
		th_start(&t[i], th_waiter_thread, &w[i]);
	}
	return n;
}


/* Joins them: NULL if each returned 0 with errno kept (and saw 42 in *payload), else what
 * went wrong. *ran: how many ran their own fn. */
static const char *th_join_waiters(struct th_waiter *w, pthread_t *t, int n, int *ran)
{
	*ran = 0;
	for (int i = 0; i < n; i++) {
		if (th_join(t[i], NULL, TH_DEADLINE_S) != 0)
			return th_failed("waiter %d hung", i);
		if (w[i].rc != 0 || !w[i].errno_kept || (w[i].payload && w[i].saw != 42))
			return th_failed("waiter %d got %d, errno kept %d, saw %d", i, w[i].rc,
			                 w[i].errno_kept, w[i].saw);
		*ran += w[i].ran;
	}
	return NULL;
}

const char *th_blocked_run(enum th_block_end end, bool cancel, bool use_try, int nwaiters,
                           long park_us)
{
	struct th_blocker b = { .once = WOF_ONCE_INIT, .end = end, .use_try = use_try,
		                .result = EAGAIN };
	struct th_waiter w[TH_MAX_WAITERS];
	pthread_t runner, t[TH_MAX_WAITERS];
	bool completes = !cancel && end == TH_END_RETURN && !use_try;
	void *rc, *want = cancel ? PTHREAD_CANCELED
	                  : end == TH_END_RETURN && use_try ? (void *)(intptr_t)EAGAIN : NULL;
	const char *err;
	int ran, early, again = 0;

	th_start(&runner, th_run_blocker, &b);
	if (!th_await(&b.entered, 1, TH_DEADLINE_S))
		return "fn never started";
	nwaiters = th_start_waiters(w, t, nwaiters, &b.once, completes ? &b.payload : NULL);
	if (park_us >= 0 && !th_await_queued_now(&b.once, TH_DEADLINE_S))
		return "nobody parked";
	if (park_us > 0)
		th_nap(park_us);
	early = wof_once_is_completed(&b.once);
	for (int i = 0; i < nwaiters; i++)
		early += th_get(&w[i].returned);
	if (cancel)
		pthread_cancel(runner);
	else
		th_set(&b.gate, 1);
	if (th_join(runner, &rc, TH_DEADLINE_S) != 0)
		return "the runner hung";
	if ((err = th_join_waiters(w, t, nwaiters, &ran)) != NULL)
		return err;
	if (rc != want || b.finished != (end == TH_END_RETURN && !cancel) || early ||
	    ran != !completes)
		return th_failed("the runner ended with %p (expected %p), fn finished %d; %d "
		                 "returns or completion before it, %d waiters ran their fn "
		                 "(expected %d)", rc, want, b.finished, early, ran, !completes);
	if (!wof_once_is_completed(&b.once) || wof_once_call(&b.once, th_count_run, &again) != 0 ||
	    again != 0)
		return "the once is not complete afterwards";
	return NULL;
}

#endif /* TH_PTHREADS */

#ifndef _WIN32
/* Until every waiter's thread is set up and in its call: a fork while a thread is still being
 * made can leave a sanitizer's allocator locked in the child (docs/sanitizers.md). */
static bool th_await_entered(struct th_waiter *w, int n)
{
	for (int i = 0; i < n; i++)
		if (!th_await(&w[i].entered, 1, TH_DEADLINE_S))
			return false;
	return true;
}

bool th_fork_detected(enum th_fork_kind kind)
{
	return kind == TH_FORK || (wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK) != 0;
}

int th_detected_kinds(enum th_fork_kind kinds[TH_FORK_KINDS])
{
	int n = 0;

	for (int k = 0; k < TH_FORK_KINDS; k++)
		if (th_fork_detected((enum th_fork_kind)k))
			kinds[n++] = (enum th_fork_kind)k;
	return n;
}

/* ---- Fork scenarios, shared by the Criterion tests and the plain programs ---- */

int th_during_child(void *arg)
{
	struct th_during *d = arg;
	int before = d->child_runs;

	TH_CHILD_CHECK(!wof_once_is_completed(&d->b.once));
	TH_CHILD_CHECK(wof_once_try_call(&d->b.once, th_fail_eio, NULL) == EIO);
	TH_CHILD_CHECK(wof_once_call(&d->b.once, th_count_run, &d->child_runs) == 0);
	TH_CHILD_CHECK(d->child_runs == before + 1);
	TH_CHILD_CHECK(wof_once_is_completed(&d->b.once) && wof_once_wait(&d->b.once) == 0);
	return 0;
}

const char *th_during_run(enum th_fork_kind kind, int nwaiters, bool park, int (*child)(void *))
{
	struct th_during d = { .b = { .once = WOF_ONCE_INIT } };
	struct th_waiter w[TH_MAX_WAITERS];
	pthread_t runner, t[TH_MAX_WAITERS];
	void *rc;
	const char *err;
	int code, ran, early;

	th_start(&runner, th_run_blocker, &d.b);
	if (!th_await(&d.b.entered, 1, TH_DEADLINE_S))
		return "fn never started";
	nwaiters = th_start_waiters(w, t, nwaiters, &d.b.once, &d.b.payload);
	if (park && nwaiters && !th_await_queued_now(&d.b.once, TH_DEADLINE_S))
		return "nobody parked";
	if (!th_await_entered(w, nwaiters))
		return "a waiter never started";
	code = th_wait(th_spawn(kind, child ? child : th_during_child, &d), TH_DEADLINE_S);
	early = wof_once_is_completed(&d.b.once);
	for (int i = 0; i < nwaiters; i++)
		early += th_get(&w[i].returned);
	th_set(&d.b.gate, 1);
	if (th_join(runner, &rc, TH_DEADLINE_S) != 0)
		return "the runner hung";
	if ((err = th_join_waiters(w, t, nwaiters, &ran)) != NULL)
		return err;
	if (code != 0)
		return th_failed("%s child: %s", th_fork_names[kind], th_outcome(code));
	if (early || rc || ran || !d.b.finished || !wof_once_is_completed(&d.b.once) ||
	    d.child_runs)
		return th_failed("the parent's once: %d returns or completion before fn, runner "
		                 "got %p, %d waiters ran fn, finished %d, completed %d, child's "
		                 "runs %d", early, rc, ran, d.b.finished,
		                 wof_once_is_completed(&d.b.once), d.child_runs);
	return NULL;
}

int th_child_waits(wof_once_t *once, int *runs)
{
	struct th_waiter w = { .once = once, .how = TH_WAIT };
	pthread_t t;
	int before = *runs;

	TH_CHILD_CHECK(!wof_once_is_completed(once));
	TH_CHILD_CHECK(pthread_create(&t, NULL, th_waiter_thread, &w) == 0);
	TH_CHILD_CHECK(th_await_queued(once, 5));
	TH_CHILD_CHECK(!th_get(&w.returned)); /* else the parent's completion, or run, counted */
	TH_CHILD_CHECK(wof_once_call(once, th_count_run, runs) == 0 && *runs == before + 1);
	TH_CHILD_CHECK(th_join(t, NULL, 5) == 0);
	TH_CHILD_CHECK(w.rc == 0);
	return 0;
}

struct th_inside {
	wof_once_t once;
	enum th_fork_kind kind;
	int nwaiters;
	int runs;
	pid_t pid; /* 0 in the child, -1 when fn could not fork */
	bool in_child;
	struct th_waiter w[TH_MAX_WAITERS];
	pthread_t t[TH_MAX_WAITERS];
};

static void th_forking_fn(void *arg)
{
	struct th_inside *s = arg;

	s->runs++;
	s->pid = -1;
	s->nwaiters = th_start_waiters(s->w, s->t, s->nwaiters, &s->once, NULL);
	if (s->nwaiters && (!th_await_queued_now(&s->once, TH_DEADLINE_S) ||
	                    !th_await_entered(s->w, s->nwaiters)))
		return;
	s->pid = th_fork(s->kind);
	if (s->pid == 0)
		s->in_child = true;
}

/* Runs the scenario; returns only in the parent. */
const char *th_inside_run(enum th_fork_kind kind, int nwaiters)
{
	struct th_inside *s = calloc(1, sizeof *s);
	const char *err = NULL;
	int rc, code, ran;

	if (!s)
		return "out of memory";
	s->kind = kind;
	s->nwaiters = nwaiters;
	rc = wof_once_call(&s->once, th_forking_fn, s);
	if (s->in_child) {
		if (rc != 0 || s->runs != 1)
			_exit(1);
		if (wof_once_is_completed(&s->once))
			_exit(2);
		if (wof_once_call(&s->once, th_count_run, &s->runs) != 0 || s->runs != 2)
			_exit(3);
		_exit(wof_once_is_completed(&s->once) ? 0 : 4);
	}
	code = th_wait(s->pid, TH_DEADLINE_S);
	if ((err = th_join_waiters(s->w, s->t, s->nwaiters, &ran)) != NULL)
		return err;
	if (rc != 0)
		err = th_failed("wof_once_call returned %d in the parent", rc);
	else if (s->pid <= 0)
		err = th_failed("fn did not fork (%d)", (int)s->pid);
	else if (!wof_once_is_completed(&s->once) || s->runs != 1)
		err = th_failed("the parent's once: completed %d, %d runs",
		                wof_once_is_completed(&s->once), s->runs);
	else if (ran != 0)
		err = th_failed("%d waiters of the parent ran their fn", ran);
	else if (code != 0)
		err = th_failed("%s child: %s", th_fork_names[kind], th_outcome(code));
	free(s);
	return err;
}

/*
 * Children forked, one after another, while threads race through fresh onces and call a hot
 * completed one. Each child finds the hot once and the onces the hammers were at (completed,
 * running, parked on or untouched) incomplete, and runs each exactly once.
 */
#define TH_HAMMER_GRANT 128 /* fresh onces the hammers may use per child */

struct th_hammer {
	struct th_item *items;
	wof_once_t hot;
	int hot_runs;
	int budget; /* atomic: items the hammers may use */
	int progress[TH_MAX_HAMMERS]; /* atomic: items each hammer finished */
	int nthreads;
	int stop;
	int bad; /* atomic: wrong results in the parent */
};

static void *th_hammer_thread(void *arg)
{
	struct th_racer *me = arg;
	struct th_hammer *h = me->group;
	int i = 0;

	while (!th_get(&h->stop)) {
		if (wof_once_call(&h->hot, th_count_run, &h->hot_runs) != 0 ||
		    !wof_once_is_completed(&h->hot))
			__atomic_add_fetch(&h->bad, 1, __ATOMIC_RELAXED);
		if (i < th_get(&h->budget)) {
			struct th_item *it = &h->items[i];
			if (wof_once_call(&it->once, th_count_run, &it->runs) != 0 ||
			    th_runs(&it->runs) != 1)
				__atomic_add_fetch(&h->bad, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&h->progress[me->id], ++i, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

static int th_hammer_child(void *arg)
{
	struct th_hammer *h = arg;
	/* Atomic reads: the parent's threads wrote these with atomics (TSan remembers). */
	int budget = th_get(&h->budget), hi = 0;
	int before = th_runs(&h->hot_runs);

	for (int i = 0; i < h->nthreads; i++)
		hi = th_get(&h->progress[i]) > hi ? th_get(&h->progress[i]) : hi;
	TH_CHILD_CHECK(!wof_once_is_completed(&h->hot));
	TH_CHILD_CHECK(wof_once_call(&h->hot, th_count_run, &h->hot_runs) == 0);
	TH_CHILD_CHECK(th_runs(&h->hot_runs) == before + 1);
	for (int j = hi > 16 ? hi - 16 : 0; j < budget && j < hi + 16; j++) {
		struct th_item *it = &h->items[j];
		before = th_runs(&it->runs);
		TH_CHILD_CHECK(!wof_once_is_completed(&it->once));
		TH_CHILD_CHECK(wof_once_call(&it->once, th_count_run, &it->runs) == 0);
		TH_CHILD_CHECK(th_runs(&it->runs) == before + 1);
		TH_CHILD_CHECK(wof_once_is_completed(&it->once));
	}
	return 0;
}

const char *th_hammer_run(int nthreads, int nchildren, const enum th_fork_kind *kinds, int nkinds)
{
	struct th_hammer h = { .hot = WOF_ONCE_INIT, .budget = TH_HAMMER_GRANT };
	struct th_racer hs[TH_MAX_HAMMERS];
	pthread_t t[TH_MAX_HAMMERS];
	int failures = 0, first_code = 0, first_child = -1, done = INT32_MAX;
	const char *err = NULL;

	h.nthreads = nthreads < TH_MAX_HAMMERS ? nthreads : TH_MAX_HAMMERS;
	h.items = calloc((size_t)TH_HAMMER_GRANT * ((size_t)nchildren + 1), sizeof *h.items);
	if (!h.items)
		return "out of memory";
	if (wof_once_call(&h.hot, th_count_run, &h.hot_runs) != 0)
		return "wof_once_call failed";
	for (int i = 0; i < h.nthreads; i++) {
		hs[i] = (struct th_racer){ &h, i };
		th_start(&t[i], th_hammer_thread, &hs[i]);
	}
	for (int c = 0; c < nchildren; c++) {
		int code = th_wait(th_spawn(kinds[c % nkinds], th_hammer_child, &h), TH_DEADLINE_S);
		if (code != 0 && failures++ == 0) {
			first_code = code;
			first_child = c;
		}
		__atomic_add_fetch(&h.budget, TH_HAMMER_GRANT, __ATOMIC_RELAXED);
	}
	th_set(&h.stop, 1);
	for (int i = 0; i < h.nthreads; i++) {
		if (th_join(t[i], NULL, TH_DEADLINE_S) != 0)
			return th_failed("hammer thread %d hung", i);
		done = h.progress[i] < done ? h.progress[i] : done;
	}
	if (failures)
		err = th_failed("%d of %d children failed; the first, #%d (%s): %s", failures,
		                nchildren, first_child, th_fork_names[kinds[first_child % nkinds]],
		                th_outcome(first_code));
	else if (h.bad || h.hot_runs != 1)
		err = th_failed("the parent: %d wrong results, hot once ran %d times", h.bad,
		                h.hot_runs);
	for (int i = 0; !err && i < done; i++)
		if (h.items[i].runs != 1)
			err = th_failed("the parent's once %d ran %d times", i, h.items[i].runs);
	free(h.items);
	return err;
}

/*
 * A chain of generations, each the child of the one before, made by `kinds` in turn (the
 * first by fork(), so that the rest are made by single-threaded processes). Each link checks
 * its generation against every ancestor's, inherited in `ancestors`, reports it through a
 * pipe, makes the next link and passes its exit status up.
 */

struct th_chain {
	uint32_t ancestors[TH_CHAIN_MAX + 1];
	int depth; /* ancestors known */
	int length;
	const enum th_fork_kind *kinds;
	int nkinds;
	int fd;
};

static int th_chain_link(void *arg)
{
	struct th_chain *c = arg;
	uint32_t gen = wof_generation();
	int code;

	if (gen == 0)
		return 1;
	for (int i = 0; i < c->depth; i++)
		if (c->ancestors[i] == gen)
			return 2;
	if (write(c->fd, &gen, sizeof gen) != (ssize_t)sizeof gen)
		return 3;
	c->ancestors[c->depth++] = gen;
	if (c->depth > c->length)
		return 0;
	code = th_wait(th_spawn(c->kinds[c->depth % c->nkinds], th_chain_link, c), TH_DEADLINE_S);
	/* A deeper link's failure comes up as it is; a hang or signal here reads as 4. */
	return code < 128 ? code : 4;
}

const char *th_chain_run(int length, const enum th_fork_kind *kinds, int nkinds)
{
	struct th_chain *c = calloc(1, sizeof *c);
	uint32_t before, gen;
	int fds[2], code;
	const char *err = NULL;

	if (!c || length > TH_CHAIN_MAX || pipe(fds) != 0)
		return "cannot set up the chain";
	*c = (struct th_chain){ .length = length, .kinds = kinds, .nkinds = nkinds, .fd = fds[1] };
	c->ancestors[c->depth++] = before = wof_generation();
	code = th_wait(th_spawn(TH_FORK, th_chain_link, c), 3 * TH_DEADLINE_S);
	close(fds[1]);
	if (code != 0)
		err = th_failed("a link of the chain failed: %s", th_outcome(code));
	for (int i = 0; !err && i < length; i++, before = gen) {
		if (read(fds[0], &gen, sizeof gen) != (ssize_t)sizeof gen)
			err = th_failed("link %d did not report", i + 1);
		else if ((int32_t)(gen - before) <= 0)
			err = th_failed("link %d: generation %u after %u", i + 1, gen, before);
	}
	close(fds[0]);
	free(c);
	return err;
}

/* ---- Torture runs ---- */

unsigned th_torture_kinds(bool *child_threads)
{
	unsigned kinds = 1u << TH_FORK;

	*child_threads = !TH_SANITIZER && !getenv("WOF_TORTURE_NO_CHILD_THREADS");
	if (!TH_TSAN && (wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK))
		kinds |= 1u << TH_UFORK | 1u << TH_SYS_FORK | 1u << TH_CLONE;
	return kinds;
}

enum th_fork_kind th_torture_pick(unsigned kinds, enum th_fork_kind made_by, uint64_t *rng)
{
	enum th_fork_kind kind;

	if (made_by != TH_FORK)
		kinds &= 1u << TH_SYS_FORK | 1u << TH_CLONE;
	if (!kinds)
		return TH_FORK_KINDS;
	do
		kind = (enum th_fork_kind)(th_rnd(rng) % TH_FORK_KINDS);
	while (!(kinds & 1u << kind));
	return kind;
}

static char th_deadline_message[256];

static void th_on_deadline(int sig)
{
	ssize_t ignored = write(STDOUT_FILENO, th_deadline_message, strlen(th_deadline_message));

	(void)sig;
	(void)ignored;
	_exit(3);
}

void th_torture_deadline(unsigned seconds, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(th_deadline_message, sizeof th_deadline_message, fmt, ap);
	va_end(ap);
	signal(SIGALRM, th_on_deadline);
	alarm(seconds);
}

#endif /* !_WIN32 */
