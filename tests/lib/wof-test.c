/* SPDX-License-Identifier: MIT */
/*
 * The test support library (see wof-test.h): time and gates, the event log, children made by
 * every kind of fork and waited for with a deadline, the record through which a child reports
 * its failed check, and the building blocks and fork scenarios the tests share.
 */
#include "wof-test.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---- Time, naps, flags ---- */

bool th_all_bytes(const void *p, size_t n, unsigned char c)
{
	const volatile unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != c)
			return false;
	return true;
}

double th_now(void)
{
#ifdef _WIN32
	return (double)GetTickCount64() / 1000.0;
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}

void th_nap(long usec)
{
#ifdef _WIN32
	Sleep((DWORD)((usec + 999) / 1000));
#else
	struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
#endif
}

void th_gate_wait(const int *flag)
{
	while (!th_get(flag))
		th_nap(100);
}

bool th_await(const int *flag, int value, double seconds)
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
 * Sleeps about a millisecond in a cancellation point, with no local variable on this frame:
 * a thread cancelled here unwinds no ASan-poisoned stack slot, which gcc 12's ASan would later
 * report as a false stack-buffer-underflow when the unwinding reaches a cleanup handler.
 */
void th_cancel_nap(void)
{
#ifdef _WIN32
	Sleep(1);
#else
	(void)poll(NULL, 0, 1);
#endif
}

/* ---- The event log ---- */

struct th_event th_events[TH_MAX_EVENTS];
unsigned th_nevents;

void th_log(char kind, void *value)
{
	unsigned i = __atomic_fetch_add(&th_nevents, 1, __ATOMIC_RELAXED);

	if (i < TH_MAX_EVENTS) {
		th_events[i].kind = kind;
		th_events[i].value = value;
	}
}

unsigned th_count(char kind)
{
	unsigned n = 0, total = __atomic_load_n(&th_nevents, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < total && i < TH_MAX_EVENTS; i++)
		n += th_events[i].kind == kind;
	return n;
}

void th_log_reset(void)
{
	__atomic_store_n(&th_nevents, 0, __ATOMIC_RELAXED);
}

/* ---- Plain programs ---- */

static unsigned th_failure_count;

void th_fail_at(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s:%d: failed: %s%s%s\n", file, line, cond ? cond : "", cond ? ": " : "",
	        what); /* one call: a line of its own among other threads' */
	__atomic_add_fetch(&th_failure_count, 1, __ATOMIC_RELAXED);
}

unsigned th_failures(void)
{
	/* Relaxed: read once the threads that count are done (joined) or given up on. */
	return __atomic_load_n(&th_failure_count, __ATOMIC_RELAXED);
}

int th_arg_count(const char *arg, int max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end || v < 1 || v > max) {
		fprintf(stderr, "bad count '%s' (1..%d)\n", arg, max);
		exit(2);
	}
	return (int)v;
}

uint64_t th_rnd(uint64_t *state)
{
	*state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17;
	return *state;
}

const char *th_failed(const char *fmt, ...)
{
	static char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return buf;
}

#if TH_PTHREADS
/* ---- Threads ---- */

void th_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(thread, NULL, fn, arg);

	if (rc != 0) {
		fprintf(stderr, "pthread_create: error %d\n", rc);
		abort();
	}
}

int th_join(pthread_t thread, void **result, double seconds)
{
#ifdef _WIN32
	/* winpthreads has no timed join: the test's own timeout is the deadline there. */
	(void)seconds;
	return pthread_join(thread, result);
#else
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	return pthread_timedjoin_np(thread, result, &ts);
#endif
}

#endif /* TH_PTHREADS */

#ifndef _WIN32
/* ---- Processes ---- */

const char *const th_fork_names[TH_FORK_KINDS] = { "fork", "_Fork", "SYS_fork", "clone" };

#if defined(__GLIBC__) && !(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#error "the tests need _Fork (glibc 2.34 or later)"
#endif
/* Declared by <unistd.h> on glibc >= 2.34 under _GNU_SOURCE; repeated for other settings. */
pid_t _Fork(void);

enum th_fork_kind th_fork_kind_named(const char *name)
{
	int k = 0;

	while (k < TH_FORK_KINDS && strcmp(name, th_fork_names[k]) != 0)
		k++;
	return (enum th_fork_kind)k;
}

/*
 * The failure a child recorded (TH_CHILD_CHECK), in a MAP_SHARED page that every descendant
 * shares: the first failure wins; the first process (not made by th_fork) that reaps a failed
 * child takes it over and clears it. Mapped before the first child is made.
 */
struct th_record {
	int line; /* 0: nothing recorded */
	char text[248];
};
static struct th_record *th_record_page;
static bool th_made_by_th_fork; /* a child leaves a grandchild's record to its own parent */
static _Thread_local char th_last_failure[248];

/* The record, mapped by the first caller (NULL if it cannot be). */
static struct th_record *th_record(bool map)
{
	/* Acquire: pairs with the release of the exchange below, for the page's mapping. */
	struct th_record *r = __atomic_load_n(&th_record_page, __ATOMIC_ACQUIRE), *none = NULL;

	if (!r && map) {
		void *p = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		               -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		r = p;
		/* Release: pairs with the acquire above; a thread that lost the race unmaps its own. */
		if (!__atomic_compare_exchange_n(&th_record_page, &none, r, false, __ATOMIC_ACQ_REL,
		                                 __ATOMIC_ACQUIRE)) {
			munmap(p, sizeof *r);
			r = none;
		}
	}
	return r;
}

static size_t th_copy(char *to, size_t at, size_t size, const char *s)
{
	while (*s && at + 1 < size)
		to[at++] = *s++;
	to[at] = 0;
	return at;
}

int th_child_failed(const char *file, int line, const char *cond)
{
	char num[12], *p = num + sizeof num;
	size_t at;

	struct th_record *r = th_record(false);

	/* Async-signal-safe: no stdio. The first failure wins (the lock is the line word). */
	if (r && __atomic_exchange_n(&r->line, line, __ATOMIC_ACQ_REL) == 0) {
		*--p = 0;
		for (int n = line; n > 0 || p == num + sizeof num - 1; n /= 10)
			*--p = (char)('0' + n % 10);
		at = th_copy(r->text, 0, sizeof r->text, file);
		at = th_copy(r->text, at, sizeof r->text, ":");
		at = th_copy(r->text, at, sizeof r->text, p);
		at = th_copy(r->text, at, sizeof r->text, ": failed: ");
		th_copy(r->text, at, sizeof r->text, cond);
	}
	return 1 + line % 100;
}

static pid_t th_raw_clone(void)
{
#if defined(__s390__) || defined(__CRIS__)
	return (pid_t)syscall(SYS_clone, 0, SIGCHLD); /* stack first, then flags */
#else
	return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#endif
}

pid_t th_fork(enum th_fork_kind kind)
{
	pid_t parent = getpid();
	pid_t pid;

	(void)th_record(true); /* before the child exists, so that it inherits the mapping */
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
		th_made_by_th_fork = true;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the parent died before prctl */
			_exit(TH_SKIP);
	}
	return pid;
}

pid_t th_spawn(enum th_fork_kind kind, int (*child)(void *), void *arg)
{
	pid_t pid = th_fork(kind);

	if (pid == 0)
		_exit(child(arg));
	return pid;
}

int th_wait(pid_t pid, double seconds)
{
	double deadline = th_now() + seconds;
	long nap = 20;
	int status, code;

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
		code = WEXITSTATUS(status);
	else
		code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : TH_LOST;
	struct th_record *rec = th_record(false);
	th_last_failure[0] = 0;
	/* Acquire: the child's text was written before its exit, which waitpid saw. */
	if (code != 0 && rec && __atomic_load_n(&rec->line, __ATOMIC_ACQUIRE)) {
		th_copy(th_last_failure, 0, sizeof th_last_failure, rec->text);
		if (!th_made_by_th_fork) /* release: pairs with the next exchange */
			__atomic_store_n(&rec->line, 0, __ATOMIC_RELEASE);
	}
	return code;
}

const char *th_outcome(int code)
{
	static _Thread_local char buf[320];

	if (code == TH_HUNG)
		return "hung: killed at the deadline";
	if (code == TH_LOST)
		return "lost (fork or waitpid failed)";
	if (code > 128 && code < 128 + 65)
		snprintf(buf, sizeof buf, "killed by signal %d", code - 128);
	else if (th_last_failure[0])
		snprintf(buf, sizeof buf, "exit code %d: %s", code, th_last_failure);
	else
		snprintf(buf, sizeof buf, "exit code %d", code);
	return buf;
}

#if TH_TSAN
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#endif

/* How deep this process is in th_child_begin()s: a grandchild inherits its parent's ignores. */
static int child_ignores;

void th_child_begin(void)
{
#if TH_TSAN
	__tsan_ignore_thread_begin();
#endif
	child_ignores++;
}

void th_child_exit(int code)
{
#if TH_TSAN
	while (child_ignores-- > 0)
		__tsan_ignore_thread_end(); /* TSan refuses a thread that exits while ignoring */
#endif
	_exit(code);
}

char th_why[320];

int th_reap(pid_t pid, const char *what)
{
	int code = th_wait(pid, TH_DEADLINE_S);

	if (code != 0)
		snprintf(th_why, sizeof th_why, "%s child: %s", what, th_outcome(code));
	return code;
}

int th_in_child(enum th_fork_kind kind, int (*fn)(void *), void *arg)
{
	pid_t pid = th_fork(kind);

	if (pid == 0) {
		th_child_begin();
		th_child_exit(fn(arg));
	}
	return th_reap(pid, th_fork_names[kind]);
}

bool th_kernel_wipes_on_fork(void)
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

#endif /* !_WIN32 */
