/* SPDX-License-Identifier: MIT */
/*
 * The calls documented async-signal-safe work from a signal handler: wof_generation() and the
 * fast paths of objects initialised in this process (wof_once_is_completed, wof_once_call on
 * a completed once, wof_once_lock_get, wof_lazy_lock_force/get, a WOF_LAZY_STATIC accessor,
 * wof_once_cell_get). Signals arrive thousands of times while the interrupted thread is itself
 * inside wof's slow paths on other objects, and after a fork, in the child.
 *
 *   usage: signal-safety [signals]      exit 0 = passed, 1 = failed
 */
#include <stdatomic.h>

#include "wof-test.h"

static wof_once_t once = WOF_ONCE_INIT;
static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
static int made;
static void *make(void *arg)
{
	(void)arg;
	return &made;
}
static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT(make, NULL);
static wof_once_cell_t cell = WOF_ONCE_CELL_INIT;

struct big {
	long pid;
	char pad[256];
};
static int big_init(struct big *b)
{
	b->pid = getpid();
	return 0;
}
WOF_LAZY_STATIC(struct big, big, big_init);

static void nop(void *arg)
{
	(void)arg;
}

static atomic_long handled, wrong;
static uint32_t expected_gen;

static void on_signal(int sig)
{
	int saved = errno;
	bool good = wof_generation() == expected_gen && wof_once_is_completed(&once) &&
	            wof_once_call(&once, nop, NULL) == 0 && wof_once_lock_get(&lock) == &made &&
	            wof_lazy_lock_force(&lazy) == &made && wof_lazy_lock_get(&lazy) == &made &&
	            big() && big()->pid == getpid() && wof_once_cell_get(&cell) == &made;
	(void)sig;
	if (!good)
		atomic_fetch_add(&wrong, 1);
	atomic_fetch_add(&handled, 1);
	errno = saved;
}

struct shooter {
	pthread_t target;
	long shots;
	atomic_bool done;
};

static void *shoot(void *arg)
{
	struct shooter *s = arg;
	for (long i = 0; i < s->shots; i++) {
		pthread_kill(s->target, SIGUSR1);
		if (i % 64 == 0)
			sched_yield();
	}
	atomic_store(&s->done, true);
	return NULL;
}

/* Initialise everything, then take signals while busy in slow paths on fresh objects. */
static int run(long shots)
{
	static wof_once_t fresh[4096];
	struct shooter s = { pthread_self(), shots, false };
	pthread_t t;
	long busy = 0;

	expected_gen = wof_generation();
	wof_once_call(&once, nop, NULL);
	wof_once_lock_set(&lock, &made);
	wof_lazy_lock_force(&lazy);
	big();
	wof_once_cell_set(&cell, &made);
	atomic_store(&handled, 0);
	memset(fresh, 0, sizeof fresh);
	th_start(&t, shoot, &s);
	while (!atomic_load(&s.done)) {
		if (busy % 4096 == 0)
			memset(fresh, 0, sizeof fresh); /* keep this thread in slow paths */
		wof_once_call(&fresh[busy++ % 4096], nop, NULL);
	}
	pthread_join(t, NULL);
	return atomic_load(&wrong) != 0 || atomic_load(&handled) == 0;
}

int main(int argc, char **argv)
{
	long shots = argc > 1 ? atol(argv[1]) : 5000;
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	if (run(shots)) {
		fprintf(stderr, "parent: %ld of %ld handlers saw wrong values\n", (long)wrong,
		        (long)handled);
		return 1;
	}
	printf("parent: %ld signals handled, all correct\n", (long)handled);

	/* The same in a child: every object is re-made there first; the handler expects the
	 * child's generation and the child's lazy static. */
	pid_t pid = th_fork(TH_FORK);
	if (pid == 0)
		_exit(run(shots / 4) ? 1 : 0);
	int code = th_wait(pid, 2 * TH_DEADLINE_S);
	if (code != 0) {
		fprintf(stderr, "child: failed: %s\n", th_outcome(code));
		return 1;
	}
	printf("child: signals handled, all correct\n");
	return 0;
}
