/* SPDX-License-Identifier: MIT */
/*
 * Fork detection when setting it up fails: pthread_atfork() and the wipe-on-fork setup are made
 * to fail (ENOMEM, which libwof must take for a transient failure) on demand, and wof must
 * neither claim a mechanism it does not have nor give one up for good after a transient
 * failure.
 *
 *   atfork   The first registrations fail. While none has succeeded, wof_fork_detection()
 *            does not report WOF_FORK_DETECT_ATFORK; a later slow path registers, once.
 *   none     Both fail. wof_fork_detection() is WOF_FORK_DETECT_NONE and objects keep their
 *            state across fork() and _Fork(), as documented. Then pthread_atfork works again:
 *            fork() children are new. Then the wipe-on-fork setup works again: _Fork()
 *            children are new too, and a once completed before either retry still reads
 *            completed in this process.
 *   wipe     The wipe-on-fork setup fails at first (atfork works): only fork() is detected.
 *            A later slow path sets it up; a once completed before that still reads completed
 *            here, with the same generation, and is incomplete in _Fork(), SYS_fork and
 *            fork() children.
 *
 * The program defines __register_atfork (which glibc's pthread_atfork calls from the caller's
 * own object; elsewhere pthread_atfork itself), madvise and mmap/mmap64 itself; ELF
 * interposition sends libwof's calls here, and they go on to the C library unless a scenario
 * has armed a failure. The wipe-on-fork
 * setup is whichever libwof does: madvise(MADV_WIPEONFORK) of its fork page, or an mmap of a
 * page to mark (one page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, no address, no
 * fd); only such calls fail. A process sets its generation up once, so each scenario runs in
 * a fresh process.
 *
 *   usage: fault-inject [atfork|none|wipe]   (none given: each in turn, by exec)
 *          exit 0 passed, 1 failed, 77 skipped
 */
#include <dlfcn.h>

#include "config.h"
#include "wof-test.h"

/* ---- the interposers ---- */

/* Sanitizer runtimes register atfork handlers and map memory while they start, before they can
 * run instrumented code: the interposers are not instrumented. */
#define INTERPOSER __attribute__((__no_sanitize__("thread")))

/* Failures to inject: > 0 that many more, -1 every call, 0 none. Test thread only. */
static int fail_atfork, fail_wipe;
/* What happened while the test was looking (armed = counting). */
static bool counting;
static int atfork_calls, atfork_registered, wipe_calls, wipe_failed;

INTERPOSER static bool take_failure(int *left)
{
	if (*left == 0)
		return false;
	if (*left > 0)
		(*left)--;
	return true;
}

typedef int register_atfork_fn(void (*)(void), void (*)(void), void (*)(void), void *);

int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                      void *dso_handle);
INTERPOSER int __register_atfork(void (*prepare)(void), void (*parent)(void),
                                 void (*child)(void), void *dso_handle)
{
	static register_atfork_fn *next;

	if (!next)
		next = (register_atfork_fn *)dlsym(RTLD_NEXT, "__register_atfork");
	if (!counting)
		return next ? next(prepare, parent, child, dso_handle) : ENOSYS;
	atfork_calls++;
	if (take_failure(&fail_atfork))
		return ENOMEM;
	int rc = next ? next(prepare, parent, child, dso_handle) : ENOSYS;
	if (rc == 0)
		atfork_registered++;
	return rc;
}

#ifndef __GLIBC__
/* Other C libraries (musl) export pthread_atfork itself: libwof's call comes here. */
typedef int pthread_atfork_fn(void (*)(void), void (*)(void), void (*)(void));

INTERPOSER int pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	static pthread_atfork_fn *next;

	if (!next)
		next = (pthread_atfork_fn *)dlsym(RTLD_NEXT, "pthread_atfork");
	if (!counting)
		return next ? next(prepare, parent, child) : ENOSYS;
	atfork_calls++;
	if (take_failure(&fail_atfork))
		return ENOMEM;
	int rc = next ? next(prepare, parent, child) : ENOSYS;
	if (rc == 0)
		atfork_registered++;
	return rc;
}
#endif

/* A wipe-on-fork setup call of libwof's: whether a failure is armed for it (errno set). */
INTERPOSER static bool fail_wipe_setup(void)
{
	wipe_calls++;
	if (!take_failure(&fail_wipe))
		return false;
	wipe_failed++;
	errno = ENOMEM;
	return true;
}

#define WIPEONFORK 18 /* MADV_WIPEONFORK, Linux >= 4.14 */

typedef int madvise_fn(void *, size_t, int);

INTERPOSER int madvise(void *addr, size_t len, int advice)
{
	static madvise_fn *next;

	if (counting && advice == WIPEONFORK && fail_wipe_setup())
		return -1;
	if (!next)
		next = (madvise_fn *)dlsym(RTLD_NEXT, "madvise");
	return next(addr, len, advice);
}

/* Whether an mmap is shaped like a page that libwof would mark, and a failure is armed. */
INTERPOSER static bool fail_this_map(void *addr, size_t len, int prot, int flags, int fd)
{
	return counting && addr == NULL && len == (size_t)sysconf(_SC_PAGESIZE) &&
	       prot == (PROT_READ | PROT_WRITE) && flags == (MAP_PRIVATE | MAP_ANONYMOUS) &&
	       fd == -1 && fail_wipe_setup();
}

/* Declared under their symbol names, not through <sys/mman.h>, whose declarations
 * _FILE_OFFSET_BITS may redirect from one to the other. */
void *test_mmap(void *addr, size_t len, int prot, int flags, int fd, long off) __asm__("mmap");
void *test_mmap64(void *addr, size_t len, int prot, int flags, int fd, int64_t off)
        __asm__("mmap64");

#define MMAP_INTERPOSER(name, symbol, off_type)                                                 \
	INTERPOSER void *name(void *addr, size_t len, int prot, int flags, int fd, off_type off) \
	{                                                                                       \
		typedef void *next_fn(void *, size_t, int, int, int, off_type);                 \
		static next_fn *next;                                                           \
                                                                                                \
		if (fail_this_map(addr, len, prot, flags, fd))                                  \
			return MAP_FAILED;                                                      \
		if (!next)                                                                      \
			next = (next_fn *)dlsym(RTLD_NEXT, symbol);                             \
		return next(addr, len, prot, flags, fd, off);                                   \
	}
MMAP_INTERPOSER(test_mmap, "mmap", long)
MMAP_INTERPOSER(test_mmap64, "mmap64", int64_t)

/* ---- the scenarios ---- */

#define CHECK(cond, ...)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s: %s:%d: ", scenario, __FILE__, __LINE__);          \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			return 1;                                                              \
		}                                                                              \
	} while (0)

#define RETRIES 20 /* slow paths a scenario allows for a retry to happen */

#define NOTHING_INJECTED                                                                       \
	"libwof made no wipe-on-fork setup call that the test knows (madvise(MADV_WIPEONFORK), "  \
	"or an mmap of one page): nothing was injected"

static const char *scenario;
static wof_once_t early = WOF_ONCE_INIT; /* completed before any retry */
static int early_runs;
static wof_once_t fresh[4 * RETRIES];
static int fresh_used, fresh_runs;
static uint32_t gen;

/* One more slow path: a call on a once never used before. */
static void slow_path(void)
{
	if (fresh_used < (int)(sizeof fresh / sizeof fresh[0]))
		(void)wof_once_call(&fresh[fresh_used++], th_count_run, &fresh_runs);
}

/* A child that must be a new process: new generation, `early` incomplete, runs there once. */
static int child_is_new(void *arg)
{
	int before = early_runs;

	(void)arg;
	TH_CHILD_CHECK(wof_generation() != gen);
	TH_CHILD_CHECK(!wof_once_is_completed(&early));
	TH_CHILD_CHECK(wof_once_call(&early, th_count_run, &early_runs) == 0);
	TH_CHILD_CHECK(early_runs == before + 1 && wof_once_is_completed(&early));
	return 0;
}

/* A child that wof cannot tell from its parent: same generation, `early` still completed. */
static int child_is_copy(void *arg)
{
	int before = early_runs;

	(void)arg;
	TH_CHILD_CHECK(wof_generation() == gen);
	TH_CHILD_CHECK(wof_once_is_completed(&early));
	TH_CHILD_CHECK(wof_once_call(&early, th_count_run, &early_runs) == 0);
	TH_CHILD_CHECK(early_runs == before);
	return 0;
}

/* A child made by `kind` passes fn's checks; `when` goes into the message if not. */
#define CHECK_CHILD(kind, fn, when)                                                            \
	CHECK(th_in_child(kind, fn, NULL) == 0, "%s %s: %s", #fn, when, th_why)

/* `early` completed, with the generation this process had before the retries. */
static bool early_intact(void)
{
	int before = early_runs;

	return wof_generation() == gen && wof_once_is_completed(&early) &&
	       wof_once_call(&early, th_count_run, &early_runs) == 0 && early_runs == before;
}

/* The wipe-on-fork setup works again: a later slow path makes it, and `early` stays intact. */
static int wipe_retried(void)
{
	unsigned how;

	fail_wipe = 0;
	for (int i = 0; i < RETRIES && !(wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK); i++)
		slow_path();
	how = wof_fork_detection();
	CHECK(how == (WOF_FORK_DETECT_ATFORK | WOF_FORK_DETECT_WIPEONFORK),
	      "a transient wipe-on-fork failure was not retried by %d slow paths (%d setup calls "
	      "in all): detection %#x", fresh_used, wipe_calls, how);
	CHECK(early_intact(), "the once completed before wipe-on-fork was set up is not complete "
	                      "(or the generation moved) in the same process");
	return 0;
}

static int scenario_atfork(void)
{
	unsigned how;

	fail_atfork = 2;
	counting = true;
	gen = wof_generation();
	CHECK(atfork_calls >= 1, "libwof's first slow path did not call pthread_atfork");
	for (int i = 0; i <= RETRIES && atfork_registered == 0; i++) {
		how = wof_fork_detection();
		CHECK(!(how & WOF_FORK_DETECT_ATFORK),
		      "wof_fork_detection() = %#x reports ATFORK after %d failed registrations and "
		      "none that succeeded",
		      how, atfork_calls);
		slow_path();
	}
	CHECK(atfork_registered == 1,
	      "pthread_atfork failed %d times and was not retried by %d later slow paths",
	      atfork_calls, fresh_used);
	how = wof_fork_detection();
	CHECK(how & WOF_FORK_DETECT_ATFORK,
	      "the handler is registered, but wof_fork_detection() = %#x", how);
	for (int i = 0; i < RETRIES; i++)
		slow_path();
	CHECK(atfork_registered == 1 && atfork_calls == 3,
	      "%d registrations succeeded, %d attempts (expected 1 and 3)", atfork_registered,
	      atfork_calls);
	CHECK(wof_once_call(&early, th_count_run, &early_runs) == 0, "wof_once_call failed");
	CHECK_CHILD(TH_FORK, child_is_new, "after the retry");
	printf("atfork: %d registrations failed, then one succeeded on a later slow path; "
	       "detection %#x\n",
	       atfork_calls - atfork_registered, how);
	return 0;
}

static int scenario_none(void)
{
	bool wipes = WOF_HAVE_WIPEONFORK && th_kernel_wipes_on_fork();
	unsigned how;

	fail_atfork = -1;
	fail_wipe = -1;
	counting = true;
	gen = wof_generation();
	CHECK(atfork_calls >= 1, "libwof's first slow path did not call pthread_atfork");
	/* Where the kernel (or an emulator's answer to the probe) refuses, wof asks no more. */
	CHECK(!wipes || wipe_failed >= 1, NOTHING_INJECTED);
	how = wof_fork_detection();
	CHECK(how == WOF_FORK_DETECT_NONE,
	      "neither mechanism could be set up, but wof_fork_detection() = %#x", how);
	CHECK(wof_once_call(&early, th_count_run, &early_runs) == 0 && early_runs == 1,
	      "wof_once_call failed");
	/* Documented: nothing detects these children; objects keep their state. */
	CHECK_CHILD(TH_FORK, child_is_copy, "with no detection");
	CHECK_CHILD(TH_UFORK, child_is_copy, "with no detection");

	/* pthread_atfork works again: a later slow path registers; fork() children are new. */
	fail_atfork = 0;
	for (int i = 0; i < RETRIES && atfork_registered == 0; i++)
		slow_path();
	CHECK(atfork_registered == 1, "pthread_atfork was not retried by %d slow paths",
	      fresh_used);
	how = wof_fork_detection();
	CHECK(how == WOF_FORK_DETECT_ATFORK, "after the registration: detection %#x", how);
	CHECK(early_intact(), "after the registration, the once completed before it is not "
	                      "complete (or the generation moved) in the same process");
	CHECK_CHILD(TH_FORK, child_is_new, "after the registration");

	/* The wipe-on-fork setup works again: a later slow path makes it; _Fork() children are
	 * new. */
	if (!wipes) {
		printf("none: detection 0 while both failed, ATFORK after the retry (no "
		       "MADV_WIPEONFORK here: the wipe page is not tried)\n");
		return 0;
	}
	if (wipe_retried())
		return 1;
	CHECK_CHILD(TH_UFORK, child_is_new, "after the wipe-on-fork setup");
	CHECK_CHILD(TH_FORK, child_is_new, "after the wipe-on-fork setup");
	printf("none: detection 0 while both failed (children kept the parent's objects), then "
	       "ATFORK, then ATFORK|WIPEONFORK, with the early once intact\n");
	return 0;
}

static int scenario_wipe(void)
{
	unsigned how;
	int calls;

	if (!WOF_HAVE_WIPEONFORK || !th_kernel_wipes_on_fork()) {
		printf("skipped: no MADV_WIPEONFORK here (build option or kernel)\n");
		return TH_SKIP;
	}
	fail_wipe = -1;
	counting = true;
	gen = wof_generation();
	CHECK(wipe_failed >= 1, NOTHING_INJECTED);
	CHECK(wof_once_call(&early, th_count_run, &early_runs) == 0 && early_runs == 1,
	      "wof_once_call failed");
	how = wof_fork_detection();
	CHECK(how == WOF_FORK_DETECT_ATFORK, "without wipe-on-fork: detection %#x", how);
	CHECK_CHILD(TH_FORK, child_is_new, "without wipe-on-fork");

	if (wipe_retried())
		return 1;
	calls = wipe_calls;
	for (int i = 0; i < RETRIES; i++)
		slow_path();
	CHECK(wipe_calls == calls, "%d more wipe-on-fork setup calls after it succeeded",
	      wipe_calls - calls);
	CHECK_CHILD(TH_UFORK, child_is_new, "after the retry");
	CHECK_CHILD(TH_SYS_FORK, child_is_new, "after the retry");
	CHECK_CHILD(TH_FORK, child_is_new, "after the retry");
	printf("wipe: %d wipe-on-fork setups failed; a later slow path made it; the early once "
	       "stayed complete here and is new in children\n",
	       wipe_failed);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
} scenarios[] = {
	{ "atfork", scenario_atfork },
	{ "none", scenario_none },
	{ "wipe", scenario_wipe },
};

#define SCENARIOS (int)(sizeof scenarios / sizeof scenarios[0])

int main(int argc, char **argv)
{
	_Static_assert(WOF_FORK_DETECT_NONE == 0, "WOF_FORK_DETECT_NONE is 0");

	if (argc > 1) {
		for (int i = 0; i < SCENARIOS; i++)
			if (strcmp(argv[1], scenarios[i].name) == 0) {
				scenario = scenarios[i].name;
				return scenarios[i].run();
			}
		fprintf(stderr, "usage: fault-inject [atfork|none|wipe]\n");
		return 2;
	}
	/* Each scenario in a fresh process: this program again, with its name. */
	int failed = 0, passed = 0;
	for (int i = 0; i < SCENARIOS; i++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", argv[0], scenarios[i].name, (char *)NULL);
			_exit(127);
		}
		int code = th_wait(pid, 3 * TH_DEADLINE_S);
		if (code == 0)
			passed++;
		else if (code != TH_SKIP)
			failed++;
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, SCENARIOS - passed - failed);
	return failed ? 1 : 0;
}
