// SPDX-License-Identifier: MIT
/*
 * What the C++ test programs add to the test support library (wof-test.h): CHECK, which
 * counts a failure and carries on; CHILD_CHECK, the library's TH_CHILD_CHECK; and in_child(),
 * which runs a lambda in a forked child that _exits with its result, waited for with the
 * library's deadline (a straggler is killed and counts as failed). Children never CHECK.
 */
#pragma once

#include <cstdio>

#include "wof-test.h"

namespace test {

inline int &failures()
{
	static int count;
	return count;
}

// The program's exit status: 0 when every CHECK held, else 1, with a summary line.
inline int report(const char *what)
{
	if (failures()) {
		std::printf("%s, C++ %ld: %d checks FAILED\n", what, __cplusplus,
		            failures());
		return 1;
	}
	std::printf("%s, C++ %ld: passed\n", what, __cplusplus);
	return 0;
}

} // namespace test

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			std::fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
			             __func__, #cond);                                            \
			++test::failures();                                                       \
		}                                                                                 \
	} while (0)

// In a child's function: TH_CHILD_CHECK (wof-test.h) records file:line for the parent.
#define CHILD_CHECK(cond) TH_CHILD_CHECK(cond)

namespace test {

// Waits for child `pid` (th_wait: TH_DEADLINE_S, then killed). Returns its exit code, or -1
// (killed by a signal, timed out, waitpid failed), saying why.
inline int reap(pid_t pid)
{
	int code = th_wait(pid, TH_DEADLINE_S);
	if (code == 0)
		return 0;
	std::fprintf(stderr, "child %ld: %s\n", static_cast<long>(pid), th_outcome(code));
	return code < 128 ? code : -1;
}

// Runs child() in a child made by fork(), which _exits with its result (250 for an exception),
// and reaps it. Returns the exit code, or -1 (see reap(); also when fork failed). Usable in a
// child, for grandchildren.
template <typename F>
int in_child(F child)
{
	std::fflush(nullptr);
	pid_t pid = th_fork(TH_FORK);
	if (pid < 0) {
		std::perror("fork");
		return -1;
	}
	if (pid == 0) {
		int code;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
		try {
			code = child();
		} catch (...) {
			code = 250;
		}
#else
		code = child();
#endif
		_exit(code);
	}
	return reap(pid);
}

} // namespace test
