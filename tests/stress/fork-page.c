/* SPDX-License-Identifier: MIT */
/*
 * The fork page wherever the linker puts it. Built three ways (tests/meson.build): a PIE and a
 * non-PIE executable against the shared library -- the non-PIE one copy-relocates the page into
 * its own data, next to this file's globals -- and one linked with the archive. In each, the
 * page must fill whole pages (so marking it MADV_WIPEONFORK touches nothing else), every child
 * must see a once completed in the parent as incomplete (by every fork path the detection
 * covers), and ordinary data beside the page must survive each fork unchanged.
 *
 *   usage: fork-page        exit 0 passed, 1 failed
 */
#include "wof-test.h"

/* Ordinary data that a copy relocation may put right before or after the page. */
static volatile uint64_t before_page[64] = { 1, 2, 3 };
static wof_once_t once = WOF_ONCE_INIT;
static volatile uint64_t after_page[64] = { 4, 5, 6 };
static int runs;

static void count(void *arg)
{
	(void)arg;
	runs++;
}

static int child(void *arg)
{
	uint32_t parent = (uint32_t)(uintptr_t)arg;

	if (before_page[0] != 1 || before_page[2] != 3)
		return 10; /* data before the page was wiped */
	if (after_page[0] != 4 || after_page[2] != 6)
		return 11; /* data after the page was wiped */
	if (wof_once_is_completed(&once))
		return 12; /* the parent's once reads complete here */
	if (wof_generation() == parent)
		return 13;
	if (wof_once_call(&once, count, NULL) != 0 || runs != 2)
		return 14; /* fn did not run once here */
	return 0;
}

int main(void)
{
	uintptr_t page = (uintptr_t)&wof_internal_fork;
	long size = sysconf(_SC_PAGESIZE);
	int failed = 0;

	printf("fork page at %p (page size %ld), detection %u\n", (void *)page, size,
	       wof_fork_detection());
	if (size <= 0 || page % (uintptr_t)size != 0 || sizeof wof_internal_fork % (size_t)size) {
		printf("FAIL: the fork page does not fill whole pages\n");
		return 1;
	}
	wof_once_call(&once, count, NULL);
	for (int k = 0; k < TH_FORK_KINDS; k++) {
		if (!th_fork_detected((enum th_fork_kind)k))
			continue;
		int code = th_wait(th_spawn((enum th_fork_kind)k, child,
		                            (void *)(uintptr_t)wof_generation()),
		                   TH_DEADLINE_S);
		printf("%s child: %s\n", th_fork_names[k], code ? th_outcome(code) : "ok");
		failed |= code != 0;
	}
	if (runs != 1 || !wof_once_is_completed(&once)) {
		printf("FAIL: the parent's once changed\n");
		failed = 1;
	}
	return failed;
}
