/* SPDX-License-Identifier: MIT */
/*
 * prefork: what fork() does to lazily initialised state, with pthread_once and with wof.
 *
 * A pre-forking server in miniature. Before it forks, the parent serves a request, which
 * initialises three things on first use: a PRNG, seeded from getrandom(); a background
 * "flusher" thread that beats a heartbeat counter every millisecond; and a session key, drawn
 * from getrandom(). Then it forks N workers (default 4, or argv[1]). Each first reads the first
 * bytes of the parent's key through the pointer it inherited, as an attacker who got code
 * execution in a worker could; then it serves: draws three session tokens, takes its own key
 * and checks for its flusher.
 *
 * The scenario runs twice, identical except for what guards the lazy initialisation:
 *   pthread_once     the children inherit "already done". Every worker continues the parent's
 *                    PRNG stream, so all hand out the same tokens as the parent, none has a
 *                    flusher (the thread did not survive fork(), but the once that starts it
 *                    did), every worker uses the parent's session key, and every worker can
 *                    read it.
 *   wof              the PRNG state and the flusher live in two WOF_LAZY_STATICs, which the
 *                    children see as never made: each worker seeds its own PRNG and starts its
 *                    own flusher on first use, once. The key lives in a WOF_LAZY_SECRET, in
 *                    secret memory: the kernel hands every worker those bytes as zeros, before
 *                    the worker runs any code, and the worker makes a key of its own on first
 *                    use.
 *
 * Exit status 0 when every wof worker drew a token stream of its own, has its own flusher,
 * read zeros where the parent's key was and made a key of its own; so the demo doubles as a
 * test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid() */
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wof.h>

#define TOKENS 3
#define KEY_SHOWN 4 /* bytes of a session key that the demo prints */
#define MAX_WORKERS 64
#define DEADLINE_MS 10000 /* for all workers of a scenario to report */
#define HEARTBEAT_MS 3000 /* for a worker's flusher to show a sign of life: generous, for loaded CI machines */

/* The lazily initialised state of a server; each scenario has its own. */
struct prng {
	uint64_t state;      /* xorshift64, seeded by seed_prng() */
};

struct flusher {
	pid_t tid;           /* stored by the flusher thread itself */
	unsigned long beats; /* its heartbeat */
};

struct session_key {
	unsigned char bytes[32];
};

/* One worker's findings, sent to the parent in a single write (< PIPE_BUF, so atomic). */
struct report {
	int worker;              /* 1..n; 0 while no report arrived */
	uint16_t token[TOKENS];
	pid_t tid;               /* the flusher tid this process's memory names */
	bool alive;              /* that flusher's heartbeat advanced in this process */
	unsigned char parents_key[KEY_SHOWN]; /* read through the parent's pointer, before use */
	unsigned char key[KEY_SHOWN];         /* the key this process uses */
};

static int seed_prng(struct prng *p)
{
	uint64_t seed;

	/* Anything that differs per process will do: the point is that it must run per process. */
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	p->state = seed | 1; /* xorshift never leaves 0 */
	return 0;
}

static int make_key(struct session_key *k)
{
	if (getrandom(k->bytes, sizeof(k->bytes), 0) != (ssize_t)sizeof(k->bytes))
		return -1; /* errno says why; a lazy value retries on the next call */
	return 0;
}

static void *flusher_main(void *arg)
{
	struct flusher *f = arg;

	__atomic_store_n(&f->tid, gettid(), __ATOMIC_RELAXED);
	for (;;) {
		/* Release: whoever sees a beat (acquire, in serve) also sees the tid. */
		__atomic_fetch_add(&f->beats, 1, __ATOMIC_RELEASE);
		usleep(1000);
	}
	return NULL;
}

static int start_flusher(struct flusher *f)
{
	pthread_t thread;
	int rc = pthread_create(&thread, NULL, flusher_main, f);

	if (rc == 0)
		pthread_detach(thread);
	return rc;
}

/* Scenario 1, the usual way: pthread_once takes functions without arguments, and the state
 * lives beside the once. */
static struct prng pt_prng_state;
static struct flusher pt_flusher_state;
static struct session_key pt_key_state;
static pthread_once_t pt_prng_once = PTHREAD_ONCE_INIT;
static pthread_once_t pt_flusher_once = PTHREAD_ONCE_INIT;
static pthread_once_t pt_key_once = PTHREAD_ONCE_INIT;
static void pt_seed(void) { seed_prng(&pt_prng_state); }
static void pt_start(void) { start_flusher(&pt_flusher_state); }
static void pt_make_key(void) { make_key(&pt_key_state); }

static struct prng *pt_prng(void)
{
	pthread_once(&pt_prng_once, pt_seed);
	return &pt_prng_state;
}

static struct flusher *pt_flusher(void)
{
	pthread_once(&pt_flusher_once, pt_start);
	return &pt_flusher_state;
}

static struct session_key *pt_key(void)
{
	pthread_once(&pt_key_once, pt_make_key);
	return &pt_key_state;
}

/* Scenario 2, with wof: each lazy static holds its state inline and makes it, zero-filled, on
 * first use in each process; the lazy secret does the same in secret memory, which every
 * child reads as zeros. The accessors are wof_prng(), wof_flusher() and wof_key(). */
WOF_LAZY_STATIC(struct prng, wof_prng, seed_prng);
WOF_LAZY_STATIC(struct flusher, wof_flusher, start_flusher);
WOF_LAZY_SECRET(struct session_key, wof_key, make_key);

struct scenario {
	const char *name;
	struct prng *(*prng)(void);
	struct flusher *(*flusher)(void);
	struct session_key *(*key)(void);
	const struct session_key *parents_key; /* saved by the parent before it forks */
	struct report parent, workers[MAX_WORKERS];
};

static uint16_t draw_token(struct scenario *sc)
{
	struct prng *p = sc->prng();

	p->state ^= p->state << 13;
	p->state ^= p->state >> 7;
	p->state ^= p->state << 17;
	return (uint16_t)(p->state >> 48);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether thread `tid` is one of this process's threads (signal 0 only checks). */
static bool thread_is_ours(pid_t tid)
{
	return syscall(SYS_tgkill, getpid(), tid, 0) == 0;
}

/* Draw the tokens, take the key, make sure the flusher runs, and see whether it beats (it does
 * so every millisecond; a loaded machine gets HEARTBEAT_MS). A flusher whose thread is not in
 * this process -- the parent's, named by memory that fork() copied -- is not waited for. */
static void serve(struct scenario *sc, struct report *r)
{
	for (int i = 0; i < TOKENS; i++)
		r->token[i] = draw_token(sc);
	const struct session_key *k = sc->key();
	if (k)
		memcpy(r->key, k->bytes, KEY_SHOWN);
	struct flusher *f = sc->flusher();
	if (!f)
		return; /* pthread_create failed: no thread, r->alive stays false */
	long end = now_ms() + HEARTBEAT_MS;
	/* Relaxed: the tid is only compared and printed; a new flusher stores it first thing. */
	while ((r->tid = __atomic_load_n(&f->tid, __ATOMIC_RELAXED)) == 0 && now_ms() < end)
		usleep(1000);
	if (r->tid == 0 || !thread_is_ours(r->tid))
		return; /* no flusher in this process: r->alive stays false */
	unsigned long before = __atomic_load_n(&f->beats, __ATOMIC_ACQUIRE);
	while (!r->alive && now_ms() < end) {
		usleep(1000);
		r->alive = __atomic_load_n(&f->beats, __ATOMIC_ACQUIRE) != before;
	}
}

/* The parent serves once (initialising both lazies), forks n workers, collects their reports. */
static void run_scenario(struct scenario *sc, int n)
{
	struct report r, warmup = { 0 };
	pid_t pids[MAX_WORKERS];
	int fds[2];

	serve(sc, &warmup);
	sc->parents_key = sc->key(); /* the pointer every worker inherits */
	if (pipe(fds) != 0) {
		perror("pipe");
		exit(2);
	}
	fflush(stdout); /* the children must not print the parent's buffer again */
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fds[0]);
			r = (struct report){ .worker = i + 1 };
			/* What is left of the parent's key, read raw, before any call that could
			 * make or wipe anything. */
			if (sc->parents_key)
				memcpy(r.parents_key, sc->parents_key->bytes, KEY_SHOWN);
			serve(sc, &r);
			_exit(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
		}
	}
	close(fds[1]);
	serve(sc, &sc->parent); /* the parent's next tokens, to compare with the workers' */
	memcpy(sc->parent.parents_key, sc->parent.key, KEY_SHOWN);

	struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
	long deadline = now_ms() + DEADLINE_MS;
	for (int got = 0; got < n && now_ms() < deadline;) {
		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue; /* EINTR, or the deadline: the loop condition decides */
		if (read(fds[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
			break; /* every worker is gone */
		if (r.worker >= 1 && r.worker <= n && sc->workers[r.worker - 1].worker == 0) {
			sc->workers[r.worker - 1] = r;
			got++;
		}
	}
	close(fds[0]);
	for (int i = 0; i < n; i++) {
		if (pids[i] > 0 && sc->workers[i].worker == 0)
			kill(pids[i], SIGKILL); /* a straggler: it counts as a failure below */
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	}
}

static bool same_tokens(const struct report *a, const struct report *b)
{
	return memcmp(a->token, b->token, sizeof(a->token)) == 0;
}

static bool zero_key(const unsigned char *key)
{
	static const unsigned char zeros[KEY_SHOWN];
	return memcmp(key, zeros, KEY_SHOWN) == 0;
}

/* What a worker could read of its parent's key, and which key it used itself. */
static void describe_key(char *buf, size_t len, const struct report *r,
                         const struct report *parent)
{
	const unsigned char *k = r->parents_key;
	const char *what = r == parent ? "" : zero_key(k) ? "  wiped;"
	                   : memcmp(k, parent->key, KEY_SHOWN) == 0 ? "  the parent's key," : "";
	const char *own = r == parent || zero_key(r->key) ? ""
	                  : memcmp(r->key, parent->key, KEY_SHOWN) == 0 ? " still in use"
	                                                                : " made its own";

	if (r != parent && r->worker == 0)
		snprintf(buf, len, "no report");
	else
		snprintf(buf, len, "%02x%02x %02x%02x%s%s", k[0], k[1], k[2], k[3], what, own);
}

static void describe(char *buf, size_t len, const struct report *r, const struct report *parent)
{
	char thread[40] = "none";

	if (r != parent && r->worker == 0) {
		snprintf(buf, len, "no report");
		return;
	}
	if (r->alive && r->tid != 0 && (r == parent || r->tid != parent->tid))
		snprintf(thread, sizeof(thread), "own (tid %d)", (int)r->tid);
	snprintf(buf, len, "tokens %04x %04x %04x  thread: %s", r->token[0], r->token[1],
	         r->token[2], thread);
}

/* Prints the scenario's verdict; true when every worker has its own stream, flusher and key,
 * and read nothing of the parent's key. */
static bool summarise(const struct scenario *sc, int n)
{
	int fresh = 0, repeats = 0, own = 0, readable = 0, own_keys = 0;

	for (int i = 0; i < n; i++) {
		const struct report *w = &sc->workers[i];
		bool unique = w->worker != 0 && !same_tokens(w, &sc->parent);

		for (int j = 0; j < n && unique; j++)
			unique = j == i || !same_tokens(w, &sc->workers[j]);
		fresh += unique;
		repeats += w->worker != 0 && same_tokens(w, &sc->parent);
		own += w->worker != 0 && w->alive && w->tid != 0 && w->tid != sc->parent.tid;
		readable += w->worker == 0 || !zero_key(w->parents_key);
		own_keys += w->worker != 0 && !zero_key(w->key) &&
		            memcmp(w->key, sc->parent.key, KEY_SHOWN) != 0;
	}
	printf("%-13s %d of %d workers drew tokens of their own%s, %d of %d have a flusher thread,\n"
	       "%-13s %d of %d can read the parent's session key, %d of %d made a key of their own.\n",
	       sc->name, fresh, n, repeats == n ? " (all repeat the parent's)" : "", own, n, "",
	       readable, n, own_keys, n);
	return fresh == n && own == n && readable == 0 && own_keys == n;
}

int main(int argc, char **argv)
{
	static struct scenario pt = { .name = "pthread_once:", .prng = pt_prng,
	                              .flusher = pt_flusher, .key = pt_key };
	static struct scenario wof = { .name = "wof:", .prng = wof_prng, .flusher = wof_flusher,
	                               .key = wof_key };
	char left[80], right[80];
	int n = argc > 1 ? atoi(argv[1]) : 4;

	if (n < 1 || n > MAX_WORKERS) {
		fprintf(stderr, "usage: %s [workers: 1..%d]\n", argv[0], MAX_WORKERS);
		return 2;
	}
	run_scenario(&pt, n);
	run_scenario(&wof, n);

	printf("%-10s%-50s%s\n", "", "pthread_once", "WOF_LAZY_STATIC");
	describe(left, sizeof(left), &pt.parent, &pt.parent);
	describe(right, sizeof(right), &wof.parent, &wof.parent);
	printf("%-10s%-50s%s\n", "parent", left, right);
	for (int i = 0; i < n; i++) {
		char label[16];

		snprintf(label, sizeof(label), "worker %d", i + 1);
		describe(left, sizeof(left), &pt.workers[i], &pt.parent);
		describe(right, sizeof(right), &wof.workers[i], &wof.parent);
		printf("%-10s%-50s%s\n", label, left, right);
	}
	printf("\n%-10s%s\n", "", "the parent's session key, as each worker can still read it first:");
	printf("%-10s%-50s%s\n", "", "pthread_once", "WOF_LAZY_SECRET");
	describe_key(left, sizeof(left), &pt.parent, &pt.parent);
	describe_key(right, sizeof(right), &wof.parent, &wof.parent);
	printf("%-10s%-50s%s\n", "parent", left, right);
	for (int i = 0; i < n; i++) {
		char label[16];

		snprintf(label, sizeof(label), "worker %d", i + 1);
		describe_key(left, sizeof(left), &pt.workers[i], &pt.parent);
		describe_key(right, sizeof(right), &wof.workers[i], &wof.parent);
		printf("%-10s%-50s%s\n", label, left, right);
	}
	summarise(&pt, n);
	return summarise(&wof, n) ? 0 : 1;
}
