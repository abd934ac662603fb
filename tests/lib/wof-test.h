/* SPDX-License-Identifier: MIT */
/*
 * Shared by the core tests (header-only), so that the Criterion tests and the plain programs
 * for ThreadSanitizer run the very same scenarios: children made by each way of forking and
 * waited for with a deadline; gates, and polls on a once's state word rather than sleeps; the
 * fns and threads of the scenarios; and the fork scenarios themselves (th_*_run), which return
 * NULL or what failed.
 *
 * Fork discipline: a child never asserts. It _exits with a small code naming the check that
 * failed (0 = all passed), and the parent judges that code. Every child asks to be killed when
 * the thread that made it goes away, and the parent kills it after TH_DEADLINE_S.
 */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wof.h>

/* Exit status of a skipped plain test program (Meson, Automake). */
#define TH_SKIP 77

/* Outcomes of th_wait() beyond a child's own exit code (0..255) and 128 + signal. */
#define TH_HUNG 1000 /* still running at the deadline: killed */
#define TH_LOST 1001 /* waitpid failed, or the child could not be made */

/* Seconds a child may take before it counts as hung. */
#define TH_DEADLINE_S 10.0

/* ThreadSanitizer builds leave out what TSan cannot run (see stress-fork.c). */
#if defined(__SANITIZE_THREAD__)
#define TH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TH_TSAN 1
#endif
#endif
#ifndef TH_TSAN
#define TH_TSAN 0
#endif

/* The ways to make a child that copies the address space (docs/api.md, wof_generation(3)). */
enum th_fork_kind {
	TH_FORK,     /* fork(): runs the pthread_atfork handlers                    */
	TH_UFORK,    /* _Fork(): glibc >= 2.34, no atfork handlers                  */
	TH_SYS_FORK, /* syscall(SYS_fork) (SYS_clone where there is no SYS_fork)    */
	TH_CLONE,    /* syscall(SYS_clone) with SIGCHLD and without CLONE_VM        */
	TH_FORK_KINDS
};

static const char *const th_fork_names[TH_FORK_KINDS] = { "fork", "_Fork", "SYS_fork", "clone" };

#if defined(__GLIBC__) && !(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#error "the tests need _Fork (glibc 2.34 or later)"
#endif
/* Declared by <unistd.h> on glibc >= 2.34 under _GNU_SOURCE; repeated for other settings. */
pid_t _Fork(void);

/* Whether wof promises to notice a child made by `kind`: fork() always; the others only with
 * MADV_WIPEONFORK. A test of the others skips without it (-Dfork_detection=atfork, qemu). */
static inline bool th_fork_detected(enum th_fork_kind kind)
{
	return kind == TH_FORK || (wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK) != 0;
}

static inline pid_t th_raw_clone(void)
{
#if defined(__s390__) || defined(__CRIS__)
	return (pid_t)syscall(SYS_clone, 0, SIGCHLD); /* stack first, then flags */
#else
	return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#endif
}

/*
 * Makes a child by `kind`. Returns its pid in the parent, 0 in the child, -1 on failure. The
 * child is killed when the parent's forking thread ends. Children made by anything but fork()
 * in a multi-threaded parent may only use async-signal-safe functions, wof included: no
 * malloc, no stdio, no threads.
 */
static inline pid_t th_fork(enum th_fork_kind kind)
{
	pid_t parent = getpid();
	pid_t pid;

	switch (kind) {
	case TH_FORK:
		pid = fork();
		break;
	case TH_UFORK:
		pid = _Fork();
		break;
	case TH_SYS_FORK:
#ifdef SYS_fork
		pid = (pid_t)syscall(SYS_fork);
#else
		pid = th_raw_clone();
#endif
		break;
	default:
		pid = th_raw_clone();
		break;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the parent died before prctl */
			_exit(TH_SKIP);
	}
	return pid;
}

/* Runs child(arg) in a child made by `kind`, which _exits with its result. */
static inline pid_t th_spawn(enum th_fork_kind kind, int (*child)(void *), void *arg)
{
	pid_t pid = th_fork(kind);

	if (pid == 0)
		_exit(child(arg));
	return pid;
}

static inline double th_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A cancellation point: nanosleep. */
static inline void th_nap(long usec)
{
	struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Waits for child `pid` for at most `seconds`, then kills it. Returns its exit code, 128 + the
 * signal that ended it, TH_HUNG or TH_LOST.
 */
static inline int th_wait(pid_t pid, double seconds)
{
	double deadline = th_now() + seconds;
	long nap = 20;
	int status;

	if (pid <= 0)
		return TH_LOST;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return TH_LOST;
		if (th_now() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return TH_HUNG;
		}
		th_nap(nap);
		if (nap < 2000)
			nap *= 2;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : TH_LOST;
}

/* For messages: what th_wait()'s result means. */
static inline const char *th_outcome(int code)
{
	static _Thread_local char buf[48];

	if (code == TH_HUNG)
		return "hung: killed at the deadline";
	if (code == TH_LOST)
		return "lost (fork or waitpid failed)";
	if (code > 128 && code < 128 + 65)
		snprintf(buf, sizeof buf, "killed by signal %d", code - 128);
	else
		snprintf(buf, sizeof buf, "exit code %d", code);
	return buf;
}

/* A flag another thread sets; readers poll it, sleeping in a cancellation point. */
static inline void th_set(int *flag, int value)
{
	__atomic_store_n(flag, value, __ATOMIC_RELEASE);
}

static inline int th_get(const int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Blocks until *flag != 0 (a cancellation point, like every nap). */
static inline void th_gate_wait(const int *flag)
{
	while (!th_get(flag))
		th_nap(100);
}

/* Polls until *flag >= value, at most `seconds`; whether it got there. */
static inline bool th_await(const int *flag, int value, double seconds)
{
	double deadline = th_now() + seconds;

	while (th_get(flag) < value) {
		if (th_now() > deadline)
			return false;
		th_nap(100);
	}
	return true;
}

/*
 * Polls until some thread of this process has said it is parking on `once` (the QUEUED bit, in
 * a word of this process's generation), at most `seconds`; whether it did.
 */
static inline bool th_await_queued_now(wof_once_t *once, double seconds)
{
	uint64_t mine = (uint64_t)wof_generation() << 32;
	double deadline = th_now() + seconds;

	for (;;) {
		uint64_t word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
		if ((word & ~(uint64_t)UINT32_MAX) == mine && (word & WOF_INTERNAL_ONCE_QUEUED))
			return true;
		if (th_now() > deadline)
			return false;
		th_nap(50);
	}
}

/*
 * As th_await_queued_now(), then a pause: used before asserting that a waiter has *not*
 * returned, so that it had every chance to return wrongly. The pause proves nothing by itself;
 * callers assert on state.
 */
static inline bool th_await_queued(wof_once_t *once, double seconds)
{
	if (!th_await_queued_now(once, seconds))
		return false;
	th_nap(20000);
	return true;
}

static inline void th_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(thread, NULL, fn, arg);

	if (rc != 0) {
		fprintf(stderr, "pthread_create: error %d\n", rc);
		abort();
	}
}

/* Joins with a deadline: 0, or ETIMEDOUT with the thread still running. */
static inline int th_join(pthread_t thread, void **result, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	return pthread_timedjoin_np(thread, result, &ts);
}

/*
 * Whether this kernel honours MADV_WIPEONFORK, found out independently of wof: by a fork()
 * child looking at a marked page (an emulator that accepts the advice and ignores it fails).
 */
static inline bool th_kernel_wipes_on_fork(void)
{
	long size = sysconf(_SC_PAGESIZE);
	volatile int *page = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool wipes = false;

	if (page == MAP_FAILED)
		return false;
	*page = 1;
	if (madvise((void *)page, (size_t)size, 18 /* MADV_WIPEONFORK */) == 0) {
		pid_t pid = th_fork(TH_FORK);
		if (pid == 0)
			_exit(*page == 0 ? 0 : 1);
		wipes = th_wait(pid, TH_DEADLINE_S) == 0 && *page == 1;
	}
	munmap((void *)page, (size_t)size);
	return wipes;
}

/* ---- Building blocks of the scenarios: fns, and the threads around them ---- */

static inline void th_count_run(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

static inline int th_count_ok(void *arg)
{
	th_count_run(arg);
	return 0;
}

static inline int th_fail_eio(void *arg)
{
	(void)arg;
	return EIO;
}

static inline int th_runs(int *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* One of many fresh onces that threads race on; fn checks that it runs alone. */
struct th_item {
	wof_once_t once;
	int runs;     /* atomic: runs of fn that completed the once          */
	int attempts; /* atomic: runs of fn, failed ones included             */
	int active;   /* atomic: threads inside fn now (at most one allowed)  */
	int fails;    /* how many runs fail before one succeeds (try_call)   */
	int payload;  /* plain: written by fn, read by every returning caller */
	int overlap;  /* atomic: fn found another thread inside fn            */
};

static inline int th_payload_of(const struct th_item *it)
{
	return (int)(((uintptr_t)it >> 3) ^ 0x5eed);
}

static inline void th_item_enter(struct th_item *it)
{
	if (__atomic_fetch_add(&it->active, 1, __ATOMIC_RELAXED) != 0)
		__atomic_store_n(&it->overlap, 1, __ATOMIC_RELAXED);
	/* A run that takes a while now and then: other callers find RUNNING and park. */
	if (((uintptr_t)it / sizeof *it) % 8 == 0)
		sched_yield();
}

static inline int th_item_try(void *arg)
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

static inline void th_item_fill(void *arg)
{
	(void)th_item_try(arg);
}

/* How a thread takes part: wof_once_call, wof_once_try_call or wof_once_wait. */
enum th_how { TH_CALL, TH_TRY, TH_WAIT };

/* A once whose fn blocks (in a cancellation point) until its gate opens. */
enum th_block_end { TH_END_RETURN, TH_END_EXIT };

struct th_blocker {
	wof_once_t once;
	int entered;  /* fn has started                              */
	int gate;     /* fn may go on                                */
	int finished; /* fn returned normally                        */
	bool use_try; /* run it with try_call, returning `result`    */
	int result;
	enum th_block_end end;
	int payload; /* plain, written by fn before it returns */
};

static inline void th_block_fn(void *arg)
{
	struct th_blocker *b = arg;

	th_set(&b->entered, 1);
	th_gate_wait(&b->gate); /* a cancellation point */
	if (b->end == TH_END_EXIT)
		pthread_exit(NULL);
	b->payload = 42;
	th_set(&b->finished, 1);
}

static inline int th_block_try_fn(void *arg)
{
	th_block_fn(arg);
	return ((struct th_blocker *)arg)->result;
}

static inline void *th_run_blocker(void *arg)
{
	struct th_blocker *b = arg;
	int rc = b->use_try ? wof_once_try_call(&b->once, th_block_try_fn, b)
	                    : wof_once_call(&b->once, th_block_fn, b);

	return (void *)(intptr_t)rc;
}

/* A thread that calls, try_calls or waits on a once, and records what it got. */
struct th_waiter {
	wof_once_t *once;
	enum th_how how;
	int *payload; /* read (plain) after a successful return, into `saw` */
	int saw;
	int ran;      /* this waiter's fn ran */
	int returned; /* the call returned */
	int rc;
	bool errno_kept;
	bool testcancel; /* act on a pending cancellation after returning */
};

static inline void th_waiter_fn(void *arg)
{
	th_set(&((struct th_waiter *)arg)->ran, 1);
}

static inline int th_waiter_try_fn(void *arg)
{
	th_waiter_fn(arg);
	return 0;
}

static inline void *th_waiter_thread(void *arg)
{
	struct th_waiter *w = arg;

	errno = 12345;
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
	w->errno_kept = errno == 12345;
	if (w->rc == 0 && w->payload)
		w->saw = *w->payload;
	th_set(&w->returned, 1);
	if (w->testcancel)
		pthread_testcancel();
	return NULL;
}

/* ---- Fork scenarios, shared by the Criterion tests and the plain programs ---- */

/* A failure message from a scenario driver (NULL: passed). One at a time. */
static inline const char *th_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *th_failed(const char *fmt, ...)
{
	static char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return buf;
}

/* The kinds of child that wof promises to notice here, fork() first; returns how many. */
static inline int th_detected_kinds(enum th_fork_kind kinds[TH_FORK_KINDS])
{
	int n = 0;

	for (int k = 0; k < TH_FORK_KINDS; k++)
		if (th_fork_detected((enum th_fork_kind)k))
			kinds[n++] = (enum th_fork_kind)k;
	return n;
}

/*
 * Fork while fn runs in another thread of the parent. The child's side: the once is
 * incomplete, and failing, completing and waiting on it never wait for the parent's runner,
 * which this process does not have.
 */
struct th_during {
	struct th_blocker b;
	int child_runs;
};

static inline int th_during_child(void *arg)
{
	struct th_during *d = arg;
	int before = d->child_runs;

	if (wof_once_is_completed(&d->b.once))
		return 1;
	if (wof_once_try_call(&d->b.once, th_fail_eio, NULL) != EIO)
		return 2;
	if (wof_once_call(&d->b.once, th_count_run, &d->child_runs) != 0)
		return 3;
	if (d->child_runs != before + 1)
		return 4;
	if (!wof_once_is_completed(&d->b.once) || wof_once_wait(&d->b.once) != 0)
		return 5;
	return 0;
}

/*
 * fn itself forks, once `nwaiters` threads of the parent have parked on the once. In the
 * parent the once completes and the waiters return without running anything; in the child it
 * is incomplete and runs again.
 */
#define TH_MAX_WAITERS 16

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

static inline void th_forking_fn(void *arg)
{
	struct th_inside *s = arg;

	s->runs++;
	s->pid = -1;
	for (int i = 0; i < s->nwaiters; i++) {
		s->w[i] = (struct th_waiter){ .once = &s->once, .how = (enum th_how)(i % 3) };
		th_start(&s->t[i], th_waiter_thread, &s->w[i]);
	}
	if (s->nwaiters && !th_await_queued_now(&s->once, TH_DEADLINE_S))
		return;
	s->pid = th_fork(s->kind);
	if (s->pid == 0)
		s->in_child = true;
}

/* Runs the scenario; returns only in the parent. */
static inline const char *th_inside_run(enum th_fork_kind kind, int nwaiters)
{
	struct th_inside *s = calloc(1, sizeof *s);
	const char *err = NULL;
	int rc, code, ran = 0;

	if (!s)
		return "out of memory";
	s->kind = kind;
	s->nwaiters = nwaiters < TH_MAX_WAITERS ? nwaiters : TH_MAX_WAITERS;
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
	for (int i = 0; i < s->nwaiters; i++) {
		if (th_join(s->t[i], NULL, TH_DEADLINE_S) != 0)
			return th_failed("a waiter of the parent hung");
		if (s->w[i].rc != 0)
			err = th_failed("a waiter of the parent got %d", s->w[i].rc);
		ran += s->w[i].ran;
	}
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
#define TH_MAX_HAMMERS 16
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

struct th_hammerer {
	struct th_hammer *h;
	int id;
};

static inline void *th_hammer_thread(void *arg)
{
	struct th_hammerer *me = arg;
	struct th_hammer *h = me->h;
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

static inline int th_hammer_child(void *arg)
{
	struct th_hammer *h = arg;
	/* Atomic reads: the parent's threads wrote these with atomics (TSan remembers). */
	int budget = th_get(&h->budget), hi = 0;
	int before = th_runs(&h->hot_runs);

	for (int i = 0; i < h->nthreads; i++)
		hi = th_get(&h->progress[i]) > hi ? th_get(&h->progress[i]) : hi;
	if (wof_once_is_completed(&h->hot))
		return 1;
	if (wof_once_call(&h->hot, th_count_run, &h->hot_runs) != 0 ||
	    th_runs(&h->hot_runs) != before + 1)
		return 2;
	for (int j = hi > 16 ? hi - 16 : 0; j < budget && j < hi + 16; j++) {
		struct th_item *it = &h->items[j];
		before = th_runs(&it->runs);
		if (wof_once_is_completed(&it->once))
			return 3;
		if (wof_once_call(&it->once, th_count_run, &it->runs) != 0)
			return 4;
		if (th_runs(&it->runs) != before + 1 || !wof_once_is_completed(&it->once))
			return 5;
	}
	return 0;
}

/* Runs the scenario with children made by `kinds` in turn. */
static inline const char *th_hammer_run(int nthreads, int nchildren,
                                        const enum th_fork_kind *kinds, int nkinds)
{
	struct th_hammer h = { .hot = WOF_ONCE_INIT, .budget = TH_HAMMER_GRANT };
	struct th_hammerer hs[TH_MAX_HAMMERS];
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
		hs[i] = (struct th_hammerer){ &h, i };
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
#define TH_CHAIN_MAX 64

struct th_chain {
	uint32_t ancestors[TH_CHAIN_MAX + 1];
	int depth; /* ancestors known */
	int length;
	const enum th_fork_kind *kinds;
	int nkinds;
	int fd;
};

static inline int th_chain_link(void *arg)
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

/* Runs a chain of `length` links; each link's generation must come after its parent's. */
static inline const char *th_chain_run(int length, const enum th_fork_kind *kinds, int nkinds)
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

/* ---- Plain programs (stress-*.c) ---- */

/* In the parent only: say what failed and exit 1. */
#define TH_CHECK(cond, ...)                                                                    \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: failed: %s: ", __FILE__, __LINE__, #cond);     \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			exit(1);                                                               \
		}                                                                              \
	} while (0)

/* A positive count from the command line, or exit 2. */
static inline int th_arg_count(const char *arg, int max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || v < 1 || v > max) {
		fprintf(stderr, "bad count '%s' (1..%d)\n", arg, max);
		exit(2);
	}
	return (int)v;
}
