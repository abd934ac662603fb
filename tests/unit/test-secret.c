/* SPDX-License-Identifier: MIT */
/*
 * test-secret: secret memory keeps its contract. wof_secret_alloc() hands out zero-filled,
 * aligned, distinct blocks of every size, refuses size 0 (EINVAL) and sizes whose page rounding
 * overflows (ENOMEM), and wof_secret_free() zeroes a block before it is reused. In a child made
 * by fork(), _Fork(), SYS_fork or clone() the bytes of every secret block -- small classes, a
 * large block, a WOF_LAZY_SECRET's value -- read as zero before the child makes any wof call,
 * while the parent's stay intact, ordinary data beside them survives, and blocks allocated at
 * fork stay allocated (never handed out again) in the child. /proc/self/smaps shows the pages
 * wiped on fork (wf) and left out of core dumps (dd). WOF_LAZY_SECRET inits once per process,
 * on a zeroed slot, retries a failed init, answers EDEADLK on re-entry and ENOMEM without
 * memory, and inits again in a child. Misuse (a foreign pointer, a pointer inside a block, a
 * double free) aborts a debug build and is EINVAL under NDEBUG. wof_wipe_all() makes every kind
 * of object initialise again, zeroes secret bytes and runs on_wipe once per object.
 *
 * Children never assert: they _exit with a code naming the failed check (0 = passed).
 */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>

#include "wof-test.h"

TestSuite(secret, .timeout = 30);
TestSuite(secret_fork, .timeout = 60);
TestSuite(lazy_secret, .timeout = 30);
TestSuite(secret_misuse, .timeout = 30);
TestSuite(wipe_all, .timeout = 30);

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static bool aligned(const void *p, size_t alignment)
{
	return (uintptr_t)p % alignment == 0;
}

/* ---------------------------------------------------------------------------------------
 * Allocation basics
 */

static const size_t sizes[] = { 1,    2,    7,    15,   16,    17,    31,    32,    33,
	                        63,   64,   100,  127,  128,   129,   255,   256,   500,
	                        512,  777,  1000, 1024, 1500,  2047,  2048,  2049,  3000,
	                        4095, 4096, 4097, 8191, 10000, 65536, 100000, 1 << 20 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

Test(secret, blocks_of_every_size_are_zero_filled_aligned_distinct_and_writable)
{
	unsigned char *p[NSIZES];

	for (size_t i = 0; i < NSIZES; i++) {
		errno = TH_SKIP;
		p[i] = wof_secret_alloc(sizes[i]);
		cr_assert_not_null(p[i], "size %zu: errno %d", sizes[i], errno);
		cr_assert_eq(errno, TH_SKIP, "size %zu: errno changed on success", sizes[i]);
		cr_assert(aligned(p[i], alignof(max_align_t)), "size %zu at %p", sizes[i],
		          (void *)p[i]);
		if (sizes[i] > 2048)
			cr_assert(aligned(p[i], page()), "large block %zu not page-aligned",
			          sizes[i]);
		cr_assert(th_all_bytes(p[i], sizes[i], 0), "size %zu is not zero-filled", sizes[i]);
		memset(p[i], (int)(i + 1), sizes[i]);
	}
	/* No two blocks overlap: each still holds its own fill. */
	for (size_t i = 0; i < NSIZES; i++) {
		cr_assert(th_all_bytes(p[i], sizes[i], (unsigned char)(i + 1)),
		          "block of size %zu was overwritten by another", sizes[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert(p[i] + sizes[i] <= p[j] || p[j] + sizes[j] <= p[i],
			          "blocks of %zu and %zu overlap", sizes[i], sizes[j]);
	}
	for (size_t i = 0; i < NSIZES; i++)
		wof_secret_free(p[i]);
}

Test(secret, size_zero_is_einval)
{
	errno = 0;
	cr_assert_null(wof_secret_alloc(0));
	cr_assert_eq(errno, EINVAL);
}

Test(secret, sizes_whose_page_rounding_overflows_are_enomem)
{
	const size_t huge[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - page() + 2, SIZE_MAX / 2 + 1 };

	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		errno = 0;
		cr_assert_null(wof_secret_alloc(huge[i]), "size %zu", huge[i]);
		cr_assert_eq(errno, ENOMEM, "size %zu: errno %d", huge[i], errno);
	}
	/* And the allocator still works. */
	void *p = wof_secret_alloc(64);
	cr_assert_not_null(p);
	wof_secret_free(p);
}

Test(secret, free_of_null_is_a_no_op)
{
	errno = TH_SKIP;
	wof_secret_free(NULL);
	cr_assert_eq(errno, TH_SKIP);
}

Test(secret, free_zeroes_the_bytes_and_the_block_is_reused_zeroed)
{
	for (size_t i = 0; i < NSIZES; i++) {
		unsigned char *keep = wof_secret_alloc(sizes[i]); /* a neighbour that stays */
		unsigned char *p = wof_secret_alloc(sizes[i]);

		cr_assert_not_null(keep);
		cr_assert_not_null(p);
		memset(keep, 0x11, sizes[i]);
		memset(p, 0xEE, sizes[i]);
		errno = TH_SKIP;
		wof_secret_free(p);
		cr_assert_eq(errno, TH_SKIP, "size %zu: free changed errno", sizes[i]);
		/* The range stays mapped: reading it shows what free left behind. */
		cr_assert(th_all_bytes(p, sizes[i], 0), "size %zu: freed bytes not zeroed", sizes[i]);
		cr_assert(th_all_bytes(keep, sizes[i], 0x11), "size %zu: free touched a neighbour",
		          sizes[i]);
		unsigned char *again = wof_secret_alloc(sizes[i]);
		cr_assert_eq(again, p, "size %zu: the freed block was not reused", sizes[i]);
		cr_assert(th_all_bytes(again, sizes[i], 0));
		wof_secret_free(again);
		wof_secret_free(keep);
	}
}

/* Thousands of small blocks fill several regions of one class; all distinct, all reusable. */
Test(secret, many_blocks_span_regions_and_come_back)
{
	enum { N = 5000 };
	static unsigned char *p[N];

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			p[i] = wof_secret_alloc(16 + (size_t)(i % 3) * 8); /* classes 16 and 32 */
			cr_assert_not_null(p[i]);
			cr_assert(th_all_bytes(p[i], 16, 0));
			memcpy(p[i], &i, sizeof i);
		}
		for (int i = 0; i < N; i++)
			cr_assert_eq(memcmp(p[i], &i, sizeof i), 0, "block %d shared", i);
		for (int i = 0; i < N; i++)
			wof_secret_free(p[i]);
	}
}

/* ---------------------------------------------------------------------------------------
 * Where the pages are, and what the kernel is told
 */

/* The VmFlags of the mapping that holds p, from /proc/self/smaps: " rd wr ... \n", each flag
 * between spaces; "" if not found. The next call overwrites it. */
static const char *vm_flags(const void *p)
{
	static char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool inside = false, found = false;

	while (f && !found && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else
			found = inside && strncmp(line, "VmFlags:", 8) == 0;
	}
	if (f)
		fclose(f);
	return found ? line + 8 : "";
}

static bool has_flag(const char *flags, const char *flag)
{
	char word[8];

	snprintf(word, sizeof word, " %s ", flag);
	return strstr(flags, word) != NULL;
}

Test(secret, smaps_shows_secret_pages_wiped_on_fork_and_not_dumped)
{
	void *blocks[] = { wof_secret_alloc(16), wof_secret_alloc(2048), wof_secret_alloc(5000) };
	void *heap = malloc(64);
	static int ordinary;
	const char *flags;

	bool wipes = wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK;

	if (access("/proc/self/smaps", R_OK) != 0)
		cr_skip_test("no /proc/self/smaps");
	for (size_t i = 0; i < 3; i++) {
		cr_assert_not_null(blocks[i]);
		flags = vm_flags(blocks[i]);
		cr_assert(has_flag(flags, "dd"), "block %zu: VmFlags%s lacks dd", i, flags);
		cr_assert(!wipes || has_flag(flags, "wf"), "block %zu: VmFlags%s lacks wf", i,
		          flags);
	}
	/* The test can tell: ordinary memory carries neither. */
	flags = vm_flags(heap);
	cr_assert(*flags && !has_flag(flags, "wf"), "the heap is wiped on fork?%s", flags);
	flags = vm_flags(&ordinary);
	cr_assert(*flags && !has_flag(flags, "wf"), "static data is wiped on fork?%s", flags);
	free(heap);
	for (size_t i = 0; i < 3; i++)
		wof_secret_free(blocks[i]);
	if (!wipes)
		cr_skip_test("dd checked; wf not: MADV_WIPEONFORK is not in effect here "
		             "(wof_fork_detection() = %u)", wof_fork_detection());
}

/* ---------------------------------------------------------------------------------------
 * Fork: secret bytes are zero in every child before it runs any code; nothing else changes
 */

struct key {
	unsigned char bytes[48];
};

static int key_inits; /* ordinary memory: a child inherits the count */
static int before_key = 0x5eed; /* ordinary statics defined around a lazy secret */

static int make_key(struct key *k)
{
	key_inits++;
	if (!th_all_bytes(k, sizeof *k, 0))
		return EILSEQ; /* init must get a zeroed slot */
	memset(k, 0xA0 + (key_inits & 0xF), sizeof *k);
	return 0;
}

WOF_LAZY_SECRET(struct key, session_key, make_key);
static int after_key = 0xfeed;

/* Block sizes: three small classes, a large block, and another large one of several pages. */
static const size_t fork_sizes[] = { 16, 100, 2048, 3000, 40000 };
#define NFORK (sizeof fork_sizes / sizeof fork_sizes[0])

struct fork_scene {
	unsigned char *block[NFORK];
	struct key *key;         /* the lazy secret's value, as the parent's accessor returned it */
	int *heap_before, *heap_after;
	unsigned char *taken[64]; /* more blocks allocated at fork, for the ownership check */
};

static void scene_setup(struct fork_scene *s)
{
	s->heap_before = malloc(sizeof(int));
	cr_assert_not_null(s->heap_before);
	*s->heap_before = 1234;
	for (size_t i = 0; i < NFORK; i++) {
		s->block[i] = wof_secret_alloc(fork_sizes[i]);
		cr_assert_not_null(s->block[i]);
		memset(s->block[i], 0xC0 + (int)i, fork_sizes[i]);
	}
	s->key = session_key();
	cr_assert_not_null(s->key);
	cr_assert_eq(key_inits, 1);
	for (size_t i = 0; i < 64; i++) {
		s->taken[i] = wof_secret_alloc(i % 2 ? 48 : 16);
		cr_assert_not_null(s->taken[i]);
		memset(s->taken[i], 0x77, 16);
	}
	s->heap_after = malloc(sizeof(int));
	cr_assert_not_null(s->heap_after);
	*s->heap_after = 5678;
}

static void scene_check_parent(struct fork_scene *s)
{
	for (size_t i = 0; i < NFORK; i++)
		cr_assert(th_all_bytes(s->block[i], fork_sizes[i], (unsigned char)(0xC0 + i)),
		          "the parent's block of %zu bytes changed", fork_sizes[i]);
	cr_assert(th_all_bytes(s->key, sizeof *s->key, 0xA1), "the parent's key changed");
	cr_assert_eq(session_key(), s->key);
	cr_assert_eq(key_inits, 1, "the parent's key was made again");
	for (size_t i = 0; i < 64; i++)
		cr_assert(th_all_bytes(s->taken[i], 16, 0x77));
	cr_assert_eq(*s->heap_before + *s->heap_after + before_key + after_key,
	             1234 + 5678 + 0x5eed + 0xfeed);
}

/*
 * The child: raw reads first, before any wof call (the wipe must not wait for one); then
 * ordinary data; then wof calls: the lazy secret inits again at the same address, blocks
 * allocated at fork stay allocated (new blocks are never theirs) and can be freed here.
 * Async-signal-safe throughout (the parent has Criterion's threads).
 */
static int scene_child(void *arg)
{
	struct fork_scene *s = arg;

	for (size_t i = 0; i < NFORK; i++)
		TH_CHILD_CHECK(th_all_bytes(s->block[i], fork_sizes[i], 0));
	TH_CHILD_CHECK(th_all_bytes(s->key, sizeof *s->key, 0));
	for (size_t i = 0; i < 64; i++)
		TH_CHILD_CHECK(th_all_bytes(s->taken[i], 16, 0));
	TH_CHILD_CHECK(*s->heap_before == 1234 && *s->heap_after == 5678);
	TH_CHILD_CHECK(before_key == 0x5eed && after_key == 0xfeed);
	TH_CHILD_CHECK(key_inits == 1);

	/* Now wof: the key is made again, in its zeroed slot at the same address. */
	struct key *k = session_key();
	TH_CHILD_CHECK(k == s->key);
	TH_CHILD_CHECK(key_inits == 2);
	TH_CHILD_CHECK(th_all_bytes(k, sizeof *k, 0xA2));
	TH_CHILD_CHECK(session_key() == k && key_inits == 2);
	/* Blocks that were allocated at fork are still allocated here. */
	for (int i = 0; i < 200; i++) {
		unsigned char *p = wof_secret_alloc(i % 2 ? 48 : 16);
		TH_CHILD_CHECK(p != NULL);
		for (size_t j = 0; j < 64; j++)
			TH_CHILD_CHECK(p != s->taken[j]);
		for (size_t j = 0; j < NFORK; j++)
			TH_CHILD_CHECK(p != s->block[j]);
		/* The lazy secret's block is in the 64-byte class too. */
		TH_CHILD_CHECK(!((unsigned char *)s->key >= p && (unsigned char *)s->key < p + 64));
	}
	for (size_t i = 0; i < NFORK; i++) {
		void *p = wof_secret_alloc(fork_sizes[i]);
		for (size_t j = 0; j < NFORK; j++)
			TH_CHILD_CHECK(p != s->block[j]);
	}
	/* The child may use, and free, what its parent allocated. */
	for (size_t i = 0; i < NFORK; i++) {
		memset(s->block[i], 0x42, fork_sizes[i]);
		wof_secret_free(s->block[i]);
		TH_CHILD_CHECK(th_all_bytes(s->block[i], fork_sizes[i], 0));
	}
	return 0;
}

static void child_reads_zero(enum th_fork_kind kind)
{
	struct fork_scene s;

	if (!th_fork_detected(kind))
		cr_skip_test("%s children see zeroed secrets only with MADV_WIPEONFORK",
		             th_fork_names[kind]);
	scene_setup(&s);
	TH_ASSERT_CHILD(kind, scene_child, &s);
	scene_check_parent(&s);
	free(s.heap_before);
	free(s.heap_after);
}

Test(secret_fork, child_of_fork_reads_zero) { child_reads_zero(TH_FORK); }
Test(secret_fork, child_of__Fork_reads_zero) { child_reads_zero(TH_UFORK); }
Test(secret_fork, child_of_SYS_fork_reads_zero) { child_reads_zero(TH_SYS_FORK); }
Test(secret_fork, child_of_clone_reads_zero) { child_reads_zero(TH_CLONE); }

/*
 * Fork while other threads allocate and free: whatever instant the fork hits, the child finds
 * consistent bookkeeping -- it allocates, frees and allocates again without a block handed out
 * twice or a hang -- and reads zeros in every block the threads held.
 */
#define CHURNERS 2
#define CHURN_LIVE 32

struct churn {
	unsigned char *live[CHURNERS][CHURN_LIVE]; /* atomic: each thread's blocks */
	int stop;
	int threads; /* atomic: each thread's id is how many started before it */
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	int id = __atomic_fetch_add(&c->threads, 1, __ATOMIC_RELAXED);
	unsigned x = 2463534242u + (unsigned)id;

	while (!th_get(&c->stop)) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		unsigned char **slot = &c->live[id][x % CHURN_LIVE];
		unsigned char *old = __atomic_exchange_n(slot, NULL, __ATOMIC_ACQ_REL);
		wof_secret_free(old);
		size_t size = x % 7 == 0 ? 3000 + x % 5000 : 1 + x % 2048;
		unsigned char *p = wof_secret_alloc(size);
		if (p) {
			memset(p, 0x99, size < 16 ? size : 16);
			__atomic_store_n(slot, p, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static int churn_child(void *arg)
{
	struct churn *c = arg;
	unsigned char *mine[256];

	/* Every block a thread held reads zero (those being written too: the whole page is). */
	for (int t = 0; t < CHURNERS; t++)
		for (int i = 0; i < CHURN_LIVE; i++) {
			unsigned char *p = __atomic_load_n(&c->live[t][i], __ATOMIC_RELAXED);
			TH_CHILD_CHECK(!p || th_all_bytes(p, 16, 0));
		}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 256; i++) {
			mine[i] = wof_secret_alloc(1 + (size_t)(i * 37) % 4000);
			TH_CHILD_CHECK(mine[i] != NULL);
			for (int t = 0; t < CHURNERS; t++)
				for (int j = 0; j < CHURN_LIVE; j++)
					TH_CHILD_CHECK(mine[i] != __atomic_load_n(&c->live[t][j],
					                                          __ATOMIC_RELAXED));
			for (int j = 0; j < i; j++)
				TH_CHILD_CHECK(mine[j] != mine[i]);
			memset(mine[i], 0x55, 1);
		}
		for (int i = 0; i < 256; i++)
			wof_secret_free(mine[i]);
	}
	return 0;
}

static void fork_during_churn(enum th_fork_kind kind)
{
	static struct churn c;
	pthread_t t[CHURNERS];

	if (!th_fork_detected(kind))
		cr_skip_test("%s children see zeroed secrets only with MADV_WIPEONFORK",
		             th_fork_names[kind]);
	for (int i = 0; i < CHURNERS; i++)
		th_start(&t[i], churn_thread, &c);
	for (int n = 0; n < 40; n++) {
		th_nap(500);
		cr_assert_eq(th_in_child(kind, churn_child, &c), 0, "#%d: %s", n, th_why);
	}
	th_set(&c.stop, 1);
	for (int i = 0; i < CHURNERS; i++)
		cr_assert_eq(th_join(t[i], NULL, TH_DEADLINE_S), 0);
}

Test(secret_fork, fork_amid_churn) { fork_during_churn(TH_FORK); }
Test(secret_fork, _Fork_amid_churn) { fork_during_churn(TH_UFORK); }
Test(secret_fork, SYS_fork_amid_churn) { fork_during_churn(TH_SYS_FORK); }
Test(secret_fork, clone_amid_churn) { fork_during_churn(TH_CLONE); }

/* ---------------------------------------------------------------------------------------
 * WOF_LAZY_SECRET
 */

struct token {
	uint64_t words[4];
};

static int token_inits, token_dirty;

static int make_token(struct token *t)
{
	__atomic_add_fetch(&token_inits, 1, __ATOMIC_RELAXED);
	if (!th_all_bytes(t, sizeof *t, 0))
		token_dirty++;
	th_nap(2000); /* long enough that racing threads find it running */
	for (int i = 0; i < 4; i++)
		t->words[i] = 0x1111111111111111u * (uint64_t)(i + 1);
	return 0;
}

WOF_LAZY_SECRET(struct token, token, make_token);

struct racer {
	pthread_barrier_t *barrier;
	struct token *got;
	bool whole;
};

static void *race_token(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->barrier);
	r->got = token();
	r->whole = r->got && r->got->words[3] == 0x4444444444444444u;
	return NULL;
}

Test(lazy_secret, racing_threads_run_one_init_and_share_one_value)
{
	enum { N = 8 };
	pthread_barrier_t barrier;
	struct racer r[N];
	pthread_t t[N];

	pthread_barrier_init(&barrier, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){ .barrier = &barrier };
		th_start(&t[i], race_token, &r[i]);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(th_join(t[i], NULL, TH_DEADLINE_S), 0);
	cr_assert_eq(token_inits, 1, "init ran %d times", token_inits);
	cr_assert_eq(token_dirty, 0, "init got a slot that was not zero");
	for (int i = 0; i < N; i++) {
		cr_assert_not_null(r[i].got);
		cr_assert_eq(r[i].got, r[0].got, "two threads got two values");
		cr_assert(r[i].whole, "a thread saw the value before init finished");
	}
	errno = TH_SKIP;
	cr_assert_eq(token(), r[0].got);
	cr_assert_eq(errno, TH_SKIP);
	cr_assert_eq(token_inits, 1);
	pthread_barrier_destroy(&barrier);
}

/* A failing init: NULL with init's errno, retried on the next call, on a zeroed slot. */
static int flaky_inits, flaky_dirty, flaky_failures = 2;

static int make_flaky(uint64_t *v)
{
	flaky_inits++;
	if (*v != 0)
		flaky_dirty++;
	*v = 0xdeadbeef; /* scribble, then maybe fail */
	if (flaky_failures-- > 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

WOF_LAZY_SECRET(uint64_t, flaky, make_flaky);

Test(lazy_secret, failed_init_is_null_with_its_errno_and_retried_on_a_zeroed_slot)
{
	errno = 0;
	cr_assert_null(flaky());
	cr_assert_eq(errno, EIO);
	cr_assert_null(flaky());
	cr_assert_eq(errno, EIO);
	uint64_t *v = flaky();
	cr_assert_not_null(v);
	cr_assert_eq(*v, 0xdeadbeef);
	cr_assert_eq(flaky_inits, 3);
	cr_assert_eq(flaky_dirty, 0, "a retry got the failed init's bytes");
	cr_assert_eq(flaky(), v);
	cr_assert_eq(flaky_inits, 3);
}

/* Re-entry: the accessor called from inside its own init. */
static int reentry_errno;
static int *reentry_inner = (int *)1;
static int nested_init(int *v);
WOF_LAZY_SECRET(int, nested, nested_init);

static int nested_init(int *v)
{
	errno = 0;
	reentry_inner = nested();
	reentry_errno = errno;
	*v = 5;
	return 0;
}

Test(lazy_secret, reentry_is_null_with_edeadlk)
{
	int *v = nested();

	cr_assert_null(reentry_inner, "the inner call returned a value");
	cr_assert_eq(reentry_errno, EDEADLK);
	cr_assert_not_null(v);
	cr_assert_eq(*v, 5);
}

/* Several in one file are independent, and the value sits where secret memory does. */
static int make_small(int *v)
{
	*v = 9;
	return 0;
}
WOF_LAZY_SECRET(int, small_a, make_small);
WOF_LAZY_SECRET(int, small_b, make_small);

Test(lazy_secret, several_in_one_file_are_independent_secret_blocks)
{
	int *a = small_a(), *b = small_b();

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_neq(a, b);
	cr_assert_eq(*a + *b, 18);
	*a = 1;
	cr_assert_eq(*b, 9);
	const char *flags = vm_flags(a);
	if ((wof_fork_detection() & WOF_FORK_DETECT_WIPEONFORK) && *flags)
		cr_assert(has_flag(flags, "wf") && has_flag(flags, "dd"), "VmFlags%s", flags);
}

/*
 * No secret memory to be had: the address space is capped at what is mapped now, so a lazy
 * secret of a size class never used in this process cannot map its region. Run in a fork()
 * child, whose exit code reports.
 */
struct roomy {
	unsigned char bytes[1500]; /* the 2048 class: no region of it exists yet */
};

static int roomy_inits;
static int make_roomy(struct roomy *r)
{
	roomy_inits++;
	r->bytes[0] = 1;
	return 0;
}
WOF_LAZY_SECRET(struct roomy, roomy, make_roomy);

static int no_memory_child(void *arg)
{
	struct rlimit cap;
	unsigned long pages;
	FILE *f = fopen("/proc/self/statm", "r");

	(void)arg;
	if (!f || fscanf(f, "%lu", &pages) != 1)
		return TH_SKIP;
	fclose(f);
	cap.rlim_cur = cap.rlim_max = (rlim_t)pages * page();
	if (setrlimit(RLIMIT_AS, &cap) != 0)
		return TH_SKIP;
	errno = 0;
	TH_CHILD_CHECK(roomy() == NULL);
	TH_CHILD_CHECK(errno == ENOMEM);
	TH_CHILD_CHECK(roomy_inits == 0);
	errno = 0;
	TH_CHILD_CHECK(wof_secret_alloc(1 << 20) == NULL && errno == ENOMEM);
	return 0;
}

Test(lazy_secret, no_secret_memory_is_null_with_enomem)
{
	(void)wof_fork_detection(); /* fork detection set up before the cap */
	int code = th_wait(th_spawn(TH_FORK, no_memory_child, NULL), TH_DEADLINE_S);

	if (code == TH_SKIP)
		cr_skip_test("cannot cap the address space here");
	cr_assert_eq(code, 0, "child: %s", th_outcome(code));
	cr_assert_not_null(roomy(), "and with memory it works");
}

/* A child makes its own value, whatever the parent did, and its grandchild does too. */
static int nonce_inits;
static int make_nonce(uint64_t *n)
{
	nonce_inits++;
	*n = ((uint64_t)getpid() << 16) | (uint64_t)nonce_inits;
	return 0;
}
WOF_LAZY_SECRET(uint64_t, nonce, make_nonce);

struct nonce_scene {
	uint64_t *value;
	enum th_fork_kind kind;
};

/* A grandchild, made the same way: the child's value is gone there too. */
static int nonce_grandchild(void *arg)
{
	uint64_t *mine = arg;

	TH_CHILD_CHECK(*mine == 0);
	uint64_t *g = nonce();
	TH_CHILD_CHECK(g == mine && *g == (((uint64_t)getpid() << 16) | 3u));
	return 0;
}

static int nonce_child(void *arg)
{
	struct nonce_scene *s = arg;

	TH_CHILD_CHECK(*s->value == 0);
	uint64_t *mine = nonce();
	TH_CHILD_CHECK(mine == s->value);
	TH_CHILD_CHECK(*mine == (((uint64_t)getpid() << 16) | 2u) && nonce_inits == 2);
	TH_CHILD_CHECK(th_in_child(s->kind, nonce_grandchild, mine) == 0);
	return 0;
}

static void nonce_in_child(enum th_fork_kind kind)
{
	if (!th_fork_detected(kind))
		cr_skip_test("%s children see zeroed secrets only with MADV_WIPEONFORK",
		             th_fork_names[kind]);
	uint64_t *v = nonce();
	cr_assert_not_null(v);
	uint64_t before = *v;
	struct nonce_scene s = { v, kind };
	TH_ASSERT_CHILD(kind, nonce_child, &s);
	cr_assert_eq(*v, before);
	cr_assert_eq(nonce_inits, 1);
}

/* WOF_LAZY_PEEK: NULL until made in this process, never runs init, NULL again in a child. */
static int peek_child(void *arg)
{
	(void)arg;
	return WOF_LAZY_PEEK(token) == NULL ? 0 : 1;
}

Test(lazy_secret, peek_sees_only_this_process_value, .timeout = 30)
{
	cr_assert_null(WOF_LAZY_PEEK(token));
	cr_assert_eq(token_inits, 0, "peek ran init");
	struct token *t = token();
	cr_assert_not_null(t);
	cr_assert_eq(WOF_LAZY_PEEK(token), t);
	TH_ASSERT_CHILD(TH_FORK, peek_child, NULL);
	cr_assert_eq(token_inits, 1);
}

Test(lazy_secret, child_of_fork_inits_again) { nonce_in_child(TH_FORK); }
Test(lazy_secret, child_of__Fork_inits_again) { nonce_in_child(TH_UFORK); }
Test(lazy_secret, child_of_SYS_fork_inits_again) { nonce_in_child(TH_SYS_FORK); }
Test(lazy_secret, child_of_clone_inits_again) { nonce_in_child(TH_CLONE); }

/* An init that forks: the value is made in the parent; the child, whose copy of the block the
 * kernel wiped mid-init, makes its own on its next call. */
static enum th_fork_kind forking_kind;
static pid_t forked_pid = -1;
static int forking_inits;

static int forking_init(uint64_t *v)
{
	forking_inits++;
	*v = 0x1111;
	if (forking_inits == 1) /* the child's own init does not fork again */
		forked_pid = th_fork(forking_kind);
	*v |= 0x2200; /* in both processes, after the fork */
	return 0;
}

WOF_LAZY_SECRET(uint64_t, forking, forking_init);

static void init_that_forks(enum th_fork_kind kind)
{
	if (!th_fork_detected(kind))
		cr_skip_test("%s children see zeroed secrets only with MADV_WIPEONFORK",
		             th_fork_names[kind]);
	forking_kind = kind;
	uint64_t *v = forking();
	if (forked_pid == 0) {
		/* The child: the bytes made before the fork are gone, the once is not complete
		 * here, and the next call makes a value of the child's own. */
		if (v == NULL || *v != 0x2200)
			_exit(1);
		uint64_t *again = forking();
		_exit(again == v && *again == 0x3311 && forking_inits == 2 ? 0 : 2);
	}
	int code = th_wait(forked_pid, TH_DEADLINE_S);
	cr_assert_eq(code, 0, "%s child: %s (1: the parent's bytes, 2: not made again)",
	             th_fork_names[kind], th_outcome(code));
	cr_assert_not_null(v);
	cr_assert_eq(*v, 0x3311);
	cr_assert_eq(forking(), v);
	cr_assert_eq(forking_inits, 1);
}

Test(lazy_secret, init_that_forks) { init_that_forks(TH_FORK); }
Test(lazy_secret, init_that__Forks) { init_that_forks(TH_UFORK); }

/* ---------------------------------------------------------------------------------------
 * Misuse
 */

#ifndef NDEBUG
Test(secret_misuse, freeing_a_foreign_pointer_aborts_debug_builds, .signal = SIGABRT)
{
	int on_stack;

	(void)wof_secret_alloc(16); /* so that regions exist and are searched */
	wof_secret_free(&on_stack);
}

Test(secret_misuse, freeing_a_heap_pointer_aborts_debug_builds, .signal = SIGABRT)
{
	wof_secret_free(malloc(16));
}

Test(secret_misuse, freeing_inside_a_block_aborts_debug_builds, .signal = SIGABRT)
{
	unsigned char *p = wof_secret_alloc(64);

	wof_secret_free(p + 16);
}

Test(secret_misuse, double_free_aborts_debug_builds, .signal = SIGABRT)
{
	void *p = wof_secret_alloc(32);

	wof_secret_free(p);
	wof_secret_free(p);
}

Test(secret_misuse, double_free_of_a_large_block_aborts_debug_builds, .signal = SIGABRT)
{
	void *p = wof_secret_alloc(50000);

	wof_secret_free(p);
	wof_secret_free(p);
}
#else
Test(secret_misuse, foreign_inner_and_double_frees_are_einval_under_ndebug)
{
	int on_stack = 7;
	void *heap = malloc(16);
	unsigned char *p = wof_secret_alloc(64);
	unsigned char *large = wof_secret_alloc(50000);

	cr_assert_not_null(p);
	memset(p, 0x3C, 64);
	errno = 0;
	wof_secret_free(&on_stack);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(on_stack, 7);
	errno = 0;
	wof_secret_free(heap);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	wof_secret_free(p + 16);
	cr_assert_eq(errno, EINVAL);
	cr_assert(th_all_bytes(p, 64, 0x3C), "a refused free zeroed the block");
	/* The block is still allocated: a new one is elsewhere. */
	unsigned char *q = wof_secret_alloc(64);
	cr_assert_neq(q, p);
	errno = 0;
	wof_secret_free(p);
	cr_assert_eq(errno, 0);
	wof_secret_free(p);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	wof_secret_free(large);
	wof_secret_free(large);
	cr_assert_eq(errno, EINVAL);
	free(heap);
}
#endif

/* ---------------------------------------------------------------------------------------
 * wof_wipe_all(): the process becomes new, as if forked
 */

static int wa_once_runs, wa_lock_wipes, wa_lock_inits, wa_static_inits;
static void *wa_lock_stale;
static int wa_lock_value;

static void wa_lock_on_wipe(void *stale)
{
	wa_lock_wipes++;
	wa_lock_stale = stale;
}

static void *wa_lock_init(void *arg)
{
	(void)arg;
	wa_lock_inits++;
	return &wa_lock_value;
}

static int wa_static_init(int *v)
{
	*v = ++wa_static_inits;
	return 0;
}

static wof_once_t wa_once = WOF_ONCE_INIT;
static wof_once_lock_t wa_lock = WOF_ONCE_LOCK_INIT_ON_WIPE(wa_lock_on_wipe);
WOF_LAZY_STATIC(int, wa_static, wa_static_init);
WOF_LAZY_SECRET(struct key, wa_secret, make_key);

Test(wipe_all, every_object_initialises_again_and_secret_bytes_are_zero)
{
	cr_assert_eq(wof_once_call(&wa_once, th_count_run, &wa_once_runs), 0);
	cr_assert_eq(wof_once_lock_get_or_init(&wa_lock, wa_lock_init, NULL), &wa_lock_value);
	int *st = wa_static();
	cr_assert_not_null(st);
	cr_assert_eq(*st, 1);
	struct key *k = wa_secret();
	cr_assert_not_null(k);
	cr_assert(th_all_bytes(k, sizeof *k, 0xA1));
	unsigned char *small = wof_secret_alloc(200), *large = wof_secret_alloc(9000);
	cr_assert_not_null(small);
	cr_assert_not_null(large);
	memset(small, 0xAB, 200);
	memset(large, 0xCD, 9000);
	uint32_t gen = wof_generation();

	wof_wipe_all();

	/* Raw bytes first: zero, before any accessor runs. */
	cr_assert(th_all_bytes(small, 200, 0), "a small secret block survived wof_wipe_all");
	cr_assert(th_all_bytes(large, 9000, 0), "a large secret block survived wof_wipe_all");
	cr_assert(th_all_bytes(k, sizeof *k, 0), "the lazy secret survived wof_wipe_all");
	cr_assert_neq(wof_generation(), gen);
	cr_assert_gt((int32_t)(wof_generation() - gen), 0, "the new generation is not newer");

	/* Every object initialises again, once; on_wipe runs once, with the old value. */
	cr_assert_not(wof_once_is_completed(&wa_once));
	cr_assert_null(wof_once_lock_get(&wa_lock));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(wof_once_call(&wa_once, th_count_run, &wa_once_runs), 0);
		cr_assert_eq(wof_once_lock_get_or_init(&wa_lock, wa_lock_init, NULL),
		             &wa_lock_value);
		cr_assert_eq(wa_static(), st);
		cr_assert_eq(wa_secret(), k);
	}
	cr_assert_eq(wa_once_runs, 2);
	cr_assert_eq(wa_lock_inits, 2);
	cr_assert_eq(wa_lock_wipes, 1, "on_wipe ran %d times", wa_lock_wipes);
	cr_assert_eq(wa_lock_stale, &wa_lock_value);
	cr_assert_eq(*st, 2);
	cr_assert_eq(wa_static_inits, 2);
	cr_assert_eq(key_inits, 2);
	cr_assert(th_all_bytes(k, sizeof *k, 0xA2), "the lazy secret was not made again");

	/* The blocks stay allocated: new ones are elsewhere; they can be freed. */
	for (int i = 0; i < 100; i++) {
		void *p = wof_secret_alloc(200);
		cr_assert(p != small && p != (void *)k);
	}
	wof_secret_free(small);
	wof_secret_free(large);
}
