/* SPDX-License-Identifier: MIT */
/*
 * stress-fork: wof_once_t and wof_generation() across forks, as a plain program, so that the
 * fork scenarios also run under ThreadSanitizer (which cannot run Criterion).
 *
 *   stress-fork during KIND THREADS COUNT   COUNT children made while fn runs in another
 *                                           thread and THREADS-1 callers are parked on it
 *   stress-fork inside KIND THREADS COUNT   COUNT times fn forks, with THREADS-1 callers parked
 *   stress-fork hammer KIND THREADS COUNT   COUNT children made while THREADS threads race
 *                                           through fresh onces and a completed one
 *   stress-fork chain  KIND 1 COUNT         a chain of COUNT generations
 *   stress-fork child-wait fork 1 COUNT     a thread of the child waits on a once completed in
 *                                           the parent; the child completes it later
 *   stress-fork first-use fork THREADS COUNT
 *                                           COUNT children of a process that never used wof:
 *                                           THREADS threads race on the first wof calls
 *
 * KIND is fork, _Fork, SYS_fork, clone, or any (those wof promises to detect, in turn). A
 * KIND that wof cannot detect here (no MADV_WIPEONFORK) skips. Children assert nothing: they
 * exit with a code, and the parent waits with a deadline.
 *
 * Under ThreadSanitizer, only fork() children are made while the parent has other threads:
 * TSan's fork() interceptor takes its internal locks around fork(); after _Fork() or a raw
 * clone the child can inherit one held by a parent thread, and hangs inside TSan.
 *
 * Exit status: 0 passed, 1 failed, 2 bad usage, 77 skipped.
 */
#include "wof-test.h"

#include <string.h>

static const char *during(const enum th_fork_kind *kinds, int nkinds, int nthreads, int count)
{
	int nwaiters = nthreads - 1 < TH_MAX_WAITERS ? nthreads - 1 : TH_MAX_WAITERS;

	for (int round = 0; round < count; round++) {
		enum th_fork_kind kind = kinds[round % nkinds];
		struct th_during d = { .b = { .once = WOF_ONCE_INIT } };
		struct th_waiter w[TH_MAX_WAITERS];
		pthread_t runner, t[TH_MAX_WAITERS];
		int code, ran = 0;

		th_start(&runner, th_run_blocker, &d.b);
		if (!th_await(&d.b.entered, 1, TH_DEADLINE_S))
			return "fn never started";
		for (int i = 0; i < nwaiters; i++) {
			w[i] = (struct th_waiter){ .once = &d.b.once, .how = (enum th_how)(i % 3) };
			th_start(&t[i], th_waiter_thread, &w[i]);
		}
		/* Half the rounds fork with a caller parked; the others whenever. */
		if (nwaiters && round % 2 && !th_await_queued_now(&d.b.once, TH_DEADLINE_S))
			return "nobody parked";
		code = th_wait(th_spawn(kind, th_during_child, &d), TH_DEADLINE_S);
		th_set(&d.b.gate, 1);
		if (th_join(runner, NULL, TH_DEADLINE_S) != 0)
			return "the runner hung";
		for (int i = 0; i < nwaiters; i++) {
			if (th_join(t[i], NULL, TH_DEADLINE_S) != 0)
				return "a waiter hung";
			if (w[i].rc != 0)
				return th_failed("round %d: a waiter got %d", round, w[i].rc);
			ran += w[i].ran;
		}
		if (code != 0)
			return th_failed("round %d, %s child: %s", round, th_fork_names[kind],
			                 th_outcome(code));
		if (ran || !d.b.finished || !wof_once_is_completed(&d.b.once) || d.child_runs)
			return th_failed("round %d: the parent's once went wrong", round);
	}
	return NULL;
}

static const char *inside(const enum th_fork_kind *kinds, int nkinds, int nthreads, int count)
{
	for (int round = 0; round < count; round++) {
		const char *err = th_inside_run(kinds[round % nkinds], nthreads - 1);
		if (err)
			return th_failed("round %d: %s", round, err);
	}
	return NULL;
}

static int child_waits(void *arg)
{
	wof_once_t *once = arg;
	struct th_waiter w = { .once = once, .how = TH_WAIT };
	pthread_t t;
	int runs = 0;

	if (wof_once_is_completed(once))
		return 1;
	if (pthread_create(&t, NULL, th_waiter_thread, &w) != 0)
		return 2;
	if (!th_await_queued(once, 5))
		return 3;
	if (th_get(&w.returned))
		return 4; /* returned early: the parent's completion counted */
	if (wof_once_call(once, th_count_run, &runs) != 0 || runs != 1)
		return 5;
	if (th_join(t, NULL, 5) != 0)
		return 6;
	return w.rc == 0 ? 0 : 7;
}

static const char *child_wait(int count)
{
	for (int round = 0; round < count; round++) {
		wof_once_t once = WOF_ONCE_INIT;
		int runs = 0, code;

		if (wof_once_call(&once, th_count_run, &runs) != 0)
			return "wof_once_call failed";
		code = th_wait(th_spawn(TH_FORK, child_waits, &once), TH_DEADLINE_S);
		if (code != 0)
			return th_failed("round %d, child: %s", round, th_outcome(code));
	}
	return NULL;
}

struct first_use {
	pthread_barrier_t barrier;
	wof_once_t once;
	int runs;
	uint32_t gens[TH_MAX_HAMMERS];
	int rcs[TH_MAX_HAMMERS];
};

struct first_user {
	struct first_use *f;
	int id;
};

static void *first_user(void *arg)
{
	struct first_user *me = arg;

	pthread_barrier_wait(&me->f->barrier);
	me->f->rcs[me->id] = wof_once_call(&me->f->once, th_count_run, &me->f->runs);
	me->f->gens[me->id] = wof_generation();
	return NULL;
}

/* In a child whose parent never used wof: its threads race on the process's first wof call. */
static int first_use_child(void *arg)
{
	int nthreads = *(int *)arg;
	struct first_use f = { .once = WOF_ONCE_INIT };
	struct first_user users[TH_MAX_HAMMERS];
	pthread_t t[TH_MAX_HAMMERS];

	pthread_barrier_init(&f.barrier, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		users[i] = (struct first_user){ &f, i };
		if (pthread_create(&t[i], NULL, first_user, &users[i]) != 0)
			return 1;
	}
	for (int i = 0; i < nthreads; i++)
		if (th_join(t[i], NULL, 5) != 0)
			return 2;
	if (f.runs != 1)
		return 3;
	for (int i = 0; i < nthreads; i++)
		if (f.rcs[i] != 0 || f.gens[i] == 0 || f.gens[i] != f.gens[0])
			return 4;
	return 0;
}

static const char *first_use(int nthreads, int count)
{
	for (int round = 0; round < count; round++) {
		int code = th_wait(th_spawn(TH_FORK, first_use_child, &nthreads), TH_DEADLINE_S);
		if (code != 0)
			return th_failed("round %d, child: %s", round, th_outcome(code));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	enum th_fork_kind kinds[TH_FORK_KINDS];
	int nkinds = 0, nthreads, count;
	const char *scenario, *err;

	if (argc != 5) {
		fprintf(stderr, "usage: %s during|inside|hammer|chain|child-wait|first-use "
		                "fork|_Fork|SYS_fork|clone|any THREADS COUNT\n", argv[0]);
		return 2;
	}
	scenario = argv[1];
	nthreads = th_arg_count(argv[3], TH_MAX_HAMMERS);
	count = th_arg_count(argv[4], 100000);
	if (!strcmp(scenario, "first-use")) {
		/* Before anything else calls wof: the children must be its first users. */
		if (strcmp(argv[2], "fork") != 0) {
			fprintf(stderr, "first-use takes the kind fork\n");
			return 2;
		}
		err = first_use(nthreads, count);
		goto done;
	}
	if (!strcmp(argv[2], "any")) {
		nkinds = th_detected_kinds(kinds);
	} else {
		for (int k = 0; k < TH_FORK_KINDS; k++)
			if (!strcmp(argv[2], th_fork_names[k]))
				kinds[nkinds++] = (enum th_fork_kind)k;
		if (nkinds == 0) {
			fprintf(stderr, "unknown kind '%s'\n", argv[2]);
			return 2;
		}
		if (!th_fork_detected(kinds[0])) {
			printf("SKIP: %s children are detected only with MADV_WIPEONFORK\n",
			       argv[2]);
			return TH_SKIP;
		}
	}
	if (TH_TSAN && strcmp(scenario, "chain") != 0) {
		if (kinds[0] != TH_FORK && nkinds == 1) {
			printf("SKIP: under TSan, %s children of a multi-threaded process can "
			       "hang in TSan\n", argv[2]);
			return TH_SKIP;
		}
		nkinds = 1; /* any: fork() only */
	}

	if (!strcmp(scenario, "during")) {
		err = during(kinds, nkinds, nthreads, count);
	} else if (!strcmp(scenario, "inside")) {
		err = inside(kinds, nkinds, nthreads, count);
	} else if (!strcmp(scenario, "hammer")) {
		err = th_hammer_run(nthreads, count, kinds, nkinds);
	} else if (!strcmp(scenario, "chain")) {
		err = th_chain_run(count < TH_CHAIN_MAX ? count : TH_CHAIN_MAX, kinds, nkinds);
	} else if (!strcmp(scenario, "child-wait")) {
		/* The parent is single-threaded here: even TSan lets the child start threads. */
		err = child_wait(count);
	} else {
		fprintf(stderr, "unknown scenario '%s'\n", scenario);
		return 2;
	}
done:
	if (err) {
		fprintf(stderr, "stress-fork %s %s: %s\n", scenario, argv[2], err);
		return 1;
	}
	printf("stress-fork %s %s: %d threads, %d: passed\n", scenario, argv[2], nthreads, count);
	return 0;
}
