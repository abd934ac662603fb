/* SPDX-License-Identifier: MIT */
/*
 * test-headers (C): every public header compiles as strict C11 and C17 (-pedantic-errors and
 * the strict warnings of tests/meson.build, as errors), each one on its own (built once per
 * header, named by WOF_TEST_FIRST_HEADER) and all together, and the once type works at file
 * scope. test-headers.cpp does the same for C++; test-strict.c expands every macro.
 */
#ifdef WOF_TEST_FIRST_HEADER
#include WOF_TEST_FIRST_HEADER
#endif
#include <wof/generation.h>
#include <wof/internal.h>
#include <wof/once.h>
#include <wof.h>

#include <stdalign.h>
#include <stdio.h>

_Static_assert(sizeof(wof_once_t) == 8, "wof_once_t is 8 bytes");
_Static_assert(alignof(wof_once_t) == 8, "wof_once_t is aligned to 8");

static wof_once_t file_once = WOF_ONCE_INIT;
extern wof_once_t exported_once; /* as a header would declare it */
wof_once_t exported_once = WOF_ONCE_INIT;
static int runs;

static void count_run(void *arg)
{
	++*(int *)arg;
}

int main(void)
{
	if (wof_once_call(&file_once, count_run, &runs) != 0 ||
	    wof_once_call(&exported_once, count_run, &runs) != 0 ||
	    wof_once_call(&file_once, count_run, &runs) != 0 || runs != 2 ||
	    wof_once_wait(&exported_once) != 0 || !wof_once_is_completed(&file_once) ||
	    wof_generation() == 0) {
		puts("FAIL: a call from C went wrong");
		return 1;
	}
	puts("C11: passed");
	return 0;
}
