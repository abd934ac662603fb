/* SPDX-License-Identifier: MIT */
/*
 * What test-strict.c and test-strict.cpp share: a lazy global declared here, in a header as a
 * user would, defined in test-strict.c and used from both languages; and the C checks, which
 * the C++ program runs too (test-strict.c is linked into it without its main).
 */
#pragma once

#include <wof.h>

struct strict_counter {
	int value;
	unsigned inits;
};

WOF_LAZY_GLOBAL_DECLARE(struct strict_counter, strict_shared);

#ifdef __cplusplus
extern "C" {
#endif

/* test-strict.c's checks, all of them in C: 0, or the line of the first that failed. */
int strict_c_checks(void);

/* strict_shared() called from C, for the C++ program to compare with its own call. */
struct strict_counter *strict_shared_from_c(void);

#ifdef __cplusplus
}
#endif
