// SPDX-License-Identifier: MIT
/*
 * What the C++ test programs add to the test support library (wof-test.h): CHECK, which
 * counts a failure and carries on; CHILD_CHECK, the library's TH_CHILD_CHECK; in_child(), which
 * runs a lambda in a forked child, reaped with the library's deadline (stragglers killed); race(),
 * which releases threads together; throws() and error_of(), for what a call throws; and the
 * tracked T of the value tests. Children never CHECK. Each test program is one translation
 * unit, so the few definitions here are made once per program.
 */
#pragma once

#include <atomic>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

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

// A child's result as th_reap gave it: 0, else th_why is printed.
inline int said(int code)
{
	if (code != 0)
		std::fprintf(stderr, "%s\n", th_why);
	return code;
}

// Runs child() in a child made by fork() (th_spawn), which _exits with its result (250 for an
// exception), and reaps it (th_reap). Returns 0, else nonzero having said why. Usable in a
// child, for grandchildren. Not th_in_child: ThreadSanitizer checks these children too.
template <typename F>
int in_child(F child)
{
	std::fflush(nullptr);
	return said(th_reap(th_spawn(TH_FORK, [](void *f) -> int {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
		try {
			return (*static_cast<F *>(f))();
		} catch (...) {
			return 250;
		}
#else
		return (*static_cast<F *>(f))();
#endif
	}, &child), "fork"));
}

// Runs body(i) for i in [0, n), each in its own thread, all released at once; then joins them.
template <typename F>
void race(int n, F body)
{
	std::atomic<bool> go(false);
	std::vector<std::thread> threads;

	for (int i = 0; i < n; ++i)
		threads.emplace_back([&, i] {
			while (!go.load())
				std::this_thread::yield();
			body(i);
		});
	go.store(true);
	for (auto &t : threads)
		t.join();
}

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
// Whether f() throws an E.
template <typename E, typename F>
bool throws(F f)
{
	try {
		f();
	} catch (const E &) {
		return true;
	}
	return false;
}

// The error code of the std::system_error f() throws (EDEADLK for re-entry), or 0.
template <typename F>
int error_of(F f)
{
	try {
		f();
	} catch (const std::system_error &e) {
		return e.code().value();
	}
	return 0;
}
#endif

// The T of the value tests: counts its lives, remembers the process that made it.
std::atomic<int> made(0), destroyed(0);

struct tracked {
	pid_t pid;
	int serial;
	std::string name;

	explicit tracked(int s) : pid(getpid()), serial(s), name("serial " + std::to_string(s))
	{
		++made;
	}
	tracked(const std::string &n, int s) : pid(getpid()), serial(s), name(n) { ++made; }
	tracked(tracked &&other) noexcept
	        : pid(other.pid), serial(other.serial), name(std::move(other.name))
	{
		other.pid = 0; // moved from: not counted when destroyed
	}
	tracked(const tracked &) = delete;
	~tracked()
	{
		if (pid != 0)
			++destroyed;
	}
};

// The on_wipe of the value tests: what it was told of, and how often.
int wiped, wiped_serial;
pid_t wiped_pid;

inline void on_wipe(tracked &stale)
{
	++wiped;
	wiped_pid = stale.pid;
	wiped_serial = stale.serial;
}

} // namespace test
