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

#define BATCH 64
#define MAX_THREADS 256
#define JOIN_S 30.0

struct race {
	struct th_item items[BATCH];
	int rounds;
	bool use_try;
	pthread_barrier_t barrier;
	int bad; /* atomic */
};

struct racer {
	struct race *race;
	int id;
};

/* Fresh onces for the next round, failing (round + j) % 3 times each with try_call. */
static void refill(struct race *r, int round)
{
	memset(r->items, 0, sizeof r->items);
	for (int j = 0; j < BATCH; j++)
		r->items[j].fails = r->use_try ? (round + j) % 3 : 0;
}

/* Run by one thread between rounds, while the others wait at the barrier. */
static void check_and_refill(struct race *r, int round)
{
	for (int j = 0; j < BATCH; j++) {
		struct th_item *it = &r->items[j];
		TH_CHECK(it->runs == 1, "round %d, once %d completed by %d runs", round, j,
		         it->runs);
		TH_CHECK(it->attempts == it->fails + 1, "round %d, once %d: %d runs, expected %d",
		         round, j, it->attempts, it->fails + 1);
		TH_CHECK(!it->overlap, "round %d, once %d: two threads inside fn", round, j);
		TH_CHECK(wof_once_is_completed(&it->once), "round %d, once %d", round, j);
	}
	TH_CHECK(r->bad == 0, "round %d: %d calls returned early or with an error", round, r->bad);
	refill(r, round + 1);
}

static void *race_thread(void *arg)
{
	struct racer *me = arg;
	struct race *r = me->race;
	enum th_how how = th_racer_how(me->id, r->use_try);
	int offset = me->id % 2 ? me->id * 7 : 0;

	for (int round = 0; round < r->rounds; round++) {
		pthread_barrier_wait(&r->barrier);
		for (int k = 0; k < BATCH; k++) {
			struct th_item *it = &r->items[(k + offset) % BATCH];
			if (!th_item_take_part(it, how))
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		}
		if (pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
			check_and_refill(r, round);
	}
	return NULL;
}

static void race(int nthreads, int rounds, bool use_try)
{
	struct race *r = calloc(1, sizeof *r);
	struct racer racers[MAX_THREADS];
	pthread_t t[MAX_THREADS];

	TH_CHECK(r != NULL, "out of memory");
	r->rounds = rounds;
	r->use_try = use_try;
	refill(r, 0);
	pthread_barrier_init(&r->barrier, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		racers[i] = (struct racer){ r, i };
		th_start(&t[i], race_thread, &racers[i]);
	}
	for (int i = 0; i < nthreads; i++)
		TH_CHECK(th_join(t[i], NULL, 4 * JOIN_S) == 0, "racing thread %d hung", i);
	pthread_barrier_destroy(&r->barrier);
	free(r);
}

/* A runner is cancelled inside fn, or leaves it by pthread_exit, while callers arrive. */
static void hand_over(int nthreads, int rounds, bool cancel)
{
	static const enum th_how hows[] = { TH_CALL, TH_TRY, TH_WAIT };
	int nwaiters = nthreads > 1 ? nthreads - 1 : 1;
	struct th_waiter w[MAX_THREADS];
	pthread_t runner, t[MAX_THREADS];

	for (int round = 0; round < rounds; round++) {
		struct th_blocker b = { .once = WOF_ONCE_INIT,
			                .end = cancel ? TH_END_RETURN : TH_END_EXIT };
		void *result;
		int ran = 0;

		th_start(&runner, th_run_blocker, &b);
		TH_CHECK(th_await(&b.entered, 1, JOIN_S), "round %d: fn never started", round);
		for (int i = 0; i < nwaiters; i++) {
			w[i] = (struct th_waiter){ .once = &b.once, .how = hows[i % 3] };
			th_start(&t[i], th_waiter_thread, &w[i]);
		}
		/* Half the rounds let a waiter park first; the others leave it to chance. */
		if (round % 2)
			TH_CHECK(th_await_queued_now(&b.once, JOIN_S), "round %d: nobody parked",
			         round);
		if (cancel)
			TH_CHECK(pthread_cancel(runner) == 0, "pthread_cancel");
		else
			th_set(&b.gate, 1);
		TH_CHECK(th_join(runner, &result, JOIN_S) == 0, "round %d: the runner hung", round);
		TH_CHECK(result == (cancel ? PTHREAD_CANCELED : NULL),
		         "round %d: runner ended with %p", round, result);
		TH_CHECK(!b.finished, "round %d: fn finished", round);
		for (int i = 0; i < nwaiters; i++) {
			TH_CHECK(th_join(t[i], NULL, JOIN_S) == 0, "round %d: waiter %d hung",
			         round, i);
			TH_CHECK(w[i].rc == 0, "round %d: waiter %d got %d", round, i, w[i].rc);
			TH_CHECK(w[i].errno_kept, "round %d: waiter %d: errno changed", round, i);
			ran += w[i].ran;
		}
		TH_CHECK(ran == 1, "round %d: %d waiters ran fn; exactly one should have", round,
		         ran);
		TH_CHECK(wof_once_is_completed(&b.once), "round %d: incomplete", round);
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
	if (!strcmp(argv[1], "race"))
		race(nthreads, rounds, false);
	else if (!strcmp(argv[1], "try"))
		race(nthreads, rounds, true);
	else if (!strcmp(argv[1], "cancel"))
		hand_over(nthreads, rounds, true);
	else if (!strcmp(argv[1], "exit"))
		hand_over(nthreads, rounds, false);
	else {
		fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
		return 2;
	}
	printf("stress-once %s: %d threads, %d rounds: passed\n", argv[1], nthreads, rounds);
	return 0;
}
