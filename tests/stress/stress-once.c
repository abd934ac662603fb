/* SPDX-License-Identifier: MIT */
/*
 * stress-once: wof_once_t among racing threads, as a plain program, so that ThreadSanitizer
 * (which cannot run Criterion) can check that fn's writes happen-before every return.
 *
 *   stress-once race   THREADS ROUNDS   batches of fresh onces, call and wait mixed: each once
 *                                       runs once, every caller sees fn's plain write
 *   stress-once try    THREADS ROUNDS   the same with try_call, fns failing a few times first:
 *                                       one success per once, never two fns at a time
 *   stress-once cancel THREADS ROUNDS   a runner cancelled inside fn: exactly one of the
 *                                       THREADS-1 callers that arrive takes over
 *   stress-once exit   THREADS ROUNDS   the same with pthread_exit inside fn
 *
 * Exit status: 0 when every check passed, 1 when one failed, 2 for bad usage.
 */
#include "wof-test.h"

#include <string.h>

#define MAX_THREADS TH_MAX_RACERS

/* A runner is cancelled inside fn, or leaves it by pthread_exit, while callers arrive; half
 * the rounds let a waiter park first, the others leave it to chance. */
static void hand_over(int nthreads, int rounds, bool cancel)
{
	int nwaiters = nthreads > 1 ? nthreads - 1 : 1;

	TH_CHECK(nwaiters <= TH_MAX_WAITERS, "at most %d threads here", TH_MAX_WAITERS + 1);
	for (int round = 0; round < rounds; round++) {
		const char *err = th_blocked_run(cancel ? TH_END_RETURN : TH_END_EXIT, cancel,
		                                 false, nwaiters, round % 2 ? 0 : -1);
		TH_CHECK(err == NULL, "round %d: %s", round, err);
	}
}

int main(int argc, char **argv)
{
	int nthreads, rounds;

	if (argc != 4) {
		fprintf(stderr, "usage: %s race|try|cancel|exit THREADS ROUNDS\n", argv[0]);
		return 2;
	}
	nthreads = th_arg_count(argv[2], MAX_THREADS);
	rounds = th_arg_count(argv[3], 1000000);
	/* The process's first wof call here, before any thread: threads racing on the first call
	 * are stress-fork first-use's subject, and each test should fail for its own reason. */
	(void)wof_generation();
	if (!strcmp(argv[1], "race") || !strcmp(argv[1], "try")) {
		const char *err = th_race_run(nthreads, rounds, !strcmp(argv[1], "try"));
		TH_CHECK(err == NULL, "%s", err);
	} else if (!strcmp(argv[1], "cancel") || !strcmp(argv[1], "exit")) {
		hand_over(nthreads, rounds, !strcmp(argv[1], "cancel"));
	} else {
		fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
		return 2;
	}
	printf("stress-once %s: %d threads, %d rounds: passed\n", argv[1], nthreads, rounds);
	return 0;
}
