/* SPDX-License-Identifier: MIT */
/*
 * The value primitives never allocate from the heap: not on a first init (the first wof call
 * of a process maps one page with mmap, which is not counted here), not on the fast path, not
 * when waiters park, not on failure or re-entry, and not in a forked child that runs on_wipe
 * and initialises again. Every heap allocation of the calling thread is counted: by replacing
 * malloc and friends (which glibc's own internal calls go through too), or under ASan, whose
 * allocator cannot be replaced, through its malloc hook.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "wof-test.h"

/* ---- counting ------------------------------------------------------------------------------ */

static _Thread_local bool counting; /* count this thread's allocations now */
static unsigned long allocations;

static void count_one(void)
{
	if (counting)
		__atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
}

/* gcc says __SANITIZE_ADDRESS__; clang 14 only answers __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void asan_malloc_hook(const volatile void *ptr, size_t size)
{
	(void)ptr;
	(void)size;
	count_one();
}

static void asan_free_hook(const volatile void *ptr)
{
	(void)ptr;
}

static void install_counter(void)
{
	static bool installed;

	/* Both hooks are required: ASan refuses a NULL one. */
	if (!installed)
		installed = __sanitizer_install_malloc_and_free_hooks(asan_malloc_hook,
		                                                      asan_free_hook) != 0;
}
#else
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *ptr);

void *malloc(size_t size)
{
	count_one();
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	count_one();
	return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
	count_one();
	return __libc_realloc(ptr, size);
}

void *aligned_alloc(size_t alignment, size_t size)
{
	count_one();
	return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
	count_one();
	void *p = __libc_memalign(alignment, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void free(void *ptr)
{
	__libc_free(ptr);
}

static void install_counter(void)
{
}
#endif

static void count_start(void)
{
	install_counter();
	__atomic_store_n(&allocations, 0, __ATOMIC_RELAXED);
	counting = true;
}

static unsigned long count_stop(void)
{
	counting = false;
	return __atomic_load_n(&allocations, __ATOMIC_RELAXED);
}

/* Stops counting; `ok` must hold, with no heap allocation counted. */
static void assert_none(bool ok)
{
	unsigned long n = count_stop();

	cr_assert(ok);
	cr_assert_eq(n, 0, "%lu heap allocations", n);
}

/* The counter itself works: otherwise every other test here would pass vacuously. */
Test(alloc, the_counter_sees_malloc)
{
	void *volatile p;

	count_start();
	p = malloc(24);
	free(p);
	p = calloc(3, 8);
	free(p);
	p = strdup("x"); /* a libc-internal allocation */
	free(p);
	cr_assert_geq(count_stop(), 3);
}

/* ---- the objects, and inits that make no allocation either ------------------------------ */

static int values[64];
static unsigned next_value;
static unsigned wipes;

static void *make_value(void *arg)
{
	(void)arg;
	return &values[__atomic_fetch_add(&next_value, 1, __ATOMIC_RELAXED) % 64];
}

static void *fail_value(void *arg)
{
	(void)arg;
	errno = EIO;
	return NULL;
}

static int try_make(void *arg, void **out)
{
	*out = make_value(arg);
	return 0;
}

static void on_wipe(void *stale)
{
	(void)stale;
	__atomic_fetch_add(&wipes, 1, __ATOMIC_RELAXED);
}

struct big {
	unsigned char bytes[4096];
};

static int big_init(struct big *slot)
{
	memset(slot, 1, sizeof *slot);
	return 0;
}

static void big_on_wipe(struct big *stale)
{
	on_wipe(stale);
}

WOF_LAZY_STATIC_ON_WIPE(struct big, big, big_init, big_on_wipe);

static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT_ON_WIPE(on_wipe);
static wof_once_lock_t lock2 = WOF_ONCE_LOCK_INIT_ON_WIPE(on_wipe);
static wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT_ON_WIPE(make_value, NULL, on_wipe);
static wof_once_cell_t cell = WOF_ONCE_CELL_INIT_ON_WIPE(on_wipe);
static wof_once_cell_t cell2 = WOF_ONCE_CELL_INIT_ON_WIPE(on_wipe);
static wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT_ON_WIPE(make_value, NULL, on_wipe);

/* Every primitive, from empty to set, with the calls around it. False when a result is off. */
static bool use_everything(void)
{
	void *out = NULL;
	bool ok = true;

	ok &= wof_once_lock_get(&lock) == NULL;
	ok &= wof_once_lock_get_or_init(&lock, fail_value, NULL) == NULL;
	ok &= wof_once_lock_get_or_init(&lock, make_value, NULL) != NULL;
	ok &= wof_once_lock_set(&lock, &values[0]) == EEXIST;
	ok &= wof_once_lock_try_insert(&lock, &values[0], &out) == EEXIST;
	ok &= wof_once_lock_wait(&lock) != NULL;
	ok &= wof_once_lock_get_or_try_init(&lock2, try_make, NULL, &out) == 0;
	ok &= wof_once_lock_take(&lock2) == out;
	ok &= wof_once_lock_set(&lock2, &values[1]) == 0;
	ok &= wof_lazy_lock_get(&lazy_lock) == NULL;
	ok &= wof_lazy_lock_force(&lazy_lock) != NULL;
	ok &= big() != NULL;
	ok &= wof_once_cell_get(&cell) == NULL;
	ok &= wof_once_cell_get_or_init(&cell, fail_value, NULL) == NULL;
	ok &= wof_once_cell_get_or_init(&cell, make_value, NULL) != NULL;
	ok &= wof_once_cell_set(&cell, &values[0]) == EEXIST;
	ok &= wof_once_cell_get_or_try_init(&cell2, try_make, NULL, &out) == 0;
	ok &= wof_once_cell_take(&cell2) == out;
	ok &= wof_once_cell_try_insert(&cell2, &values[2], &out) == 0;
	ok &= wof_lazy_cell_get(&lazy_cell) == NULL;
	ok &= wof_lazy_cell_force(&lazy_cell) != NULL;
	return ok;
}

static bool use_fast_paths(int rounds)
{
	bool ok = true;

	for (int i = 0; i < rounds; i++) {
		ok &= wof_once_lock_get(&lock) != NULL;
		ok &= wof_once_lock_get_or_init(&lock, make_value, NULL) != NULL;
		ok &= wof_lazy_lock_force(&lazy_lock) != NULL;
		ok &= wof_lazy_lock_get(&lazy_lock) != NULL;
		ok &= big() != NULL;
		ok &= wof_once_cell_get(&cell) != NULL;
		ok &= wof_once_cell_get_or_init(&cell, make_value, NULL) != NULL;
		ok &= wof_lazy_cell_force(&lazy_cell) != NULL;
	}
	return ok;
}

Test(alloc, first_init_allocates_nothing)
{
	/* The first wof call of this process happens inside the counted region. */
	count_start();
	assert_none(use_everything());
}

Test(alloc, fast_path_allocates_nothing)
{
	cr_assert(use_everything());
	count_start();
	assert_none(use_fast_paths(10000));
}

/* Re-entry and EINVAL paths. */
static bool reentry_ok;

static void *reentrant_init(void *arg)
{
	(void)arg;
	reentry_ok = wof_once_lock_get_or_init(&lock, make_value, NULL) == NULL && errno == EDEADLK;
	reentry_ok &= wof_once_lock_wait(&lock) == NULL && errno == EDEADLK;
	return &values[3];
}

static void *reentrant_cell_init(void *arg)
{
	(void)arg;
	reentry_ok &= wof_once_cell_get_or_init(&cell, make_value, NULL) == NULL && errno == EDEADLK;
	return &values[4];
}

Test(alloc, errors_and_reentry_allocate_nothing, .timeout = 10)
{
	count_start();
	bool ok = wof_once_lock_get_or_init(&lock, reentrant_init, NULL) == &values[3];
	ok &= wof_once_cell_get_or_init(&cell, reentrant_cell_init, NULL) == &values[4];
	ok &= wof_once_lock_get_or_init(NULL, make_value, NULL) == NULL;
	ok &= wof_once_lock_set(&lock, NULL) == EINVAL;
	ok &= wof_lazy_lock_force(NULL) == NULL;
	assert_none(ok);
	cr_assert(reentry_ok);
}

/* Contended: waiters park (futex or condvar) and wake; none of it allocates. */
struct race {
	pthread_barrier_t barrier;
	wof_once_lock_t lock;
	wof_lazy_lock_t lazy;
	unsigned long allocations; /* summed over the racers' counted regions */
};

static void *slow_value(void *arg)
{
	(void)arg;
	th_nap(5000);
	return make_value(NULL);
}

static void *racer(void *arg)
{
	struct race *race = arg;

	pthread_barrier_wait(&race->barrier);
	counting = true;
	void *a = wof_once_lock_get_or_init(&race->lock, slow_value, NULL);
	void *b = wof_lazy_lock_force(&race->lazy);
	void *c = wof_once_lock_wait(&race->lock);
	counting = false;
	return a && b && a == c ? NULL : (void *)"a racer got no value";
}

Test(alloc, contended_init_allocates_nothing, .timeout = 20)
{
	static struct race race;
	pthread_t threads[8];
	void *why;

	race.lock = (wof_once_lock_t)WOF_ONCE_LOCK_INIT;
	race.lazy = (wof_lazy_lock_t)WOF_LAZY_LOCK_INIT(slow_value, NULL);
	count_start();
	counting = false; /* only the racers' calls count */
	pthread_barrier_init(&race.barrier, NULL, 8);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&threads[i], NULL, racer, &race), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], &why);
		cr_assert_null(why, "%s", (const char *)why);
	}
	pthread_barrier_destroy(&race.barrier);
	assert_none(true);
}

/* A child wipes (on_wipe) and initialises everything again, without allocating. */
static int child_reinitialises(void *arg)
{
	(void)arg;
	unsigned wipes_before = wipes;

	count_start();
	void *out = NULL;
	bool ok = wof_once_lock_get(&lock) == NULL;                         /* on_wipe */
	ok &= wof_once_lock_get_or_init(&lock, make_value, NULL) != NULL;   /* init */
	ok &= wof_once_lock_get_or_try_init(&lock2, try_make, NULL, &out) == 0;
	ok &= wof_lazy_lock_force(&lazy_lock) != NULL;
	ok &= big() != NULL;
	ok &= wof_once_cell_get(&cell) == NULL;
	ok &= wof_once_cell_get_or_init(&cell, make_value, NULL) != NULL;
	ok &= wof_once_cell_set(&cell2, &values[5]) == 0;
	ok &= wof_lazy_cell_force(&lazy_cell) != NULL;
	ok &= use_fast_paths(100);
	unsigned long n = count_stop();
	TH_CHILD_CHECK(ok);
	TH_CHILD_CHECK(wipes == wipes_before + 7);
	TH_CHILD_CHECK(n == 0);
	return 0;
}

TH_FORK_TEST(alloc, child_wipe_and_reinit_allocate_nothing, .timeout = 30)
{
	cr_assert(use_everything());
	cr_assert_eq(wipes, 0);
	TH_ASSERT_CHILD(how, child_reinitialises, NULL);
}
