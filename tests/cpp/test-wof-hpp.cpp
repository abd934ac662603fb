// SPDX-License-Identifier: MIT
/*
 * test-wof-hpp: include/wof/wof.hpp keeps wof's contract in C++. wof::once runs any callable
 * once, lets its exceptions through (unwinding libwof's C frames) and leaves itself incomplete
 * for the next caller; wof::lazy<T> makes one T per process, inline, with constant
 * initialisation at namespace scope; a forked child forgets the parent's T (no destructor),
 * sees on_wipe once, and makes its own while the parent keeps its T; many threads' first use
 * runs init once. A plain program (exit 0 pass, 1 fail), so ThreadSanitizer can run it; fork
 * tests assert in the parent only: children _exit with a code and have a deadline.
 */
#include <wof/wof.hpp>

#include "cpp-helpers.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

namespace {

using namespace test;

// ---- wof::once -------------------------------------------------------------------------------

static_assert(sizeof(wof::once) == 8, "wof::once is a wof_once_t");
static_assert(std::is_trivially_destructible<wof::once>::value, "no destructor runs");
static_assert(std::is_standard_layout<wof::once>::value, "the C layout");
static_assert(!std::is_copy_constructible<wof::once>::value, "a once is not copied");

wof::once global_once; // constant-initialised: constexpr constructor
#if __cplusplus >= 202002L
constinit wof::once constinit_once;
#endif

void test_once_call()
{
	wof::once once;
	int runs = 0;
	auto count = [&runs] { ++runs; };

	CHECK(!once.is_completed());
	CHECK(once.call(count) == 0);
	CHECK(once.call(count) == 0);
	CHECK(once.call([&runs] { runs += 100; }) == 0);
	CHECK(runs == 1);
	CHECK(once.is_completed());
	CHECK(once.wait() == 0);
	CHECK(once.try_call([] { return 5; }) == 0); // complete: runs nothing
	CHECK(wof_once_is_completed(once.native_handle()));

	// A const callable, an rvalue, a function object with state.
	struct counter {
		int *n;
		void operator()() const { ++*n; }
	};
	const counter c{&runs};
	CHECK(global_once.call(c) == 0);
	CHECK(global_once.call(counter{&runs}) == 0);
	CHECK(runs == 2);
#if __cplusplus >= 202002L
	CHECK(constinit_once.call(c) == 0 && runs == 3);
#endif
}

void test_once_try_call()
{
	wof::once once;
	int runs = 0;

	CHECK(once.try_call([&runs] { return ++runs, 42; }) == 42);
	CHECK(!once.is_completed());
	CHECK(once.try_call([&runs] { return ++runs, 0; }) == 0);
	CHECK(once.is_completed());
	CHECK(once.try_call([&runs] { return ++runs, 7; }) == 0);
	CHECK(runs == 2);
}

void test_once_exception()
{
	wof::once once;
	int runs = 0;
	bool caught = false;

	try {
		once.call([&runs] {
			++runs;
			throw std::runtime_error("init failed");
		});
	} catch (const std::runtime_error &e) {
		caught = std::string(e.what()) == "init failed";
	}
	CHECK(caught);
	CHECK(!once.is_completed());

	caught = false;
	try {
		once.try_call([&runs]() -> int { throw ++runs; });
	} catch (int n) {
		caught = n == 2;
	}
	CHECK(caught);
	CHECK(!once.is_completed());

	CHECK(once.call([&runs] { ++runs; }) == 0);
	CHECK(once.is_completed());
	CHECK(runs == 3);
}

// Re-entry from inside the callable is EDEADLK, not a hang, and leaves the outer run alone.
void test_once_reentry()
{
	wof::once once;
	int inner = -1;

	CHECK(once.call([&] {
		inner = once.call([] {});
		CHECK(once.wait() == EDEADLK);
	}) == 0);
	CHECK(inner == EDEADLK);
	CHECK(once.is_completed());
}

// The first runner throws while others wait: they wake, one of them completes the once.
void test_once_exception_waiters()
{
	wof::once once;
	std::atomic<int> attempts(0), thrown(0), returned(0);

	race(8, [&](int) {
		try {
			int rc = once.call([&] {
				if (attempts.fetch_add(1) == 0) {
					std::this_thread::sleep_for(std::chrono::milliseconds(50));
					throw std::runtime_error("first attempt");
				}
			});
			if (rc == 0)
				returned.fetch_add(1);
		} catch (const std::runtime_error &) {
			thrown.fetch_add(1);
		}
	});
	CHECK(thrown.load() == 1);
	CHECK(returned.load() == 7);
	CHECK(attempts.load() == 2);
	CHECK(once.is_completed());
}

// ---- wof::lazy -------------------------------------------------------------------------------

tracked make_tracked()
{
	return tracked(made.load() + 1);
}

int make_answer()
{
	return 42;
}

// Namespace-scope lazies: constant initialisation (proven by constinit in C++20).
wof::lazy<int> answer(&make_answer);
wof::lazy<tracked> global_tracked(&make_tracked);
#if __cplusplus >= 202002L
constinit wof::lazy<int> constinit_answer(&make_answer);
constinit wof::lazy<int> constinit_lambda([] { return 7; });
#endif
#if defined(__cpp_deduction_guides)
wof::lazy deduced{[] { return std::string("deduced"); }};
static_assert(std::is_same<decltype(deduced)::value_type, std::string>::value, "CTAD");
#endif

static_assert(std::is_trivially_destructible<wof::lazy<int>>::value,
              "a lazy of a trivially destructible T needs no destructor at exit");
static_assert(!std::is_copy_constructible<wof::lazy<int>>::value, "a lazy is not copied");

wof::lazy<tracked> wiped_tracked(&make_tracked, &on_wipe);

void test_lazy_basic()
{
	CHECK(answer.get() == nullptr);
	CHECK(answer.force() == 42);
	CHECK(answer.get() == &answer.force());
	CHECK(*answer == 42);
#if __cplusplus >= 202002L
	CHECK(constinit_answer.force() == 42 && constinit_lambda.force() == 7);
#endif
#if defined(__cpp_deduction_guides)
	CHECK(*deduced == "deduced");
#endif

	int before = made.load();
	tracked &t = global_tracked.force();
	CHECK(t.pid == getpid());
	CHECK(&global_tracked.force() == &t);
	CHECK(global_tracked->serial == t.serial);
	CHECK(made.load() == before + 1);

	// A callable with captures, and a value type converted from the init's result.
	int calls = 0;
	auto init = [&calls] { return ++calls * 10; };
	wof::lazy<long, decltype(init)> captured(init);
	CHECK(captured.force() == 10 && captured.force() == 10 && calls == 1);
	wof::lazy<std::string> converted([]() -> std::string { return "converted"; });
	CHECK(converted->size() == 9);
}

void test_lazy_destructor()
{
	int before = destroyed.load();
	{
		wof::lazy<tracked> unused(&make_tracked);
		(void)unused;
	}
	CHECK(destroyed.load() == before); // nothing made, nothing destroyed
	{
		wof::lazy<tracked> used(&make_tracked);
		CHECK(used.force().pid == getpid());
	}
	CHECK(destroyed.load() == before + 1);
}

// Many threads' first use: one init, one T, everyone sees it complete.
void test_lazy_threads()
{
	std::atomic<int> inits(0);
	auto init = [&inits] {
		inits.fetch_add(1);
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
		return std::vector<int>(1000, 7);
	};
	wof::lazy<std::vector<int>, decltype(init)> lazy(init);
	std::vector<const std::vector<int> *> seen(16);
	std::atomic<int> good(0);

	race(16, [&](int i) {
		const std::vector<int> &v = lazy.force();
		seen[static_cast<std::size_t>(i)] = &v;
		if (v.size() == 1000 && v[999] == 7)
			good.fetch_add(1);
	});
	CHECK(inits.load() == 1);
	CHECK(good.load() == 16);
	for (const std::vector<int> *p : seen)
		CHECK(p == lazy.get());
}

// ---- fork ------------------------------------------------------------------------------------

// The child forgets the parent's T (no destructor), makes its own; the parent keeps its T.
void test_fork_lazy()
{
	tracked &mine = global_tracked.force();
	const pid_t parent = getpid();
	const int made_before = made.load(), destroyed_before = destroyed.load();
	const int serial = mine.serial;

	int code = in_child([&] {
		CHILD_CHECK(global_tracked.get() == nullptr);
		CHILD_CHECK(answer.get() == nullptr);
		CHILD_CHECK(destroyed.load() == destroyed_before);
		tracked &child = global_tracked.force();
		CHILD_CHECK(&child == &mine); // same storage, new T
		CHILD_CHECK(child.pid == getpid() && child.pid != parent);
		CHILD_CHECK(made.load() == made_before + 1);
		CHILD_CHECK(destroyed.load() == destroyed_before); // the parent's T is forgotten
		CHILD_CHECK(answer.force() == 42);
		// A grandchild of a child that made its own gets a fresh one again.
		int grandchild = in_child([&] {
			CHILD_CHECK(global_tracked.get() == nullptr);
			CHILD_CHECK(global_tracked.force().pid == getpid());
			return 0;
		});
		CHILD_CHECK(grandchild == 0);
		CHILD_CHECK(global_tracked.force().pid == getpid());
		return 0;
	});
	CHECK(code == 0);
	CHECK(global_tracked.get() == &mine);
	CHECK(mine.pid == parent && mine.serial == serial);
	CHECK(made.load() == made_before && destroyed.load() == destroyed_before);
}

// on_wipe runs in the child exactly once, with the parent's T, on the first call (get
// included), before the new T; never in the parent.
void test_fork_on_wipe()
{
	const pid_t parent = getpid();
	const int serial = wiped_tracked.force().serial;

	int code = in_child([&] {
		CHILD_CHECK(wiped == 0);
		CHILD_CHECK(wiped_tracked.get() == nullptr);
		CHILD_CHECK(wiped == 1 && wiped_pid == parent && wiped_serial == serial);
		CHILD_CHECK(wiped_tracked.get() == nullptr);
		CHILD_CHECK(wiped_tracked.force().pid == getpid());
		CHILD_CHECK(wiped == 1);
		// The grandchild is told of the child's T.
		const pid_t child = getpid();
		int grandchild = in_child([&] {
			CHILD_CHECK(wiped_tracked.force().pid == getpid());
			CHILD_CHECK(wiped == 2 && wiped_pid == child);
			return 0;
		});
		CHILD_CHECK(grandchild == 0);
		CHILD_CHECK(wiped == 1);
		return 0;
	});
	CHECK(code == 0);

	// Forked before this process made the T: nothing to tell the child of.
	wof::lazy<tracked> fresh(&make_tracked, &on_wipe);
	code = in_child([&] {
		CHILD_CHECK(fresh.force().pid == getpid());
		CHILD_CHECK(wiped == 0);
		return 0;
	});
	CHECK(code == 0);
	CHECK(wiped == 0);
	CHECK(fresh.get() == nullptr);
}

void test_fork_once()
{
	wof::once once;
	int runs = 0;

	CHECK(once.call([&runs] { ++runs; }) == 0);
	int code = in_child([&] {
		CHILD_CHECK(!once.is_completed());
		CHILD_CHECK(once.call([&runs] { ++runs; }) == 0);
		CHILD_CHECK(runs == 2 && once.is_completed());
		CHILD_CHECK(wof::generation() != 0);
		return 0;
	});
	CHECK(code == 0);
	CHECK(once.is_completed() && runs == 1);
}

} // namespace

int main()
{
	test_once_call();
	test_once_try_call();
	test_once_exception();
	test_once_reentry();
	test_once_exception_waiters();
	test_lazy_basic();
	test_lazy_destructor();
	test_lazy_threads();
	test_fork_lazy();
	test_fork_on_wipe();
	test_fork_once();
	return test::report("wof.hpp");
}
