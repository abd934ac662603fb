// SPDX-License-Identifier: MIT
/*
 * test-wof-values: the typed value wrappers of include/wof/wof.hpp keep the contract of the C
 * types they wrap. wof::once_lock<T> (thread-safe) and wof::once_cell<T> (one thread) hold at
 * most one T per process, built in place by get_or_init, set or try_insert (arguments untouched
 * when nothing is stored), returned by get, destroyed by reset, the destructor or (C++17) moved
 * out by take; wof::lazy<T> and wof::lazy_cell<T> make their T on first force. An initialiser or
 * constructor that throws leaves the object empty and usable -- also for the C cells used
 * directly from C++, whose "init in progress" mark must not survive the exception. Re-entry
 * throws std::system_error(EDEADLK). Racing threads make one T. A forked child forgets the
 * parent's T (no destructor), runs on_wipe once with it, and makes its own; the parent keeps its.
 * A plain program (exit 0 pass, 1 fail), so ThreadSanitizer can run it.
 */
#include <wof/wof.hpp>

#include "cpp-helpers.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#if __cplusplus >= 201703L
#include <optional>
#endif
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

namespace {

using namespace test;
using ms = std::chrono::milliseconds;

// Neither copyable nor movable: only in-place construction can make one.
struct pinned {
	int a, b;
	pinned(int x, int y) : a(x), b(y) {}
	pinned(const pinned &) = delete;
	pinned(pinned &&) = delete;
};

// Throws from its constructor when asked to.
struct fussy {
	int v;
	explicit fussy(int x) : v(x)
	{
		if (x < 0)
			throw std::invalid_argument("negative");
	}
};

static_assert(std::is_trivially_destructible<wof::once_lock<int>>::value, "int: no destructor");
static_assert(std::is_trivially_destructible<wof::once_cell<int>>::value, "int: no destructor");
static_assert(!std::is_trivially_destructible<wof::once_lock<tracked>>::value, "destroys its T");
static_assert(!std::is_copy_constructible<wof::once_lock<int>>::value, "not copyable");
static_assert(!std::is_move_constructible<wof::once_cell<int>>::value, "not movable");
static_assert(noexcept(std::declval<wof::once_lock<tracked> &>().get()), "get is noexcept");
static_assert(noexcept(std::declval<wof::once_cell<tracked> &>().get()), "get is noexcept");
static_assert(noexcept(std::declval<wof::once_lock<tracked> &>().reset()), "reset too");
static_assert(noexcept(std::declval<wof::lazy_cell<int> &>().get()), "get is noexcept");

// Namespace-scope objects: constant initialisation (proven by constinit in C++20).
wof::once_lock<std::string> global_lock;
wof::once_cell<std::string> global_cell;
#if __cplusplus >= 202002L
constinit wof::once_lock<tracked> constinit_lock;
constinit wof::once_cell<tracked> constinit_cell;
constinit wof::lazy_cell<int> constinit_lazy_cell([] { return 7; });
#endif

// ---- what once_lock<T> and once_cell<T> share: each behaviour once, for both -----------------

// One T, made by the first get_or_init; set and try_insert then store nothing and leave their
// arguments alone; a type that cannot move is built in place from several arguments.
template <template <typename> class Cell>
std::string *check_basic(Cell<std::string> &cell, Cell<std::string> &global)
{
	int runs = 0;

	CHECK(cell.get() == nullptr);
	std::string &s = cell.get_or_init([&runs] { return ++runs, std::string("first"); });
	CHECK(s == "first" && cell.get() == &s);
	CHECK(&cell.get_or_init([&runs] { return ++runs, std::string("second"); }) == &s);
	CHECK(runs == 1);

	std::string kept(100, 'k'); // long: a move would empty it
	CHECK(!cell.set(std::move(kept)));
	CHECK(kept.size() == 100); // not stored, not moved from
	std::pair<std::string *, bool> r = cell.try_insert("third");
	CHECK(r.first == &s && !r.second && s == "first");
	CHECK(global.set(std::move(kept)));
	CHECK(kept.empty() && global.get()->size() == 100);
	CHECK(global.set("again") == false);

	Cell<pinned> pins;
	std::pair<pinned *, bool> p = pins.try_insert(1, 2);
	CHECK(p.second && p.first == pins.get() && p.first->a == 1 && p.first->b == 2);
	CHECK(!pins.set(3, 4) && pins.get()->a == 1);
#if __cplusplus >= 201703L
	Cell<pinned> elided;
	CHECK(elided.get_or_init([] { return pinned(5, 6); }).b == 6); // built in place
#endif
	return &s;
}

// An initialiser or a constructor that throws leaves the object empty and usable (not busy).
template <template <typename> class Cell>
void check_exceptions()
{
	Cell<fussy> cell;

	CHECK(throws<std::runtime_error>([&] {
		cell.get_or_init([]() -> fussy { throw std::runtime_error("init failed"); });
	}));
	CHECK(cell.get() == nullptr);
	CHECK(throws<std::invalid_argument>([&] { cell.set(-1); })); // the constructor throws
	CHECK(cell.get() == nullptr);
	CHECK(cell.get_or_init([] { return fussy(3); }).v == 3);
	CHECK(!cell.set(4) && cell.get()->v == 3);
}

// Re-entry from the initialiser throws EDEADLK; inside, the object is still empty.
template <template <typename> class Cell>
void check_reentry()
{
	Cell<int> cell;
	int get_or_init = 0, set = 0;
	int *inside = &get_or_init;

	CHECK(cell.get_or_init([&] {
		get_or_init = error_of([&] { cell.get_or_init([] { return 1; }); });
		set = error_of([&] { cell.set(2); });
		inside = cell.get();
		return 3;
	}) == 3);
	CHECK(get_or_init == EDEADLK && set == EDEADLK && inside == nullptr);
}

// Nothing made, nothing destroyed; reset() and the destructor destroy the T; take() (C++17)
// moves it out.
template <template <typename> class Cell>
void check_lifetime()
{
	int made0 = made, destroyed0 = destroyed;
	{
		Cell<tracked> unused;
		(void)unused;
	}
	CHECK(made == made0 && destroyed == destroyed0);
	{
		Cell<tracked> cell;
		CHECK(cell.set(1));
		cell.reset();
		CHECK(destroyed == destroyed0 + 1 && cell.get() == nullptr);
		cell.reset(); // empty: nothing to destroy
		CHECK(destroyed == destroyed0 + 1);
		CHECK(cell.set(2) && cell.get()->serial == 2);
	}
	CHECK(made == made0 + 2 && destroyed == destroyed0 + 2); // the destructor's
#if __cplusplus >= 201703L
	{
		Cell<tracked> cell;
		CHECK(!cell.take().has_value());
		cell.set("taken", 3);
		std::optional<tracked> t = cell.take();
		CHECK(t && t->name == "taken" && cell.get() == nullptr);
		CHECK(destroyed == destroyed0 + 2); // moved from: the cell's copy is not counted
		CHECK(cell.set(4));
	}
	CHECK(destroyed == destroyed0 + 4); // the taken one and the cell's second
#endif
}

// ---- once_lock -------------------------------------------------------------------------------

void test_lock()
{
	wof::once_lock<std::string> lock;
	std::string *s = check_basic(lock, global_lock);
	CHECK(&lock.wait() == s);
	check_exceptions<wof::once_lock>();
	check_reentry<wof::once_lock>();
	check_lifetime<wof::once_lock>();
#if __cplusplus >= 202002L
	CHECK(constinit_lock.get() == nullptr && constinit_lock.set(1));
	CHECK(constinit_lock.get()->serial == 1);
#endif

	wof::once_lock<int> again; // and wait(), which only a lock has
	int wait = 0;
	again.get_or_init([&] {
		wait = error_of([&] { again.wait(); });
		return 1;
	});
	CHECK(wait == EDEADLK);
}

void test_lock_threads()
{
	std::atomic<int> inits(0), attempts(0), thrown(0);
	wof::once_lock<std::vector<int>> lock;
	std::vector<std::vector<int> *> seen(12);

	race(12, [&](int i) {
		try {
			std::vector<int> &v = lock.get_or_init([&] {
				if (attempts.fetch_add(1) == 0) {
					std::this_thread::sleep_for(ms(30));
					throw std::runtime_error("first attempt");
				}
				++inits;
				return std::vector<int>(500, i);
			});
			if (v.size() == 500)
				seen[static_cast<std::size_t>(i)] = &v;
		} catch (const std::runtime_error &) {
			++thrown;
		}
	});
	CHECK(thrown == 1 && inits == 1 && attempts == 2);
	int same = 0;
	for (std::vector<int> *p : seen)
		same += p == lock.get();
	CHECK(same == 11);

	// wait() returns what another thread sets.
	wof::once_lock<int> later;
	std::atomic<int> got(0);
	std::thread waiter([&] { got = later.wait(); });
	std::this_thread::sleep_for(ms(10));
	CHECK(later.set(17));
	waiter.join();
	CHECK(got == 17);
}

// ---- once_cell -------------------------------------------------------------------------------

void test_cell()
{
	wof::once_cell<std::string> cell;
	check_basic(cell, global_cell);
	check_exceptions<wof::once_cell>();
	check_reentry<wof::once_cell>();
	check_lifetime<wof::once_cell>();
#if __cplusplus >= 202002L
	CHECK(constinit_cell.get() == nullptr && constinit_cell.set(9));
	CHECK(constinit_lazy_cell.force() == 7);
#endif

	// thread_local cells: one T per thread.
	static thread_local wof::once_cell<std::thread::id> mine;
	std::thread::id main_id = mine.get_or_init([] { return std::this_thread::get_id(); });
	std::thread::id other_id;
	std::thread t([&other_id] {
		other_id = mine.get_or_init([] { return std::this_thread::get_id(); });
	});
	t.join();
	CHECK(main_id == std::this_thread::get_id() && other_id != main_id);
	CHECK(*mine.get() == main_id);
}

// ---- what wof::lazy<T> and wof::lazy_cell<T> share -------------------------------------------

int lazy_runs;

int make_lazy()
{
	return ++lazy_runs * 10;
}

// Made by the first force, once, from a function or a lambda with captures; an init that throws
// leaves the lazy empty, to run again on the next force; re-entry throws EDEADLK.
template <template <typename, typename> class Lazy>
void check_lazy()
{
	lazy_runs = 0;
	Lazy<int, int (*)()> lazy(&make_lazy);
	CHECK(lazy.get() == nullptr && lazy_runs == 0);
	CHECK(lazy.force() == 10 && *lazy == 10 && lazy.get() == &lazy.force());
	CHECK(lazy_runs == 1);

	int calls = 0;
	auto init = [&calls] { return std::string(static_cast<std::size_t>(++calls), 'x'); };
	Lazy<std::string, decltype(init)> captured(init);
	CHECK(captured->size() == 1 && captured.force().size() == 1 && calls == 1);

	int attempts = 0;
	auto flaky = [&attempts]() -> int {
		if (++attempts == 1)
			throw std::runtime_error("first attempt");
		return attempts;
	};
	Lazy<int, decltype(flaky)> retried(flaky);
	CHECK(throws<std::runtime_error>([&] { retried.force(); }));
	CHECK(retried.get() == nullptr);
	CHECK(retried.force() == 2 && retried.force() == 2 && attempts == 2);

	// Re-entry: caught inside, the outer run completes; let out, the lazy stays empty.
	Lazy<int, std::function<int()>> *self = nullptr;
	int inner = 0;
	Lazy<int, std::function<int()>> reentrant([&]() -> int {
		inner = error_of([&] { self->force(); });
		return 1;
	});
	self = &reentrant;
	CHECK(reentrant.force() == 1 && inner == EDEADLK);
	Lazy<int, std::function<int()>> let_out([&]() -> int { return self->force() + 1; });
	self = &let_out;
	CHECK(error_of([&] { let_out.force(); }) == EDEADLK && let_out.get() == nullptr);
}

void test_lazy()
{
	check_lazy<wof::lazy>();
	check_lazy<wof::lazy_cell>();
#if defined(__cpp_deduction_guides)
	wof::lazy_cell deduced{[] { return 2.5; }};
	static_assert(std::is_same<decltype(deduced)::value_type, double>::value, "CTAD");
	CHECK(*deduced == 2.5);
#endif
}

// ---- the C cells from C++: an init that throws (the library's cleanup clears "busy") ---------

int c_value = 5;
int c_throws_left;

void *c_init(void *arg)
{
	if (c_throws_left > 0) {
		--c_throws_left;
		throw std::runtime_error("C init");
	}
	return arg;
}

int c_try_init(void *arg, void **out)
{
	*out = c_init(arg);
	return 0;
}

void test_c_cells_after_exception()
{
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;
	void *out = nullptr;

	c_throws_left = 2;
	CHECK(throws<std::runtime_error>(
	        [&] { wof_once_cell_get_or_init(&cell, c_init, &c_value); }));
	CHECK(wof_once_cell_get(&cell) == nullptr);
	CHECK(throws<std::runtime_error>(
	        [&] { wof_once_cell_get_or_try_init(&cell, c_try_init, &c_value, &out); }));
	CHECK(wof_once_cell_get(&cell) == nullptr);
	errno = 0;
	CHECK(wof_once_cell_get_or_init(&cell, c_init, &c_value) == &c_value);
	CHECK(errno == 0); // not EDEADLK
	CHECK(wof_once_cell_take(&cell) == &c_value);
	CHECK(wof_once_cell_set(&cell, &c_value) == 0);

	wof_lazy_cell_t lazy = WOF_LAZY_CELL_INIT(c_init, &c_value);
	c_throws_left = 1;
	CHECK(throws<std::runtime_error>([&] { wof_lazy_cell_force(&lazy); }));
	CHECK(wof_lazy_cell_get(&lazy) == nullptr);
	CHECK(wof_lazy_cell_force(&lazy) == &c_value);
	CHECK(wof_lazy_cell_get(&lazy) == &c_value);
}

// ---- fork ------------------------------------------------------------------------------------

// With on_wipe a lock stays valid for the life of the process: namespace scope.
wof::once_lock<tracked> fork_lock(&on_wipe);
wof::once_cell<tracked> fork_cell(&on_wipe);
wof::lazy_cell<tracked> fork_lazy_cell([] { return tracked(100); }, &on_wipe);
wof::once_lock<tracked> plain_lock;

// The child sees every object empty, runs on_wipe once per object with the parent's T (never
// its destructor), makes its own; a grandchild is told of the child's. The parent keeps its T.
void test_fork()
{
	const pid_t parent = getpid();
	CHECK(fork_lock.set(1) && fork_cell.set(2) && fork_lazy_cell->serial == 100);
	CHECK(plain_lock.set(3));
	const int made0 = made, destroyed0 = destroyed;

	int code = in_child([&] {
		CHILD_CHECK(wiped == 0);
		CHILD_CHECK(plain_lock.get() == nullptr);
		CHILD_CHECK(fork_lock.get() == nullptr);
		CHILD_CHECK(wiped == 1 && wiped_pid == parent && wiped_serial == 1);
		CHILD_CHECK(fork_cell.get() == nullptr);
		CHILD_CHECK(wiped == 2 && wiped_serial == 2);
		CHILD_CHECK(fork_lazy_cell.get() == nullptr);
		CHILD_CHECK(wiped == 3 && wiped_serial == 100);
		CHILD_CHECK(destroyed == destroyed0); // forgotten, not destroyed
		CHILD_CHECK(fork_lock.set(11) && fork_lock.get()->pid == getpid());
		CHILD_CHECK(fork_cell.get_or_init([] { return tracked(12); }).pid == getpid());
		CHILD_CHECK(fork_lazy_cell.force().pid == getpid());
		CHILD_CHECK(plain_lock.try_insert(13).second);
		CHILD_CHECK(made == made0 + 4 && wiped == 3);
		const pid_t child = getpid();
		int grandchild = in_child([&] {
			CHILD_CHECK(fork_lock.get() == nullptr && wiped == 4);
			CHILD_CHECK(wiped_pid == child && wiped_serial == 11);
			CHILD_CHECK(fork_lock.get_or_init([] { return tracked(21); }).serial == 21);
			return 0;
		});
		CHILD_CHECK(grandchild == 0);
		CHILD_CHECK(fork_lock.get()->serial == 11 && wiped == 3);
		fork_lock.reset(); // the child's own: destroyed
		CHILD_CHECK(destroyed == destroyed0 + 1);
		return 0;
	});
	CHECK(code == 0);
	CHECK(wiped == 0);
	CHECK(fork_lock.get()->pid == parent && fork_lock.get()->serial == 1);
	CHECK(fork_cell.get()->serial == 2 && fork_lazy_cell.get()->serial == 100);
	CHECK(plain_lock.get()->serial == 3);
	CHECK(made == made0 && destroyed == destroyed0);

	// A child's reset() of the parent's T destroys nothing (on_wipe runs instead).
	code = in_child([&] {
		fork_lock.reset();
		CHILD_CHECK(wiped == 1 && destroyed == destroyed0);
		return 0;
	});
	CHECK(code == 0);
}

// A cell's init that forks: the parent stores the value; in the child, the init throws and the
// child's cell is empty and usable.
void test_fork_inside_cell_init()
{
	wof::once_cell<int> cell;
	int child_code = -2;
	const pid_t parent = getpid();

	int &v = cell.get_or_init([&] {
		child_code = in_child([&] {
			CHILD_CHECK(getpid() != parent);
			CHILD_CHECK(throws<std::runtime_error>([&] {
				cell.get_or_init([]() -> int { throw std::runtime_error("c"); });
			}));
			CHILD_CHECK(cell.get() == nullptr);
			CHILD_CHECK(cell.get_or_init([] { return 2; }) == 2);
			return 0;
		});
		return 1;
	});
	CHECK(child_code == 0);
	CHECK(v == 1 && cell.get() == &v);

	// The init forks and, in the child only, throws out of the run the parent began: the
	// child's cell is forgotten (not left busy) and usable; the parent's init stores its value.
	wof::once_cell<int> forked;
	bool in_the_child = false;
	pid_t pid = -1;
	try {
		forked.get_or_init([&pid]() -> int {
			std::fflush(nullptr);
			pid = th_fork(TH_FORK);
			if (pid == 0)
				throw std::runtime_error("in the child");
			return 1;
		});
	} catch (const std::runtime_error &) {
		in_the_child = true;
	}
	if (in_the_child) {
		bool usable = forked.get() == nullptr && forked.get_or_init([] { return 2; }) == 2;
		_exit(usable ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK(said(th_reap(pid, "fork")) == 0);
	CHECK(forked.get() != nullptr && *forked.get() == 1);
}

} // namespace

int main()
{
	test_lock();
	test_lock_threads();
	test_cell();
	test_lazy();
	test_c_cells_after_exception();
	test_fork();
	test_fork_inside_cell_init();
	return test::report("wof.hpp values");
}
