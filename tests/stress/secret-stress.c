/* SPDX-License-Identifier: MIT */
/*
 * secret-stress: threads race on secret memory, as a plain program that ThreadSanitizer can run
 * (Criterion cannot). All threads make the first call of several WOF_LAZY_SECRETs at once: each
 * init runs once, and every thread gets the same pointer to the finished value. Then each
 * thread allocates blocks of mixed sizes (most small, some large), fills each with its own tag,
 * and frees them in a scrambled order, so that blocks freed by one thread are reallocated by
 * another: a new block must read zero, and a block must still hold its owner's tag when the
 * owner frees it (else two threads held it at once).
 *
 * Built twice: against libwof as configured (TSan builds instrument both), and, in plain
 * builds, as a TSan-instrumented program against the uninstrumented libwof, which only the
 * library's __tsan_acquire/__tsan_release annotations keep free of false reports.
 *
 *   usage: secret-stress THREADS ITERATIONS      exit 0 pass, 1 fail, 2 usage
 */
#include "wof-test.h"

#define MAX_THREADS 64
#define WINDOW 24 /* live blocks per thread */

struct value {
	uint64_t words[8];
};

static int inits[4];

#define LAZY(n)                                                                                   \
	static int make_##n(struct value *v)                                                      \
	{                                                                                         \
		__atomic_add_fetch(&inits[n], 1, __ATOMIC_RELAXED);                               \
		for (int i = 0; i < 8; i++) {                                                     \
			if (v->words[i] != 0)                                                     \
				return EILSEQ;                                                    \
			v->words[i] = (uint64_t)(n + 1) * 0x0101010101010101u;                    \
		}                                                                                 \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_SECRET(struct value, lazy##n, make_##n)

LAZY(0);
LAZY(1);
LAZY(2);
LAZY(3);

static struct value *(*const lazies[4])(void) = { lazy0, lazy1, lazy2, lazy3 };

struct worker {
	pthread_barrier_t *barrier;
	int id, iterations;
	struct value *got[4];
	long allocs, not_zero, clobbered, failed;
};

static size_t pick_size(unsigned *x)
{
	*x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5;
	return *x % 16 == 0 ? 2049 + *x % 20000 : 1 + *x % 2048;
}

/* Not th_all_bytes: the TSan consumer build instruments this file's reads, not tests/lib's. */
static bool holds(const unsigned char *p, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return false;
	return true;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char *live[WINDOW] = { 0 };
	size_t size[WINDOW] = { 0 };
	unsigned char tag = (unsigned char)(w->id + 1);
	unsigned x = 0x9e3779b9u * (unsigned)(w->id + 1);

	pthread_barrier_wait(w->barrier);
	for (int i = 0; i < 4; i++) /* every thread at once: one init each */
		w->got[(w->id + i) % 4] = lazies[(w->id + i) % 4]();

	for (int it = 0; it < w->iterations; it++) {
		int k = (int)(x % WINDOW);
		if (live[k]) {
			if (!holds(live[k], size[k], tag))
				w->clobbered++;
			wof_secret_free(live[k]);
		}
		size[k] = pick_size(&x);
		live[k] = wof_secret_alloc(size[k]);
		if (!live[k]) {
			w->failed++;
			continue;
		}
		w->allocs++;
		if (!holds(live[k], size[k], 0))
			w->not_zero++;
		memset(live[k], tag, size[k]);
		if (it % 64 == 0 && lazies[it % 4]() != w->got[it % 4])
			w->failed++;
	}
	for (int k = 0; k < WINDOW; k++) {
		if (live[k] && !holds(live[k], size[k], tag))
			w->clobbered++;
		wof_secret_free(live[k]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	pthread_t t[MAX_THREADS];
	pthread_barrier_t barrier;
	long allocs = 0, not_zero = 0, clobbered = 0, failed = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s THREADS ITERATIONS\n", argv[0]);
		return 2;
	}
	int n = th_arg_count(argv[1], MAX_THREADS), iterations = th_arg_count(argv[2], 100000000);

	pthread_barrier_init(&barrier, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		w[i] = (struct worker){ .barrier = &barrier, .id = i, .iterations = iterations };
		th_start(&t[i], work, &w[i]);
	}
	for (int i = 0; i < n; i++)
		TH_CHECK(th_join(t[i], NULL, 120.0) == 0, "thread %d hung", i);
	for (int i = 0; i < n; i++) {
		allocs += w[i].allocs;
		not_zero += w[i].not_zero;
		clobbered += w[i].clobbered;
		failed += w[i].failed;
		for (int j = 0; j < 4; j++) {
			TH_CHECK(w[i].got[j] != NULL, "thread %d: lazy secret %d is NULL", i, j);
			TH_CHECK(w[i].got[j] == w[0].got[j], "lazy secret %d: two values", j);
			TH_CHECK(w[i].got[j]->words[7] == (uint64_t)(j + 1) * 0x0101010101010101u,
			         "lazy secret %d: thread %d saw an unfinished value", j, i);
		}
	}
	for (int j = 0; j < 4; j++)
		TH_CHECK(inits[j] == 1, "lazy secret %d: init ran %d times", j, inits[j]);
	printf("secret-stress: %d threads, %ld allocs, not zero %ld, clobbered %ld, failed %ld\n", n,
	       allocs, not_zero, clobbered, failed);
	TH_CHECK(not_zero == 0 && clobbered == 0 && failed == 0, "the allocator misbehaved");
	pthread_barrier_destroy(&barrier);
	return 0;
}
