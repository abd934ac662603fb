// SPDX-License-Identifier: MIT
/*
 * test-call-once: wof::once and wof::call_once pass what the standard libraries check of
 * std::once_flag and std::call_once (libc++'s thread.once tests, libstdc++'s
 * 30_threads/call_once), rewritten here: a plain function by name, a function with arguments,
 * lambdas, function objects called as lvalues and as rvalues (ref-qualified operator()),
 * move-only callables and arguments, arguments passed by reference and never decay-copied
 * (LWG 2442), std::ref, bind placeholders passed through, pointers to members; an exceptional
 * call followed by a successful one, from one thread and from racing threads; many threads
 * racing on one flag; nested calls on different flags in opposite orders; a constexpr,
 * non-copyable flag. wof adds: re-entry on the same flag is EDEADLK (call) or
 * std::system_error (call_once) instead of a deadlock, and noexcept follows the callable's.
 * A plain program (exit 0 pass, 1 fail), so ThreadSanitizer can run it.
 */
#include <wof/wof.hpp>

#include "cpp-helpers.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <system_error>
#include <thread>
#include <type_traits>

namespace {

using test::race;
using ms = std::chrono::milliseconds;

// ---- the flag ------------------------------------------------------------------------------

static_assert(std::is_default_constructible<wof::once>::value, "default constructible");
static_assert(std::is_nothrow_default_constructible<wof::once>::value, "noexcept");
static_assert(!std::is_copy_constructible<wof::once>::value, "not copyable");
static_assert(!std::is_copy_assignable<wof::once>::value, "not assignable");
static_assert(!std::is_move_constructible<wof::once>::value, "not movable");
constexpr wof::once constexpr_flag; // a constexpr constructor: constant initialisation

void test_flag()
{
	wof::once flag;
	CHECK(!flag.is_completed());
	CHECK(!constexpr_flag.is_completed());
}

// ---- a plain function, racing threads (libc++ "basic functionality") ---------------------------

wof::once flag0;
std::atomic<int> init0_called(0);

void init0()
{
	std::this_thread::sleep_for(ms(50));
	++init0_called;
}

void test_plain_function()
{
	race(2, [](int) { wof::call_once(flag0, init0); });
	CHECK(init0_called == 1);
	CHECK(flag0.is_completed());

	// By name, through the member function too.
	wof::once flag;
	CHECK(flag.call(init0) == 0 && flag.call(init0) == 0);
	CHECK(init0_called == 2);
}

// ---- exceptional then successful call (libc++ "exception safety"; libstdc++ 66146) ------------

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
wof::once flag3;
std::atomic<int> init3_called(0), init3_completed(0);

void init3()
{
	++init3_called;
	std::this_thread::sleep_for(ms(50));
	if (init3_called == 1)
		throw 1;
	++init3_completed;
}

void test_exception_then_success()
{
	race(2, [](int) {
		try {
			wof::call_once(flag3, init3);
		} catch (...) {
		}
	});
	CHECK(init3_called == 2);
	CHECK(init3_completed == 1);

	// One thread: the first three calls throw and leave the flag incomplete; the fourth
	// completes it; nothing runs afterwards.
	wof::once flag;
	int counter = 0;
	for (int i = 0; i < 10; ++i) {
		try {
			wof::call_once(flag, [&] {
				if (i < 3)
					throw i;
				++counter;
			});
			CHECK(i >= 3);
		} catch (int thrown) {
			CHECK(i < 3 && thrown == i);
			CHECK(!flag.is_completed());
		}
	}
	CHECK(counter == 1);
	wof::call_once(flag, [] { std::abort(); });
}
#else
void test_exception_then_success() {}
#endif

// ---- nested calls on two flags, in opposite orders (libc++ "deadlock avoidance") --------------

wof::once flag41, flag42;
std::atomic<int> init41_called(0), init42_called(0);

void init41()
{
	std::this_thread::sleep_for(ms(50));
	++init41_called;
}

void init42()
{
	std::this_thread::sleep_for(ms(50));
	++init42_called;
}

// A callable that itself calls call_once on another flag.
wof::once outer_flag, inner_flag;
int inner_runs, outer_runs;

void test_two_flags()
{
	race(2, [](int i) { // thread 0 takes flag41 then flag42, thread 1 the other way round
		wof::call_once(i ? flag42 : flag41, i ? init42 : init41);
		wof::call_once(i ? flag41 : flag42, i ? init41 : init42);
	});
	CHECK(init41_called == 1);
	CHECK(init42_called == 1);

	wof::call_once(outer_flag, [] {
		++outer_runs;
		wof::call_once(inner_flag, [] { ++inner_runs; });
		CHECK(inner_flag.is_completed());
		CHECK(!outer_flag.is_completed());
	});
	wof::call_once(outer_flag, [] { ++outer_runs; });
	wof::call_once(inner_flag, [] { ++inner_runs; });
	CHECK(outer_runs == 1 && inner_runs == 1);
}

// ---- function objects with arguments (libc++ "functors with 1 and 2 args") ---------------------

struct init1 {
	static std::atomic<int> called;
	void operator()(int i) { called += i; }
};
std::atomic<int> init1::called(0);
wof::once flag1;

struct init2 {
	static std::atomic<int> called;
	void operator()(int i, int j) const { called += i + j; }
};
std::atomic<int> init2::called(0);
wof::once flag2;

int value = 1;

void add_to_value(int i)
{
	value += i;
}

void test_arguments()
{
	race(2, [](int) { wof::call_once(flag1, init1(), 1); });
	CHECK(init1::called == 1);
	race(2, [](int) {
		wof::call_once(flag2, init2(), 2, 3);
		wof::call_once(flag2, init2(), 4, 5);
	});
	CHECK(init2::called == 5);

	// libstdc++ call_once1: a function taking an argument, by name.
	wof::once flag;
	wof::call_once(flag, add_to_value, 2);
	wof::call_once(flag, add_to_value, 2);
	CHECK(value == 3);
	wof::once flag_b;
	CHECK(flag_b.call(add_to_value, 10) == 0 && flag_b.call(add_to_value, 10) == 0);
	CHECK(value == 13);
}

// ---- move-only, non-copyable, by reference (libc++; LWG 2442; libstdc++ 49668, 60497) ----------

class move_only {
public:
	move_only() {}
	move_only(move_only &&) {}
	move_only(const move_only &) = delete;
	void operator()(move_only &&) { ++runs; }
	static int runs;
};
int move_only::runs;

class non_copyable {
public:
	non_copyable() {}
	non_copyable(const non_copyable &) = delete;
	void operator()(int &i) { ++i; }
};

void by_reference(int &a, int &&b)
{
	a = 1;
	b = 2;
}

struct moveable {
	moveable() = default;
	moveable(moveable &&) = default;
	moveable(const moveable &) = delete;
};

using placeholder_type = decltype(std::placeholders::_1);

void takes_placeholder(moveable, placeholder_type, bool &b)
{
	b = true;
}


void test_no_copies()
{
	wof::once f_move;
	wof::call_once(f_move, move_only(), move_only());
	CHECK(move_only::runs == 1);

	wof::once f_ref;
	int i = 0;
	wof::call_once(f_ref, non_copyable(), i);
	CHECK(i == 1); // the argument was passed by reference, not decay-copied

	wof::once f_lwg2442;
	int a = 0, b = 0;
	wof::call_once(f_lwg2442, by_reference, a, std::move(b));
	CHECK(a == 1 && b == 2);

	wof::once f_placeholder;
	bool called = false;
	wof::call_once(f_placeholder, takes_placeholder, moveable(), std::placeholders::_1,
	               std::ref(called));
	CHECK(called);

	// A move-only argument is moved into a by-value parameter exactly when the call runs.
	wof::once f_unique;
	std::unique_ptr<int> owned(new int(7));
	int seen = 0;
	wof::call_once(f_unique, [&seen](std::unique_ptr<int> q) { seen = *q; }, std::move(owned));
	CHECK(seen == 7 && !owned);
	std::unique_ptr<int> kept(new int(8));
	wof::call_once(f_unique, [&seen](std::unique_ptr<int> q) { seen = *q; }, std::move(kept));
	CHECK(seen == 7 && kept && *kept == 8); // not run: the argument was not moved from
}

// ---- lvalue and rvalue callables (libc++ RefQual) ---------------------------------------------

struct ref_qual {
	int lv_called = 0, rv_called = 0;
	void operator()() & { ++lv_called; }
	void operator()() && { ++rv_called; }
};

void test_value_category()
{
	wof::once f1, f2, f3;
	ref_qual rq;
	wof::call_once(f1, rq);
	CHECK(rq.lv_called == 1 && rq.rv_called == 0);
	wof::call_once(f2, std::move(rq));
	CHECK(rq.lv_called == 1 && rq.rv_called == 1);
	CHECK(f3.call(std::move(rq)) == 0 && rq.rv_called == 2);
}

// ---- pointers to members (INVOKE) --------------------------------------------------------------

struct counter {
	int n = 0;
	void add(int d) { n += d; }
	void add_const(int *out) const { *out += n; }
	int field = 0;
};

void test_member_pointers()
{
	counter c;
	wof::once f1, f2, f3, f4, f5;
	wof::call_once(f1, &counter::add, c, 1);                // object
	wof::call_once(f2, &counter::add, &c, 10);              // pointer
	wof::call_once(f3, &counter::add, std::ref(c), 100);    // reference_wrapper
	CHECK(c.n == 111);
	int out = 0;
	const counter &cc = c;
	wof::call_once(f4, &counter::add_const, cc, &out);
	CHECK(out == 111);
	std::unique_ptr<counter> owned(new counter);
	wof::call_once(f5, &counter::add, owned, 5);             // smart pointer
	CHECK(owned->n == 5);
	wof::once f6;
	CHECK(f6.call(&counter::field, c) == 0 && f6.is_completed()); // reads the member
}

// ---- many threads, many calls (libstdc++ 39909) ------------------------------------------------

void test_many_threads()
{
	wof::once flag;
	std::atomic<int> runs(0);
	int payload = 0; // written by the one run, read by every caller after its call returns
	std::atomic<int> saw_payload(0);

	race(8, [&](int) {
		for (int i = 0; i < 2000; ++i) {
			wof::call_once(flag, [&] {
				++runs;
				payload = 42;
			});
			if (payload != 42)
				return;
		}
		++saw_payload;
	});
	CHECK(runs == 1);
	CHECK(saw_payload == 8);
}

// ---- wof's additions: re-entry, wait, noexcept ----------------------------------------------

void test_reentry()
{
	wof::once flag;
	int inner = -1;

	wof::call_once(flag, [&] { inner = flag.call([] {}); });
	CHECK(inner == EDEADLK);
	CHECK(flag.is_completed());
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
	wof::once flag_b;
	std::error_code code;
	wof::call_once(flag_b, [&] {
		try {
			wof::call_once(flag_b, [] {});
		} catch (const std::system_error &e) {
			code = e.code();
		}
	});
	CHECK(code == std::errc::resource_deadlock_would_occur);
#endif
}

void test_wait()
{
	wof::once flag;
	std::atomic<bool> waited(false);
	std::thread waiter([&] {
		CHECK(flag.wait() == 0);
		waited = true;
	});
	std::this_thread::sleep_for(ms(20));
	CHECK(!waited);
	wof::call_once(flag, [] {});
	waiter.join();
	CHECK(waited);
}

void nothrow_function() noexcept {}
void throwing_function() {}

void test_noexcept()
{
	wof::once flag;
	auto nothrow_lambda = []() noexcept {};
	auto throwing_lambda = [] {};
	static_assert(noexcept(flag.call(nothrow_lambda)), "a noexcept callable: call is noexcept");
	static_assert(!noexcept(flag.call(throwing_lambda)), "else not");
	static_assert(!noexcept(flag.call(throwing_function)), "a function by name");
#if __cplusplus >= 201703L
	static_assert(noexcept(flag.call(nothrow_function)), "noexcept is in the type from C++17");
#endif
	static_assert(noexcept(flag.is_completed()) && noexcept(flag.wait()), "never throw");
	static_assert(!noexcept(wof::call_once(flag, nothrow_lambda)), "EDEADLK throws");
	flag.call(nothrow_function);
	CHECK(flag.is_completed());
	wof::once flag_b;
	CHECK(flag_b.call(throwing_function) == 0 && flag_b.is_completed());
}

} // namespace

// libstdc++ 60497, compiled only: the call must not need holder<incomplete> to be complete
// (as an ADL lookup, or destroying the unique_ptr, would).
struct incomplete;
template <typename T>
struct holder {
	T t;
};
using unique_holder = std::unique_ptr<holder<incomplete>>;

void takes_unique(unique_holder &);
void takes_unique(unique_holder &) {}

void call_with_incomplete(unique_holder &p);
void call_with_incomplete(unique_holder &p)
{
	wof::once flag;
	wof::call_once(flag, takes_unique, std::ref(p));
}

int main()
{
	test_flag();
	test_plain_function();
	test_exception_then_success();
	test_two_flags();
	test_arguments();
	test_no_copies();
	test_value_category();
	test_member_pointers();
	test_many_threads();
	test_reentry();
	test_wait();
	test_noexcept();
	return test::report("call_once");
}
