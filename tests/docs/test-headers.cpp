// SPDX-License-Identifier: MIT
// test-headers: every public header compiles as C++ (built as C++11 and newer, with
// -pedantic-errors and the strict warnings of tests/meson.build, as errors), each one on its own
// (built once per header, named by WOF_TEST_FIRST_HEADER) and all together; the once type is
// usable at namespace scope without a constructor, and calls link and run. test-headers.c is
// its C twin; test-strict.cpp expands every macro.
#ifdef WOF_TEST_FIRST_HEADER
#include WOF_TEST_FIRST_HEADER
#endif
#include <wof.h>
#include <wof/generation.h>
#include <wof/internal.h>
#include <wof/once.h>

#include <cstdio>
#include <type_traits>

static_assert(sizeof(wof_once_t) == 8, "wof_once_t is 8 bytes");
static_assert(alignof(wof_once_t) == 8, "wof_once_t is aligned to 8");
static_assert(std::is_trivial<wof_once_t>::value, "no constructor runs for a once");
static_assert(std::is_standard_layout<wof_once_t>::value, "the same layout as in C");

namespace {
wof_once_t anonymous_once = WOF_ONCE_INIT;
}

namespace wof_test {
extern wof_once_t once; // as a header would declare them
extern int runs;
wof_once_t once = WOF_ONCE_INIT;
#if __cplusplus >= 202002L
extern wof_once_t constant_once;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wc++20-compat" // clang: constinit is new in C++20, as intended
constinit wof_once_t constant_once = WOF_ONCE_INIT; // static initialisation, proven
#pragma GCC diagnostic pop
#endif
int runs;
} // namespace wof_test

extern "C" void count_run(void *arg);
extern "C" void count_run(void *arg)
{
	++*static_cast<int *>(arg);
}

int main()
{
	auto lambda = [](void *arg) { ++*static_cast<int *>(arg); };
	auto try_lambda = [](void *arg) -> int {
		++*static_cast<int *>(arg);
		return 0;
	};

	if (wof_once_call(&wof_test::once, count_run, &wof_test::runs) != 0 ||
	    wof_once_call(&wof_test::once, count_run, &wof_test::runs) != 0 ||
	    wof_once_call(&anonymous_once, lambda, &wof_test::runs) != 0 ||
	    wof_once_try_call(&anonymous_once, try_lambda, &wof_test::runs) != 0 ||
	    wof_once_wait(&wof_test::once) != 0 || !wof_once_is_completed(&anonymous_once) ||
	    wof_generation() == 0 ||
	    (wof_fork_detection() & (WOF_FORK_DETECT_ATFORK | WOF_FORK_DETECT_NO_FORK)) == 0) {
		std::puts("FAIL: a call from C++ went wrong");
		return 1;
	}
#if __cplusplus >= 202002L
	if (wof_once_call(&wof_test::constant_once, lambda, &wof_test::runs) != 0)
		return 1;
	if (wof_test::runs != 3)
		return 1;
#else
	if (wof_test::runs != 2)
		return 1;
#endif
	std::printf("C++ %ld: passed\n", __cplusplus);
	return 0;
}
