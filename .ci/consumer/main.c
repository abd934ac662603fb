/* SPDX-License-Identifier: MIT */
/*
 * consumer: a program outside wof's tree that uses it the way a user would, built by
 * .ci/consumers against an installed wof (pkg-config, CMake) and as a Meson subproject.
 * It proves the headers, the library and the link line work, and that the library is wof: a
 * once runs once, a once lock keeps its value, and a forked child sees both as uninitialised
 * and makes its own while the parent keeps its. Exit 0 when all of that held.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wof.h>

#ifndef WOF_CONSUMER_HOW
#define WOF_CONSUMER_HOW "unknown"
#endif

static wof_once_t once = WOF_ONCE_INIT;
static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
static int runs;
static pid_t made_for;

static void run(void *arg)
{
	(void)arg;
	++runs;
}

static void *make(void *arg)
{
	(void)arg;
	made_for = getpid();
	return &made_for;
}

/* In the child: its own once run and lock value. Exit status 0, or which check failed. */
static int child(void)
{
	alarm(10); /* a deadline of its own, should wof hang */
	if (wof_once_is_completed(&once) || wof_once_lock_get(&lock) != NULL)
		return 2; /* the parent's state leaked into the child */
	if (wof_once_call(&once, run, NULL) != 0 || wof_once_call(&once, run, NULL) != 0 ||
	    runs != 2)
		return 3;
	if (wof_once_lock_get_or_init(&lock, make, NULL) != &made_for || made_for != getpid())
		return 4;
	return 0;
}

int main(void)
{
	if (wof_once_call(&once, run, NULL) != 0 || wof_once_call(&once, run, NULL) != 0 ||
	    runs != 1 || !wof_once_is_completed(&once)) {
		fprintf(stderr, "consumer: the once did not run exactly once\n");
		return 1;
	}
	pid_t *value = wof_once_lock_get_or_init(&lock, make, NULL);
	if (value != &made_for || *value != getpid() || wof_once_lock_get(&lock) != value) {
		fprintf(stderr, "consumer: the once lock did not keep its value\n");
		return 1;
	}
	uint32_t generation = wof_generation();

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("consumer: fork");
		return 1;
	}
	if (pid == 0)
		_exit(child());

	/* Wait up to 10 s, then kill it. */
	int status = 0;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (int i = 0; waitpid(pid, &status, WNOHANG) == 0; ++i) {
		if (i == 1000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "consumer: the child hung\n");
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "consumer: the child failed (status 0x%x)\n", (unsigned)status);
		return 1;
	}
	if (runs != 1 || made_for != getpid() || wof_once_lock_get(&lock) != &made_for ||
	    wof_generation() != generation) {
		fprintf(stderr, "consumer: the child's initialisation leaked into the parent\n");
		return 1;
	}
	printf("consumer (%s): ok: once ran once, lock kept its value, the forked child made "
	       "its own (generation %u, fork detection %u)\n",
	       WOF_CONSUMER_HOW, (unsigned)generation, wof_fork_detection());
	return 0;
}
