/* SPDX-License-Identifier: MIT */
/*
 * What the value-primitive tests share: running a function in a child made by fork() or _Fork()
 * that reports through its exit status and a pipe, waiting for it with a deadline (stragglers
 * are killed and count as failures), and an event log for on_wipe/init ordering. Plain C, so
 * Criterion tests and the plain TSan programs include it alike; no assertion ever runs in a
 * child (a failing cr_assert in a child hangs the runner).
 */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wof.h>

/* How long a child (with its own children) may take before it is killed and counts as failed. */
#define VH_DEADLINE_MS 10000

/* A sentinel errno value: wof never sets it, so seeing it afterwards means "errno unchanged". */
#define VH_ERRNO_SENTINEL 12345

enum vh_fork_how {
	VH_FORK,  /* fork(): atfork handlers run, every fork detection mechanism sees it */
	VH_UFORK, /* _Fork(): no atfork handlers; only MADV_WIPEONFORK tells the child */
};

static inline const char *vh_how_name(enum vh_fork_how how)
{
	return how == VH_UFORK ? "_Fork" : "fork";
}

/* Whether children made with _Fork() (no atfork handlers) are detected. */
static inline bool vh_have_wipeonfork(void)
{
	return (wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK) != 0;
}

/*
 * In a child's function (returning int): fail with this line number unless `cond` holds. The
 * parent turns the number back into a message; 0 means success.
 */
#define VH_CHECK(cond)                                                                            \
	do {                                                                                      \
		if (!(cond))                                                                      \
			return __LINE__;                                                          \
	} while (0)

/* Why the last vh_in_child() failed (this translation unit's copy). */
static char vh_why[160];

static inline long vh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void vh_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Sleep about a millisecond in a cancellation point, with no local variable on this frame:
 * a thread cancelled here unwinds no ASan-poisoned stack slot, which gcc 12's ASan would later
 * report as a false stack-buffer-underflow when the unwinding reaches a cleanup handler.
 */
static inline void vh_nap(void)
{
	(void)poll(NULL, 0, 1);
}

static inline pid_t vh_fork(enum vh_fork_how how)
{
	return how == VH_UFORK ? _Fork() : fork();
}

#if defined(__SANITIZE_THREAD__)
#define VH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VH_TSAN 1
#endif
#endif
#ifndef VH_TSAN
#define VH_TSAN 0
#endif

#if VH_TSAN
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#endif

/*
 * In a freshly made child: die with the parent, so no straggler outlives a killed test.
 * Under ThreadSanitizer, stop checking: TSan keeps the parent's other threads in its books
 * after fork and reports the child's accesses (a wipe writing a lock's value, say) as races
 * with threads the child does not have. A child has one thread: there is nothing to find.
 */
static inline void vh_child_setup(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(98);
#if VH_TSAN
	__tsan_ignore_thread_begin();
#endif
}

/* In a child: report `line` (0: success) on `fd` for vh_reap() and _exit. */
static inline void vh_child_finish(int fd, int line)
{
#if VH_TSAN
	__tsan_ignore_thread_end(); /* TSan refuses a thread that exits while ignoring */
#endif
	if (line != 0 && write(fd, &line, sizeof line) != (ssize_t)sizeof line)
		_exit(97);
	_exit(line != 0);
}

/*
 * Wait for `pid` until the deadline; kill it past the deadline. Returns 0 on a clean exit 0,
 * else nonzero with vh_why filled in: the line the child reported on `fd` (if fd >= 0), or a
 * description of how it died.
 */
static inline int vh_reap(pid_t pid, int fd, const char *what)
{
	long deadline = vh_now_ms() + VH_DEADLINE_MS;
	int status = 0;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		if (vh_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(vh_why, sizeof vh_why, "%s: child %d hung (killed after %d ms)",
			         what, (int)pid, VH_DEADLINE_MS);
			return -1;
		}
		vh_sleep_ms(1);
	}
	if (r < 0) {
		snprintf(vh_why, sizeof vh_why, "%s: waitpid: %s", what, strerror(errno));
		return -1;
	}
	if (WIFSIGNALED(status)) {
		snprintf(vh_why, sizeof vh_why, "%s: child killed by signal %d", what,
		         WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) == 0)
		return 0;
	int line = 0;
	if (fd >= 0 && read(fd, &line, sizeof line) == (ssize_t)sizeof line && line > 0) {
		snprintf(vh_why, sizeof vh_why, "%s: child check failed at line %d", what, line);
		return line;
	}
	snprintf(vh_why, sizeof vh_why, "%s: child exited with status %d", what,
	         WEXITSTATUS(status));
	return -1;
}

/*
 * Run fn(arg) in a child made by `how`, wait for it (deadline, then SIGKILL) and return 0 when
 * fn returned 0, else the line fn reported (see VH_CHECK) or -1, with vh_why saying what went
 * wrong. Usable inside a child as well, for grandchildren. Makes no heap allocation.
 */
static inline int vh_in_child(enum vh_fork_how how, int (*fn)(void *), void *arg)
{
	int fds[2];
	pid_t parent = getpid();

	if (pipe(fds) != 0) {
		snprintf(vh_why, sizeof vh_why, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = vh_fork(how);
	if (pid < 0) {
		snprintf(vh_why, sizeof vh_why, "%s: %s", vh_how_name(how), strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		vh_child_setup(parent);
		vh_child_finish(fds[1], fn(arg));
	}
	close(fds[1]);
	int rc = vh_reap(pid, fds[0], vh_how_name(how));
	close(fds[0]);
	return rc;
}

/* An event log, for "on_wipe happened before init" checks. Thread-safe appends. */
#define VH_MAX_EVENTS 64

struct vh_event {
	char kind;   /* 'W' on_wipe, 'I' init, ... */
	void *value; /* what it was given or made */
};

static struct vh_event vh_events[VH_MAX_EVENTS];
static unsigned vh_nevents;

static inline void vh_log(char kind, void *value)
{
	unsigned i = __atomic_fetch_add(&vh_nevents, 1, __ATOMIC_RELAXED);

	if (i < VH_MAX_EVENTS) {
		vh_events[i].kind = kind;
		vh_events[i].value = value;
	}
}

static inline unsigned vh_count(char kind)
{
	unsigned n = 0, total = __atomic_load_n(&vh_nevents, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < total && i < VH_MAX_EVENTS; i++)
		n += vh_events[i].kind == kind;
	return n;
}

static inline void vh_log_reset(void)
{
	__atomic_store_n(&vh_nevents, 0, __ATOMIC_RELAXED);
}

#ifdef CRITERION_H_
/*
 * VH_FORK_TEST(suite, name, ...) { body using `how` }: two Criterion tests, `name` with fork()
 * and `name_Fork` with _Fork(), the latter skipped where only atfork detects children.
 */
#define VH_FORK_TEST(suite, name, ...)                                                            \
	static void suite##_##name##_body(enum vh_fork_how how);                                  \
	Test(suite, name, __VA_ARGS__)                                                            \
	{                                                                                         \
		suite##_##name##_body(VH_FORK);                                                   \
	}                                                                                         \
	Test(suite, name##_Fork, __VA_ARGS__)                                                     \
	{                                                                                         \
		if (!vh_have_wipeonfork())                                                        \
			cr_skip_test("_Fork() children are detected only with MADV_WIPEONFORK"); \
		suite##_##name##_body(VH_UFORK);                                                  \
	}                                                                                         \
	static void suite##_##name##_body(enum vh_fork_how how)

/* Assert in the parent that vh_in_child() succeeded. */
#define VH_ASSERT_CHILD(how, fn, arg)                                                             \
	do {                                                                                      \
		int vh_rc_ = vh_in_child((how), (fn), (arg));                                     \
		cr_assert_eq(vh_rc_, 0, "%s (%s)", vh_why, #fn);                                  \
	} while (0)
#endif
