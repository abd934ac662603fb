/* SPDX-License-Identifier: MIT */
/*
 * tsan: a ThreadSanitizer user's program. .ci/consumers builds it with -fsanitize=thread against
 * the installed release libwof, which is not instrumented, and runs it with
 * TSAN_OPTIONS=halt_on_error=1: it must finish with no report. Threads race on the first use
 * of a wof_once_t, a wof_once_lock_t, a wof_lazy_lock_t and a WOF_LAZY_STATIC, then read with
 * plain loads what the winning initialiser wrote with plain stores; only libwof's annotations
 * of its own synchronisation tell TSan that those writes happen-before the reads. Then, with
 * the threads still alive (a multi-threaded fork), a child does the same single-threaded: its
 * objects are uninitialised, each initialiser runs once more there, and its writes are read
 * back. Exit 0 when every check held (TSan itself exits 66 at its first report).
 */
#define _POSIX_C_SOURCE 200809L /* barriers, nanosleep, under -std=c11 */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wof.h>

#define THREADS 8
#define WORDS 64

/* What each initialiser writes, with plain stores: this process's pid, spread over a table. */
struct table {
	pid_t owner;
	long words[WORDS];
};

static void fill(struct table *t)
{
	t->owner = getpid();
	for (int i = 0; i < WORDS; i++)
		t->words[i] = (long)t->owner * (i + 1);
}

/* 0 when `t` holds what fill() wrote in this process. */
static int wrong(const struct table *t)
{
	if (t == NULL || t->owner != getpid())
		return 1;
	for (int i = 0; i < WORDS; i++)
		if (t->words[i] != (long)t->owner * (i + 1))
			return 1;
	return 0;
}

/* Initialisations in this process, per object (atomic: racing threads count them). */
static int runs_once, runs_lock, runs_lazy_lock, runs_static;

static void count(int *runs)
{
	__atomic_add_fetch(runs, 1, __ATOMIC_RELAXED);
}

static int ran(int *runs)
{
	return __atomic_load_n(runs, __ATOMIC_RELAXED);
}

/* A snooze inside each initialiser, so that the other racers find it running and sleep. */
static void snooze(void)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static struct table once_table;
static wof_once_t once = WOF_ONCE_INIT;

static void once_fn(void *arg)
{
	(void)arg;
	count(&runs_once);
	snooze();
	fill(&once_table);
}

static struct table lock_table;
static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

static void *lock_init(void *arg)
{
	(void)arg;
	count(&runs_lock);
	snooze();
	fill(&lock_table);
	return &lock_table;
}

static struct table lazy_lock_table;

static void *lazy_lock_init(void *arg)
{
	count(&runs_lazy_lock);
	snooze();
	fill(arg);
	return arg;
}

static wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT(lazy_lock_init, &lazy_lock_table);

static int static_init(struct table *slot)
{
	count(&runs_static);
	snooze();
	fill(slot);
	return 0;
}

WOF_LAZY_STATIC(struct table, lazy_static, static_init);

/* Every object's first use (or not), then a plain read of what its initialiser wrote. */
static int use_all(void)
{
	int bad = 0;

	bad += wof_once_call(&once, once_fn, NULL) != 0 || wrong(&once_table);
	bad += wrong(wof_once_lock_get_or_init(&lock, lock_init, NULL));
	bad += wrong(wof_lazy_lock_force(&lazy_lock));
	bad += wrong(lazy_static());
	return bad;
}

static pthread_barrier_t start, read_all, may_exit;
static int racer_failures;

static void *racer(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	int bad = use_all();
	__atomic_add_fetch(&racer_failures, bad, __ATOMIC_RELAXED);
	pthread_barrier_wait(&read_all);
	pthread_barrier_wait(&may_exit); /* alive while the main thread forks */
	return NULL;
}

/* The child: one thread; everything is new here. Exit status 0 or the check that failed. */
static int child(void)
{
	alarm(20); /* a deadline of its own */
	if (wof_once_is_completed(&once) || wof_once_lock_get(&lock) != NULL ||
	    wof_lazy_lock_get(&lazy_lock) != NULL)
		return 2;
	int before = ran(&runs_once) + ran(&runs_lock) + ran(&runs_lazy_lock) + ran(&runs_static);
	if (use_all() != 0 || use_all() != 0)
		return 3;
	int after = ran(&runs_once) + ran(&runs_lock) + ran(&runs_lazy_lock) + ran(&runs_static);
	if (after != before + 4)
		return 4;
	return 0;
}

int main(void)
{
	pthread_t threads[THREADS];

	pthread_barrier_init(&start, NULL, THREADS);
	pthread_barrier_init(&read_all, NULL, THREADS + 1);
	pthread_barrier_init(&may_exit, NULL, THREADS + 1);
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&threads[i], NULL, racer, NULL) != 0) {
			perror("tsan: pthread_create");
			return 1;
		}
	pthread_barrier_wait(&read_all);
	int failures = __atomic_load_n(&racer_failures, __ATOMIC_RELAXED);
	if (failures != 0 || ran(&runs_once) != 1 || ran(&runs_lock) != 1 ||
	    ran(&runs_lazy_lock) != 1 || ran(&runs_static) != 1) {
		fprintf(stderr, "tsan: %d wrong reads; initialisations: %d %d %d %d (1 each)\n",
		        failures, ran(&runs_once), ran(&runs_lock), ran(&runs_lazy_lock),
		        ran(&runs_static));
		return 1;
	}

	fflush(NULL);
	pid_t pid = fork(); /* THREADS other threads are alive, waiting on may_exit */
	if (pid < 0) {
		perror("tsan: fork");
		return 1;
	}
	if (pid == 0)
		_exit(child());
	int status = 0;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (int i = 0; waitpid(pid, &status, WNOHANG) == 0; ++i) {
		if (i == 3000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "tsan: the child hung\n");
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	pthread_barrier_wait(&may_exit);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "tsan: the child failed (status 0x%x)\n", (unsigned)status);
		return 1;
	}
	if (use_all() != 0 || ran(&runs_once) != 1 || ran(&runs_static) != 1) {
		fprintf(stderr, "tsan: the child's initialisations leaked into the parent\n");
		return 1;
	}
	printf("tsan consumer: ok: %d threads raced on 4 objects, one initialisation each; "
	       "the forked child made its own\n", THREADS);
	return 0;
}
