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

/* Odd rounds fork once a caller has parked on fn; the others whenever. */
static const char *during(enum th_fork_kind kind, int nthreads, int round)
{
	return th_during_run(kind, nthreads - 1, round % 2, NULL);
}

static const char *inside(enum th_fork_kind kind, int nthreads, int round)
{
	(void)round;
	return th_inside_run(kind, nthreads - 1);
}

static int child_waits(void *arg)
{
	int runs = 0;

	return th_child_waits(arg, &runs);
}

/* The parent is single-threaded here: even TSan lets the child start threads. */
static const char *child_wait(enum th_fork_kind kind, int nthreads, int round)
{
	wof_once_t once = WOF_ONCE_INIT;
	int runs = 0, code;

	(void)nthreads;
	(void)round;
	if (wof_once_call(&once, th_count_run, &runs) != 0)
		return "wof_once_call failed";
	code = th_wait(th_spawn(kind, child_waits, &once), TH_DEADLINE_S);
	return code ? th_failed("child: %s", th_outcome(code)) : NULL;
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
		TH_CHILD_CHECK(pthread_create(&t[i], NULL, first_user, &users[i]) == 0);
	}
	for (int i = 0; i < nthreads; i++)
		TH_CHILD_CHECK(th_join(t[i], NULL, 5) == 0);
	TH_CHILD_CHECK(f.runs == 1);
	for (int i = 0; i < nthreads; i++)
		TH_CHILD_CHECK(f.rcs[i] == 0 && f.gens[i] != 0 && f.gens[i] == f.gens[0]);
	return 0;
}

static const char *first_use(enum th_fork_kind kind, int nthreads, int round)
{
	int code = th_wait(th_spawn(kind, first_use_child, &nthreads), TH_DEADLINE_S);

	(void)round;
	return code ? th_failed("child: %s", th_outcome(code)) : NULL;
}

static const struct {
	const char *name;
	const char *(*round)(enum th_fork_kind kind, int nthreads, int round);
} scenarios[] = {
	{ "during", during },       { "inside", inside }, { "child-wait", child_wait },
	{ "first-use", first_use }, { "hammer", NULL },   { "chain", NULL },
};

#define SCENARIOS (int)(sizeof scenarios / sizeof *scenarios)

int main(int argc, char **argv)
{
	enum th_fork_kind kinds[TH_FORK_KINDS];
	int nkinds = 1, nthreads, count, s = 0, round = 0;
	const char *err = NULL;

	if (argc != 5) {
		fprintf(stderr, "usage: %s during|inside|hammer|chain|child-wait|first-use "
		                "fork|_Fork|SYS_fork|clone|any THREADS COUNT\n", argv[0]);
		return 2;
	}
	while (s < SCENARIOS && strcmp(argv[1], scenarios[s].name) != 0)
		s++;
	nthreads = th_arg_count(argv[3], TH_MAX_HAMMERS);
	count = th_arg_count(argv[4], 100000);
	kinds[0] = th_fork_kind_named(argv[2]);
	if (s == SCENARIOS) {
		fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
		return 2;
	}
	/* first-use: before anything else calls wof, the children must be its first users. */
	if ((scenarios[s].round == first_use || scenarios[s].round == child_wait) &&
	    kinds[0] != TH_FORK) {
		fprintf(stderr, "%s takes the kind fork\n", argv[1]);
		return 2;
	}
	if (!strcmp(argv[2], "any")) {
		nkinds = th_detected_kinds(kinds);
	} else if (kinds[0] == TH_FORK_KINDS) {
		fprintf(stderr, "unknown kind '%s'\n", argv[2]);
		return 2;
	} else if (!th_fork_detected(kinds[0])) {
		printf("SKIP: %s children are detected only with MADV_WIPEONFORK\n", argv[2]);
		return TH_SKIP;
	}
	if (TH_TSAN && strcmp(argv[1], "chain") != 0) {
		if (kinds[0] != TH_FORK && nkinds == 1) {
			printf("SKIP: under TSan, %s children of a multi-threaded process can "
			       "hang in TSan\n", argv[2]);
			return TH_SKIP;
		}
		nkinds = 1; /* any: fork() only */
	}

	if (!strcmp(argv[1], "hammer"))
		err = th_hammer_run(nthreads, count, kinds, nkinds);
	else if (!strcmp(argv[1], "chain"))
		err = th_chain_run(count < TH_CHAIN_MAX ? count : TH_CHAIN_MAX, kinds, nkinds);
	for (; scenarios[s].round && !err && round < count; round++)
		err = scenarios[s].round(kinds[round % nkinds], nthreads, round);
	if (err && scenarios[s].round)
		fprintf(stderr, "stress-fork %s %s, round %d: %s\n", argv[1], argv[2], round - 1,
		        err);
	else if (err)
		fprintf(stderr, "stress-fork %s %s: %s\n", argv[1], argv[2], err);
	if (err)
		return 1;
	printf("stress-fork %s %s: %d threads, %d: passed\n", argv[1], argv[2], nthreads, count);
	return 0;
}
