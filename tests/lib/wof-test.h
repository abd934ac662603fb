/* SPDX-License-Identifier: MIT */
/*
 * wof's test support library (tests/lib, built once as a static library and linked by every
 * Criterion unit, plain program and C++ test), so that they all share one of each: way to
 * make a child (th_fork: fork, _Fork, SYS_fork, raw clone), deadline (TH_DEADLINE_S), way for
 * a child to report a failure (TH_CHILD_CHECK: file, line and condition, printed by the parent),
 * sanitizer probe (TH_TSAN) and errno sentinel (TH_ERRNO_SENTINEL). Also the gates, fns and
 * threads of the scenarios, and the fork scenarios themselves (th_*_run, returning NULL or what
 * failed), run alike by the Criterion tests and the plain programs that TSan checks.
 *
 * Fork discipline: a child never asserts. It _exits with a code (0 = all passed) and, through
 * TH_CHILD_CHECK, leaves the failed check's file:line in a MAP_SHARED record; the parent waits
 * with a deadline, kills stragglers, and judges. Every child asks to be killed when the thread
 * that made it goes away (PR_SET_PDEATHSIG).
 *
 * Everything about processes is POSIX only: on Windows (no fork) the header declares the
 * portable part alone (time, naps, gates, the event log, plain-program checks).
 */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
/* Threads: POSIX threads, which mingw-w64 has too (winpthreads), but not its win32 model. */
#if !defined(_WIN32) || (defined(__has_include) && __has_include(<pthread.h>))
#define TH_PTHREADS 1
#include <pthread.h>
#else
#define TH_PTHREADS 0
#endif
#include <string.h>
#include <time.h>
#ifndef _WIN32 /* what the tests of processes use, besides these helpers */
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <wof.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of a skipped plain test program (Meson, Automake). */
#define TH_SKIP 77

/* Seconds a child (with its own children) or a joined thread may take before it counts as hung. */
#define TH_DEADLINE_S 10.0

/* A value wof never gives errno: finding it afterwards means "errno unchanged". */
#define TH_ERRNO_SENTINEL 12345

/* The sanitizer probe. ThreadSanitizer builds leave out what TSan cannot run. */
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
/* Any sanitizer (ASan, UBSan, TSan): slower, and children of threaded forks start no threads. */
#if defined(__SANITIZE_ADDRESS__) || TH_TSAN
#define TH_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define TH_SANITIZER 1
#endif
#endif
#ifndef TH_SANITIZER
#define TH_SANITIZER 0
#endif

/* ---- Time, naps, flags, memory: everywhere ---- */

/* Whether all `n` bytes at `p` equal `c`, each read from memory as it is now (volatile). */
bool th_all_bytes(const void *p, size_t n, unsigned char c);

/* Seconds on a monotonic clock. */
double th_now(void);
/* Sleeps about `usec` microseconds, in a cancellation point (POSIX). */
void th_nap(long usec);
/* Sleeps about a millisecond in a cancellation point, with no local variable (ASan, see there). */
void th_cancel_nap(void);

/* A flag another thread sets; readers poll it. */
static inline void th_set(int *flag, int value)
{
	__atomic_store_n(flag, value, __ATOMIC_RELEASE); /* pairs with th_get's acquire */
}

static inline int th_get(const int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE); /* pairs with th_set's release */
}

/* Blocks until *flag != 0 (a cancellation point, like every nap). */
void th_gate_wait(const int *flag);
/* Polls until *flag >= value, at most `seconds`; whether it got there. */
bool th_await(const int *flag, int value, double seconds);

/* An event log, for "on_wipe happened before init" checks. Thread-safe appends. */
#define TH_MAX_EVENTS 64

struct th_event {
	char kind;   /* 'W' on_wipe, 'I' init, ... */
	void *value; /* what it was given or made */
};

extern struct th_event th_events[TH_MAX_EVENTS];
extern unsigned th_nevents;
void th_log(char kind, void *value);
unsigned th_count(char kind);
void th_log_reset(void);

/* ---- Plain programs ---- */

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

/* In a plain program that goes on after a failure: unless `cond`, print where and what failed
 * and count it (th_failures). TH_FAIL(...) has no condition. Thread-safe. */
#define TH_EXPECT(cond, ...)                                                                   \
	do {                                                                                   \
		if (!(cond))                                                                   \
			th_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
	} while (0)
#define TH_FAIL(...) th_fail_at(__FILE__, __LINE__, NULL, __VA_ARGS__)
void th_fail_at(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
unsigned th_failures(void);

/* A positive count from the command line, or exit 2. */
int th_arg_count(const char *arg, int max);
/* The next number of a xorshift64 sequence (*state != 0). */
uint64_t th_rnd(uint64_t *state);

/* A failure message from a scenario driver (NULL: passed). One at a time. */
const char *th_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#if TH_PTHREADS
/* ---- Threads ---- */

void th_start(pthread_t *thread, void *(*fn)(void *), void *arg);
/* Joins with a deadline: 0, or ETIMEDOUT with the thread still running. */
int th_join(pthread_t thread, void **result, double seconds);

/*
 * Polls until some thread of this process has said it is parking on `once` (the QUEUED bit, in
 * a word of this process's generation), at most `seconds`; whether it did. th_await_queued
 * adds a pause: used before asserting that a waiter has *not* returned.
 */
bool th_await_queued_now(wof_once_t *once, double seconds);
bool th_await_queued(wof_once_t *once, double seconds);

/* ---- Building blocks of the scenarios: fns, and the threads around them ---- */

void th_count_run(void *arg);
int th_count_ok(void *arg);
int th_fail_eio(void *arg);
int th_runs(int *counter);

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

/* How a thread takes part: wof_once_call, wof_once_try_call or wof_once_wait. */
enum th_how { TH_CALL, TH_TRY, TH_WAIT };

/* How racing thread `id` takes part: every fourth only waits (thread 0 always runs, so someone
 * completes), the others call, or try_call when `use_try`. */
enum th_how th_racer_how(int id, bool use_try);
/* Takes part in it->once as `how` (retrying EAGAIN); whether the call returned 0, completed,
 * after one completing run of fn whose payload it sees (a plain read: what TSan judges). */
bool th_item_take_part(struct th_item *it, enum th_how how);

/*
 * Threads race through `rounds` batches of fresh onces (th_racer_how: call or try_call, every
 * fourth waits; with `use_try` fns fail (round + i) % 3 times first): each once runs once, never
 * two fns at a time, and every caller sees fn's write. One thread checks between rounds.
 */
#define TH_MAX_RACERS 256
const char *th_race_run(int nthreads, int rounds, bool use_try);

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

void th_block_fn(void *arg);
void *th_run_blocker(void *arg);

/* A thread that calls, try_calls or waits on a once, and records what it got. */
struct th_waiter {
	wof_once_t *once;
	enum th_how how;
	int *payload; /* read (plain) after a successful return, into `saw` */
	int saw;
	int ran;      /* this waiter's fn ran */
	int entered;  /* the thread is set up and about to call */
	int returned; /* the call returned */
	int rc;
	bool errno_kept;
	bool testcancel; /* act on a pending cancellation after returning */
};

void *th_waiter_thread(void *arg);

/*
 * fn blocks while `nwaiters` callers (call, try_call, wait in turn) wait, after one parked and
 * park_us more passed if park_us >= 0. Then it completes the once, and every waiter sees its
 * write; or leaves -- cancelled (`cancel`), by pthread_exit (TH_END_EXIT), failing (`use_try`)
 * -- and exactly one waiter runs its own fn. All return 0 with errno kept, none before fn.
 */
#define TH_MAX_WAITERS 64
const char *th_blocked_run(enum th_block_end end, bool cancel, bool use_try, int nwaiters,
                           long park_us);

#endif /* TH_PTHREADS */

#ifndef _WIN32
/* ---- Processes (POSIX) ---- */

/* Outcomes of th_wait() beyond a child's own exit code (0..255) and 128 + signal. */
#define TH_HUNG 1000 /* still running at the deadline: killed */
#define TH_LOST 1001 /* waitpid failed, or the child could not be made */

/* The ways to make a child that copies the address space (docs/api.md, wof_generation(3)). */
enum th_fork_kind {
	TH_FORK,     /* fork(): runs the pthread_atfork handlers                    */
	TH_UFORK,    /* _Fork(): glibc >= 2.34, no atfork handlers                  */
	TH_SYS_FORK, /* syscall(SYS_fork) (SYS_clone where there is no SYS_fork)    */
	TH_CLONE,    /* syscall(SYS_clone) with SIGCHLD and without CLONE_VM        */
	TH_FORK_KINDS
};

extern const char *const th_fork_names[TH_FORK_KINDS];

/* The kind named `name` (fork, _Fork, SYS_fork, clone), or TH_FORK_KINDS. */
enum th_fork_kind th_fork_kind_named(const char *name);

/* Whether wof promises to notice a child made by `kind`: fork() always; the others only with
 * MADV_WIPEONFORK. A test of the others skips without it (-Dfork_detection=atfork, qemu). */
bool th_fork_detected(enum th_fork_kind kind);
/* The kinds of child that wof promises to notice here, fork() first; returns how many. */
int th_detected_kinds(enum th_fork_kind kinds[TH_FORK_KINDS]);

/*
 * Makes a child by `kind`. Returns its pid in the parent, 0 in the child, -1 on failure. The
 * child is killed when the parent's forking thread ends. Children made by anything but fork()
 * in a multi-threaded parent may only use async-signal-safe functions, wof included: no
 * malloc, no stdio, no threads.
 */
pid_t th_fork(enum th_fork_kind kind);
/* Runs child(arg) in a child made by `kind`, which _exits with its result. */
pid_t th_spawn(enum th_fork_kind kind, int (*child)(void *), void *arg);

/*
 * Waits for child `pid` for at most `seconds`, then kills it. Returns its exit code, 128 + the
 * signal that ended it, TH_HUNG or TH_LOST. A failure a child recorded with TH_CHILD_CHECK is
 * taken over for th_outcome().
 */
int th_wait(pid_t pid, double seconds);
/* For messages: what th_wait()'s result means, with the failed check's file:line if any. */
const char *th_outcome(int code);

/*
 * In a child's function (returning int): unless `cond` holds, record file:line and the
 * condition for the parent (async-signal-safe) and return a nonzero exit code.
 */
#define TH_CHILD_CHECK(cond)                                                                   \
	do {                                                                                   \
		if (!(cond))                                                                   \
			return th_child_failed(__FILE__, __LINE__, #cond);                     \
	} while (0)
int th_child_failed(const char *file, int line, const char *cond);

/*
 * In a child: stop (th_child_begin) and resume (th_child_exit, which _exits with `code`)
 * ThreadSanitizer's checking. TSan keeps the parent's other threads in its books after fork
 * and reports the child's accesses as races with threads the child does not have.
 */
void th_child_begin(void);
__attribute__((noreturn)) void th_child_exit(int code);

/* Why the last th_in_child() or th_reap() failed. */
extern char th_why[320];
/* th_wait(pid, TH_DEADLINE_S): 0 on exit 0, else nonzero with th_why saying what (`what`). */
int th_reap(pid_t pid, const char *what);
/*
 * Runs fn(arg) in a child made by `kind` (TSan not checking it), waits for it and returns 0
 * when fn returned 0, else nonzero with th_why saying what went wrong. Usable inside a child,
 * for grandchildren. Makes no heap allocation.
 */
int th_in_child(enum th_fork_kind kind, int (*fn)(void *), void *arg);

/* Whether this kernel honours MADV_WIPEONFORK, found out independently of wof. */
bool th_kernel_wipes_on_fork(void);

/* ---- Fork scenarios, shared by the Criterion tests and the plain programs ---- */

/*
 * Fork by `kind` while fn runs in another thread and `nwaiters` callers (call, try_call, wait in
 * turn) wait for it, after one parked if `park`. The child runs child(struct th_during *), or
 * th_during_child: the once is incomplete, and failing, completing and waiting on it never wait
 * for the parent's runner, which it does not have. In the parent fn completes it as usual.
 */
struct th_during {
	struct th_blocker b;
	int child_runs;
};

int th_during_child(void *arg);
const char *th_during_run(enum th_fork_kind kind, int nwaiters, bool park,
                          int (*child)(void *));

/*
 * In a child made by fork() (it starts a thread): a thread waits on `once`, which must read
 * incomplete whatever the parent did; this thread completes it (th_count_run on *runs) later,
 * and the waiter returns. 0, or nonzero from the TH_CHILD_CHECK that failed.
 */
int th_child_waits(wof_once_t *once, int *runs);

/*
 * fn itself forks, once `nwaiters` threads of the parent have parked on the once. In the
 * parent the once completes and the waiters return without running anything; in the child it
 * is incomplete and runs again.
 */
const char *th_inside_run(enum th_fork_kind kind, int nwaiters);

/*
 * Children forked, one after another, while threads race through fresh onces and call a hot
 * completed one. Each child finds the hot once and the onces the hammers were at incomplete,
 * and runs each exactly once. Children are made by `kinds` in turn.
 */
#define TH_MAX_HAMMERS 16
const char *th_hammer_run(int nthreads, int nchildren, const enum th_fork_kind *kinds,
                          int nkinds);

/*
 * A chain of `length` generations, each the child of the one before, made by `kinds` in turn
 * (the first by fork()); each link's generation must come after its parent's.
 */
#define TH_CHAIN_MAX 64
const char *th_chain_run(int length, const enum th_fork_kind *kinds, int nkinds);

/* ---- Torture runs (torture, torture-secret): processes fork at random by every path ---- */

/*
 * The kinds of fork a torture run uses (a bit each): fork(), and the others where wof detects
 * them, not under TSan (which cannot follow them). *child_threads: whether fork() children may
 * start threads: not under a sanitizer, whose allocator locks a threaded fork copies held (gcc
 * 12's ASan), nor with WOF_TORTURE_NO_CHILD_THREADS=1 (qemu-user 7.2 aborts there).
 */
unsigned th_torture_kinds(bool *child_threads);
/*
 * One of `kinds` at random for a process made by `made_by`, or TH_FORK_KINDS: after _Fork or a
 * raw syscall libc's own locks may be held by threads the child does not have (musl's fork()
 * takes its thread-list lock, glibc's its malloc locks), so it forks again only by raw syscalls.
 */
enum th_fork_kind th_torture_pick(unsigned kinds, enum th_fork_kind made_by, uint64_t *rng);
/* The first process's own deadline: in `seconds`, print the message and _exit(3) (children die
 * with it: PR_SET_PDEATHSIG). A hang is reported with the seed, not just stalled. */
void th_torture_deadline(unsigned seconds, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#endif /* !_WIN32 */

#ifdef __cplusplus
}
#endif

#if defined(CRITERION_H_) && !defined(_WIN32)
/*
 * TH_FORK_TEST(suite, name, ...) { body using `how` }: two Criterion tests, `name` with fork()
 * and `name_Fork` with _Fork(), the latter skipped where only atfork detects children.
 */
#define TH_FORK_TEST(suite, name, ...)                                                         \
	static void suite##_##name##_body(enum th_fork_kind how);                              \
	Test(suite, name, __VA_ARGS__)                                                         \
	{                                                                                      \
		suite##_##name##_body(TH_FORK);                                                \
	}                                                                                      \
	Test(suite, name##_Fork, __VA_ARGS__)                                                  \
	{                                                                                      \
		TH_REQUIRE_DETECTED(TH_UFORK);                                                 \
		suite##_##name##_body(TH_UFORK);                                               \
	}                                                                                      \
	static void suite##_##name##_body(enum th_fork_kind how)

/* Skip the test unless wof promises to notice children made by `kind` (th_fork_detected). */
#define TH_REQUIRE_DETECTED(kind)                                                              \
	do {                                                                                   \
		if (!th_fork_detected(kind))                                                   \
			cr_skip_test("%s children are detected only with MADV_WIPEONFORK",     \
			             th_fork_names[kind]);                                     \
	} while (0)

/* Assert in the parent that th_in_child() succeeded. */
#define TH_ASSERT_CHILD(how, fn, arg)                                                          \
	cr_assert_eq(th_in_child((how), (fn), (arg)), 0, "%s (%s)", th_why, #fn)
/* Assert that a scenario of this library (th_*_run) passed. */
#define TH_ASSERT_PASSED(scenario)                                                             \
	do {                                                                                   \
		const char *th_err_ = (scenario);                                              \
		cr_assert_null(th_err_, "%s", th_err_);                                        \
	} while (0)
#endif
