/* SPDX-License-Identifier: MIT */
/*
 * windows-race: threads racing on the first use of every thread-safe primitive see exactly one
 * init, and every one of them returns only once that init has finished -- on Windows, where
 * waiters park on WaitOnAddress and a runner that leaves by ExitThread is abandoned at thread
 * exit, and (portable, pthreads) on every other system. A plain program: exit 0 pass, 1 fail,
 * 2 bad usage.
 *
 *   windows-race race THREADS ROUNDS   per round, fresh objects of every kind: a wof_once_t, a
 *                                      once_lock, a lazy_lock, a WOF_LAZY_STATIC and (the first
 *                                      LAZIES rounds) a WOF_LAZY_SECRET; all threads start
 *                                      together and call each one
 *   windows-race exit THREADS ROUNDS   Windows: a runner ends its thread inside init (ExitThread,
 *                                      _endthreadex, inside two nested inits); of THREADS
 *                                      callers that arrive meanwhile exactly one runs init again
 *                                      and all return. Elsewhere: skipped (77)
 *   windows-race semantics             what holds as on Linux (EDEADLK on re-entry, a failed
 *                                      init retried, errno kept, wof_wipe_all()), and what
 *                                      wof_fork_detection() says (WOF_FORK_DETECT_NO_FORK on
 *                                      Windows and only there)
 */
#include "wof-test.h"

#if defined(_WIN32)
#include <process.h>
#include <windows.h>
#endif

#define MAX_THREADS 64
#define MAX_ROUNDS 1000
#define LAZIES 8       /* lazy statics and lazy secrets: one per round, for the first rounds */
#define DEADLINE_S (6 * TH_DEADLINE_S) /* for every thread of a round: Wine, a loaded machine */

/* ---- threads, sleeping, time: Win32 on Windows, POSIX elsewhere ----------------------------- */

struct wr_start {
	void (*fn)(void *);
	void *arg;
};

#if defined(_WIN32)
typedef HANDLE wr_thread;
#define WR_RESULT unsigned __stdcall
#define wr_yield SwitchToThread
#else
typedef pthread_t wr_thread;
#define WR_RESULT void *
#define wr_yield sched_yield
#endif

static WR_RESULT wr_trampoline(void *arg)
{
	struct wr_start start = *(struct wr_start *)arg;

	free(arg);
	start.fn(start.arg);
	return 0;
}

static void wr_start(wr_thread *thread, void (*fn)(void *), void *arg)
{
	struct wr_start *start = malloc(sizeof *start);

	if (!start) {
		fprintf(stderr, "windows-race: out of memory\n");
		exit(1);
	}
	*start = (struct wr_start){ fn, arg };
#if defined(_WIN32)
	*thread = (HANDLE)_beginthreadex(NULL, 0, wr_trampoline, start, 0, NULL);
	if (*thread == 0) {
#else
	if (pthread_create(thread, NULL, wr_trampoline, start) != 0) {
#endif
		fprintf(stderr, "windows-race: cannot start a thread\n");
		exit(1);
	}
}

static void wr_join(wr_thread thread)
{
#if defined(_WIN32)
	WaitForSingleObject(thread, INFINITE);
	CloseHandle(thread);
#else
	pthread_join(thread, NULL);
#endif
}

static int wr_add(int *counter)
{
	/* Acq_rel: pairs with th_get, for counters that are also flags (th_await). */
	return __atomic_add_fetch(counter, 1, __ATOMIC_ACQ_REL);
}

static void wr_hung(const char *what, int returned, int expected)
{
	fprintf(stderr, "windows-race: %s: %d of %d threads returned within %.0f s\n", what,
	        returned, expected, DEADLINE_S);
	fflush(stderr);
	_Exit(1);
}

/* ---- race: first use of every primitive, all threads at once ------------------------------- */

/* What an init does: counts itself, lets the others pile up behind it, and publishes a value
 * with plain writes that every caller must see once its call returns. */
struct init_record {
	int runs;     /* atomic: inits run */
	int finished; /* atomic: inits that returned */
	int value;    /* plain: written by the one init */
};

static void init_body(struct init_record *rec, int value)
{
	wr_add(&rec->runs);
	th_nap(2000); /* the other threads arrive and park */
	rec->value = value;
	wr_add(&rec->finished);
}

struct round {
	wof_once_t once;
	wof_once_lock_t lock;
	wof_lazy_lock_t lazy;
	struct init_record once_rec, lock_rec, lazy_rec, static_rec, secret_rec;
	int lock_value, lazy_value;
};

static struct round rounds[MAX_ROUNDS];

static void once_init(void *arg)
{
	init_body(&((struct round *)arg)->once_rec, 11);
}

static void *lock_init(void *arg)
{
	struct round *r = arg;

	init_body(&r->lock_rec, 12);
	r->lock_value = 12;
	return &r->lock_value;
}

static void *lazy_init(void *arg)
{
	struct round *r = arg;

	init_body(&r->lazy_rec, 13);
	r->lazy_value = 13;
	return &r->lazy_value;
}

/* LAZIES lazy statics and lazy secrets, each the subject of one round's race. */
static struct init_record static_recs[LAZIES], secret_recs[LAZIES];

#define WR_LAZY(i)                                                                                \
	static int static_init_##i(int *slot)                                                     \
	{                                                                                         \
		init_body(&static_recs[i], 100 + i);                                              \
		*slot = 100 + i;                                                                  \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_STATIC(int, lazy_static_##i, static_init_##i);                                   \
	static int secret_init_##i(int *slot)                                                     \
	{                                                                                         \
		init_body(&secret_recs[i], 200 + i);                                              \
		*slot = 200 + i;                                                                  \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_SECRET(int, lazy_secret_##i, secret_init_##i)

WR_LAZY(0);
WR_LAZY(1);
WR_LAZY(2);
WR_LAZY(3);
WR_LAZY(4);
WR_LAZY(5);
WR_LAZY(6);
WR_LAZY(7);

static int *(*const lazy_statics[LAZIES])(void) = { lazy_static_0, lazy_static_1, lazy_static_2,
	                                             lazy_static_3, lazy_static_4, lazy_static_5,
	                                             lazy_static_6, lazy_static_7 };
static int *(*const lazy_secrets[LAZIES])(void) = { lazy_secret_0, lazy_secret_1, lazy_secret_2,
	                                             lazy_secret_3, lazy_secret_4, lazy_secret_5,
	                                             lazy_secret_6, lazy_secret_7 };

struct race {
	int nthreads;
	int round;    /* atomic: the round the racers may start */
	int arrived;  /* atomic: racers waiting for the round to start */
	int returned; /* atomic: racers done with the round */
	int stop;     /* atomic */
};

/* One caller's view of one init: the call returned after the init had finished, with its value. */
static void check_return(const char *what, int round, const struct init_record *rec, int got,
                         int want)
{
	/* Acquire: pairs with init_body's wr_add; the once's own acquire is what is under test. */
	TH_EXPECT(__atomic_load_n(&rec->finished, __ATOMIC_ACQUIRE) >= 1,
	          "round %d, %s: returned before init had finished", round, what);
	TH_EXPECT(got == want, "round %d, %s: got %d, expected %d", round, what, got, want);
}

static void racer(void *arg)
{
	struct race *race = arg;

	for (int round = 0;; round++) {
		wr_add(&race->arrived);
		while (th_get(&race->round) < round + 1 && !th_get(&race->stop))
			wr_yield();
		if (th_get(&race->stop))
			return;
		struct round *r = &rounds[round];
		int rc = wof_once_call(&r->once, once_init, r);
		TH_EXPECT(rc == 0, "round %d: wof_once_call returned %d", round, rc);
		check_return("once", round, &r->once_rec, r->once_rec.value, 11);

		int *v = wof_once_lock_get_or_init(&r->lock, lock_init, r);
		check_return("once_lock", round, &r->lock_rec, v ? *v : -1, 12);

		v = wof_lazy_lock_force(&r->lazy);
		check_return("lazy_lock", round, &r->lazy_rec, v ? *v : -1, 13);

		if (round < LAZIES) {
			v = lazy_statics[round]();
			check_return("WOF_LAZY_STATIC", round, &static_recs[round], v ? *v : -1,
			             100 + round);
			v = lazy_secrets[round]();
			check_return("WOF_LAZY_SECRET", round, &secret_recs[round], v ? *v : -1,
			             200 + round);
		}
		wr_add(&race->returned);
	}
}

static void race(int nthreads, int nrounds)
{
	static const char *const kinds[] = { "once", "once_lock", "lazy_lock", "lazy static",
		                             "lazy secret" };
	struct race race = { .nthreads = nthreads };
	wr_thread threads[MAX_THREADS];

	for (int round = 0; round < nrounds; round++) {
		struct round *r = &rounds[round];
		r->lazy = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(lazy_init, r);
	}
	for (int i = 0; i < nthreads; i++)
		wr_start(&threads[i], racer, &race);
	for (int round = 0; round < nrounds; round++) {
		/* Every racer is at the start line before the round begins. */
		if (!th_await(&race.arrived, nthreads * (round + 1), DEADLINE_S))
			wr_hung("start line", th_get(&race.arrived) - nthreads * round, nthreads);
		th_set(&race.round, round + 1);
		if (!th_await(&race.returned, nthreads * (round + 1), DEADLINE_S))
			wr_hung("race", th_get(&race.returned) - nthreads * round, nthreads);
		struct round *r = &rounds[round];
		const struct init_record *recs[] = { &r->once_rec, &r->lock_rec, &r->lazy_rec,
			                             &static_recs[round % LAZIES],
			                             &secret_recs[round % LAZIES] };
		for (int k = 0; k < (round < LAZIES ? 5 : 3); k++)
			TH_EXPECT(recs[k]->runs == 1, "round %d: %s init ran %d times", round,
			          kinds[k], recs[k]->runs);
	}
	/* The racers are at the start line of a round that never comes. */
	if (!th_await(&race.arrived, nthreads * (nrounds + 1), DEADLINE_S))
		wr_hung("last start line", th_get(&race.arrived) - nthreads * nrounds, nthreads);
	th_set(&race.stop, 1);
	for (int i = 0; i < nthreads; i++)
		wr_join(threads[i]);
}

/* ---- exit: the runner's thread ends inside init (Windows) ---------------------------------- */

#if defined(_WIN32)
/* pthread_exit: winpthreads frees the thread's (emulated) thread-local storage and longjmps
 * out of init to the thread's start, which then returns: no unwinding through libwof. */
enum ending { END_EXIT_THREAD, END_ENDTHREADEX, END_NESTED, END_PTHREAD_EXIT, ENDINGS };

static const char *const ending_names[ENDINGS] = { "ExitThread", "_endthreadex",
	                                           "ExitThread in a nested init",
	                                           "pthread_exit" };

struct handover {
	enum ending ending;
	wof_once_t once, outer;
	wof_once_lock_t lock;
	int entered;  /* atomic: the ending runner is inside init */
	int runs;     /* atomic: callers' inits that ran (one per abandoned object) */
	int returned; /* atomic */
	int bad;      /* atomic: callers that got an error or no value */
	int value;
	bool in_pthread;
};

static void ending_runner(void *arg);

#if TH_PTHREADS
static void *pthread_runner(void *arg)
{
	ending_runner(arg);
	return NULL;
}
#endif

static void end_thread(struct handover *h)
{
	th_set(&h->entered, 1);
	th_nap(20000); /* callers arrive and park */
	if (h->ending == END_ENDTHREADEX)
		_endthreadex(3);
#if TH_PTHREADS
	if (h->ending == END_PTHREAD_EXIT)
		pthread_exit(NULL);
#endif
	ExitThread(3);
}

static void ending_once_init(void *arg)
{
	end_thread(arg);
}

static void nested_outer_init(void *arg)
{
	struct handover *h = arg;

	(void)wof_once_call(&h->once, ending_once_init, h);
}

static void *ending_lock_init(void *arg)
{
	end_thread(arg);
	return NULL;
}

static void good_once_init(void *arg)
{
	struct handover *h = arg;

	wr_add(&h->runs);
	h->value = 42;
}

static void good_outer_init(void *arg)
{
	wr_add(&((struct handover *)arg)->runs);
}

static void *good_lock_init(void *arg)
{
	struct handover *h = arg;

	wr_add(&h->runs);
	h->value = 43;
	return &h->value;
}

static void ending_runner(void *arg)
{
	struct handover *h = arg;

	/* pthread_exit from a thread that pthread_create made, which is what it expects. */
#if TH_PTHREADS
	if (h->ending == END_PTHREAD_EXIT && !h->in_pthread) {
		pthread_t thread;
		h->in_pthread = true;
		th_start(&thread, pthread_runner, h);
		pthread_join(thread, NULL);
		return;
	}
#endif

	if (h->ending == END_NESTED)
		(void)wof_once_call(&h->outer, nested_outer_init, h);
	else if (h->ending == END_ENDTHREADEX)
		(void)wof_once_lock_get_or_init(&h->lock, ending_lock_init, h);
	else
		(void)wof_once_call(&h->once, ending_once_init, h);
	TH_FAIL("the ending runner returned");
}

/* Callers take turns: run init, only wait, run init on the outer once (nested ending). */
struct caller {
	struct handover *h;
	int id;
};

static void caller(void *arg)
{
	struct caller *c = arg;
	struct handover *h = c->h;
	bool ok;

	if (h->ending == END_ENDTHREADEX) {
		int *v = c->id % 2 ? wof_once_lock_wait(&h->lock)
		                   : wof_once_lock_get_or_init(&h->lock, good_lock_init, h);
		ok = v && *v == 43;
	} else if (c->id % 3 == 1) {
		ok = wof_once_wait(&h->once) == 0 && h->value == 42;
	} else {
		if (h->ending == END_NESTED && c->id % 3 == 2)
			ok = wof_once_call(&h->outer, good_outer_init, h) == 0;
		else
			ok = wof_once_call(&h->once, good_once_init, h) == 0 && h->value == 42;
	}
	if (!ok)
		wr_add(&h->bad);
	wr_add(&h->returned);
}

static void exit_inside_init(int nthreads, int nrounds)
{
	struct caller callers[MAX_THREADS];
	wr_thread threads[MAX_THREADS], runner;

	for (int round = 0; round < nrounds; round++) {
		struct handover *h = calloc(1, sizeof *h);
		TH_EXPECT(h != NULL, "out of memory");
		if (!h)
			return;
		h->ending = (enum ending)(round % ENDINGS);
		const char *name = ending_names[h->ending];

		wr_start(&runner, ending_runner, h);
		if (!th_await(&h->entered, 1, DEADLINE_S))
			wr_hung(name, 0, 1);
		for (int i = 0; i < nthreads; i++) {
			callers[i] = (struct caller){ h, i };
			wr_start(&threads[i], caller, &callers[i]);
		}
		wr_join(runner); /* it ends inside init (or, for pthread_exit, waits for the one that
		                  * does) */
		if (!th_await(&h->returned, nthreads, DEADLINE_S))
			wr_hung(name, th_get(&h->returned), nthreads);
		for (int i = 0; i < nthreads; i++)
			wr_join(threads[i]);
		/* A nested ending abandons two onces: with callers of both, two inits run. */
		int expected = h->ending == END_NESTED && nthreads > 2 ? 2 : 1;
		TH_EXPECT(h->runs == expected, "round %d, %s: init ran %d times after the runner "
		          "ended, expected %d", round, name, h->runs, expected);
		TH_EXPECT(h->bad == 0, "round %d, %s: %d callers failed", round, name, h->bad);
		if (h->ending == END_ENDTHREADEX)
			TH_EXPECT(wof_once_lock_get(&h->lock) == &h->value, "round %d, %s: not set",
			          round, name);
		else
			TH_EXPECT(wof_once_is_completed(&h->once), "round %d, %s: incomplete",
			          round, name);
		free(h);
	}
}
#endif

/* ---- semantics: what holds as on Linux ------------------------------------------------------ */

static wof_once_t reentered = WOF_ONCE_INIT;
static int reentry_rc = -1;

static void reenter(void *arg)
{
	(void)arg;
	reentry_rc = wof_once_call(&reentered, reenter, NULL);
}

static int try_calls;

static int fail_twice(void *arg)
{
	(void)arg;
	errno = ERANGE; /* a successful call must hide this from its caller */
	return ++try_calls <= 2 ? EAGAIN : 0;
}

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

static void semantics(void)
{
	/* Fork detection says what the system is. */
	unsigned detection = wof_fork_detection();
#if defined(_WIN32)
	TH_EXPECT(detection == WOF_FORK_DETECT_NO_FORK, "wof_fork_detection() = %u", detection);
#else
	TH_EXPECT((detection & WOF_FORK_DETECT_NO_FORK) == 0, "wof_fork_detection() = %u",
	          detection);
#endif

	/* A generation: never 0, constant. */
	uint32_t gen = wof_generation();
	TH_EXPECT(gen != 0 && wof_generation() == gen, "wof_generation() = %u", (unsigned)gen);

	/* Re-entry. */
	TH_EXPECT(wof_once_call(&reentered, reenter, NULL) == 0, "outer call");
	TH_EXPECT(reentry_rc == EDEADLK, "re-entry returned %d, expected EDEADLK", reentry_rc);

	/* A failing init is retried; a success leaves errno as the caller had it. */
	static wof_once_t retried = WOF_ONCE_INIT;
	errno = 0;
	TH_EXPECT(wof_once_try_call(&retried, fail_twice, NULL) == EAGAIN, "first try");
	TH_EXPECT(wof_once_try_call(&retried, fail_twice, NULL) == EAGAIN, "second try");
	errno = EINTR;
	TH_EXPECT(wof_once_try_call(&retried, fail_twice, NULL) == 0, "third try");
	TH_EXPECT(errno == EINTR, "errno %d after a success, expected EINTR", errno);
	TH_EXPECT(wof_once_is_completed(&retried), "not completed after a success");

	/* wof_wipe_all(): a new generation, and objects uninitialised again. */
	static wof_once_t wiped = WOF_ONCE_INIT;
	int calls = 0;
	TH_EXPECT(wof_once_call(&wiped, count_call, &calls) == 0 && calls == 1, "first call");
	wof_wipe_all();
	TH_EXPECT(wof_generation() != gen && wof_generation() != 0, "generation %u after "
	          "wof_wipe_all(), was %u", (unsigned)wof_generation(), (unsigned)gen);
	TH_EXPECT(!wof_once_is_completed(&wiped), "completed after wof_wipe_all()");
	TH_EXPECT(wof_once_call(&wiped, count_call, &calls) == 0 && calls == 2,
	          "%d calls after wof_wipe_all()", calls);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "semantics")) {
		semantics();
	} else if (argc == 4 && !strcmp(argv[1], "race")) {
		race(th_arg_count(argv[2], MAX_THREADS), th_arg_count(argv[3], MAX_ROUNDS));
	} else if (argc == 4 && !strcmp(argv[1], "exit")) {
#if defined(_WIN32)
		exit_inside_init(th_arg_count(argv[2], MAX_THREADS), th_arg_count(argv[3], 1000));
#else
		printf("windows-race exit: ExitThread is Windows' only: skipped\n");
		return TH_SKIP;
#endif
	} else {
		fprintf(stderr, "usage: %s race|exit THREADS ROUNDS | %s semantics\n", argv[0],
		        argv[0]);
		return 2;
	}
	if (th_failures()) {
		fprintf(stderr, "windows-race %s: %u checks failed\n", argv[1], th_failures());
		return 1;
	}
	printf("windows-race %s: passed\n", argv[1]);
	return 0;
}
