// SPDX-License-Identifier: MIT
/*
 * test-wof-values: the typed value wrappers of include/wof/wof.hpp keep the contract of the C
 * types they wrap. wof::once_lock<T> (thread-safe) and wof::once_cell<T> (one thread) hold at
 * most one T per process, built in place by get_or_init, set or try_insert (arguments untouched
 * when nothing is stored), returned by get, destroyed by reset, the destructor or (C++17) moved
 * out by take; wof::lazy_cell<T> makes its T on first force. An initialiser or constructor that
 * throws leaves the object empty and usable -- also for the C cells used directly from C++,
 * whose "init in progress" mark must not survive the exception. Re-entry throws
 * std::system_error(EDEADLK). Racing threads make one T. A forked child forgets the parent's T
 * (no destructor), runs on_wipe once with it, and makes its own, while the parent keeps its T.
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
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

namespace {

using test::in_child;
using ms = std::chrono::milliseconds;

// A T that counts its lives and remembers the process that made it.
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

template <typename F>
int deadlock_code(F f)
{
	try {
		f();
	} catch (const std::system_error &e) {
		return e.code().value();
	}
	return 0;
}

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
wof::once_cell<int> global_cell;
#if __cplusplus >= 202002L
constinit wof::once_lock<tracked> constinit_lock;
constinit wof::once_cell<tracked> constinit_cell;
constinit wof::lazy_cell<int> constinit_lazy_cell([] { return 7; });
#endif

// ---- once_lock -------------------------------------------------------------------------------

void test_lock_basic()
{
	wof::once_lock<std::string> lock;
	int runs = 0;

	CHECK(lock.get() == nullptr);
	std::string &s = lock.get_or_init([&runs] { return ++runs, std::string("first"); });
	CHECK(s == "first" && lock.get() == &s);
	CHECK(&lock.get_or_init([&runs] { return ++runs, std::string("second"); }) == &s);
	CHECK(runs == 1);
	CHECK(lock.wait() == "first");

	std::string kept(100, 'k'); // long: a move would empty it
	CHECK(!lock.set(std::move(kept)));
	CHECK(kept.size() == 100); // not stored, not moved from
	std::pair<std::string *, bool> r = lock.try_insert("third");
	CHECK(r.first == &s && !r.second && s == "first");

	CHECK(global_lock.set(std::move(kept)));
	CHECK(kept.empty() && global_lock.get()->size() == 100);
	CHECK(global_lock.set("again") == false);

	// In place, from several arguments, for a type that cannot move.
	wof::once_lock<pinned> pins;
	std::pair<pinned *, bool> p = pins.try_insert(1, 2);
	CHECK(p.second && p.first == pins.get() && p.first->a == 1 && p.first->b == 2);
	CHECK(!pins.set(3, 4) && pins.get()->a == 1);
#if __cplusplus >= 201703L
	wof::once_lock<pinned> elided;
	CHECK(elided.get_or_init([] { return pinned(5, 6); }).b == 6); // built in place
#endif
#if __cplusplus >= 202002L
	CHECK(constinit_lock.get() == nullptr && constinit_lock.set(1));
	CHECK(constinit_lock.get()->serial == 1);
#endif
}

void test_lock_exceptions()
{
	wof::once_lock<fussy> lock;
	bool caught = false;

	try {
		lock.get_or_init([]() -> fussy { throw std::runtime_error("init failed"); });
	} catch (const std::runtime_error &) {
		caught = true;
	}
	CHECK(caught && lock.get() == nullptr);
	caught = false;
	try {
		lock.set(-1); // the constructor throws
	} catch (const std::invalid_argument &) {
		caught = true;
	}
	CHECK(caught && lock.get() == nullptr);
	CHECK(lock.get_or_init([] { return fussy(3); }).v == 3);
	CHECK(!lock.set(4) && lock.get()->v == 3);
}

void test_lock_reentry()
{
	wof::once_lock<int> lock;
	int get_or_init = 0, set = 0, wait = 0;
	int *inside = &get_or_init;

	CHECK(lock.get_or_init([&] {
		get_or_init = deadlock_code([&] { lock.get_or_init([] { return 1; }); });
		set = deadlock_code([&] { lock.set(2); });
		wait = deadlock_code([&] { lock.wait(); });
		inside = lock.get();
		return 3;
	}) == 3);
	CHECK(get_or_init == EDEADLK && set == EDEADLK && wait == EDEADLK);
	CHECK(inside == nullptr);
}

void test_lock_threads()
{
	std::atomic<int> inits(0), attempts(0), thrown(0);
	wof::once_lock<std::vector<int>> lock;
	std::atomic<bool> go(false);
	std::vector<std::thread> threads;
	std::vector<std::vector<int> *> seen(12);

	for (std::size_t i = 0; i < seen.size(); ++i)
		threads.emplace_back([&, i] {
			while (!go.load())
				std::this_thread::yield();
			try {
				std::vector<int> &v = lock.get_or_init([&] {
					if (attempts.fetch_add(1) == 0) {
						std::this_thread::sleep_for(ms(30));
						throw std::runtime_error("first attempt");
					}
					++inits;
					return std::vector<int>(500, static_cast<int>(i));
				});
				if (v.size() == 500)
					seen[i] = &v;
			} catch (const std::runtime_error &) {
				++thrown;
			}
		});
	go.store(true);
	for (auto &t : threads)
		t.join();
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

void test_lock_lifetime()
{
	int made0 = made, destroyed0 = destroyed;
	{
		wof::once_lock<tracked> unused;
		(void)unused;
	}
	CHECK(made == made0 && destroyed == destroyed0);
	{
		wof::once_lock<tracked> lock;
		CHECK(lock.set(1));
		lock.reset();
		CHECK(destroyed == destroyed0 + 1 && lock.get() == nullptr);
		lock.reset(); // empty: nothing to destroy
		CHECK(destroyed == destroyed0 + 1);
		CHECK(lock.set(2) && lock.get()->serial == 2);
	}
	CHECK(made == made0 + 2 && destroyed == destroyed0 + 2); // the destructor's
#if __cplusplus >= 201703L
	{
		wof::once_lock<tracked> lock;
		CHECK(!lock.take().has_value());
		lock.set("taken", 3);
		std::optional<tracked> t = lock.take();
		CHECK(t && t->name == "taken" && lock.get() == nullptr);
		CHECK(destroyed == destroyed0 + 2); // moved from: the lock's copy is not counted
		CHECK(lock.set(4));
	}
	CHECK(destroyed == destroyed0 + 4); // the taken one and the lock's second
#endif
}

// ---- once_cell -------------------------------------------------------------------------------

void test_cell_basic()
{
	wof::once_cell<std::string> cell;
	int runs = 0;

	CHECK(cell.get() == nullptr);
	std::string &s = cell.get_or_init([&runs] { return ++runs, std::string("first"); });
	CHECK(s == "first" && cell.get() == &s);
	CHECK(&cell.get_or_init([&runs] { return ++runs, std::string("second"); }) == &s);
	CHECK(runs == 1);
	std::string kept(100, 'k');
	CHECK(!cell.set(std::move(kept)) && kept.size() == 100);
	CHECK(!cell.try_insert("x").second);
	CHECK(global_cell.set(5) && *global_cell.get() == 5);

	wof::once_cell<pinned> pins;
	CHECK(pins.set(1, 2) && pins.get()->b == 2);
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

void test_cell_exceptions_and_reentry()
{
	wof::once_cell<fussy> cell;
	bool caught = false;

	try {
		cell.get_or_init([]() -> fussy { throw std::runtime_error("init failed"); });
	} catch (const std::runtime_error &) {
		caught = true;
	}
	CHECK(caught && cell.get() == nullptr);
	caught = false;
	try {
		cell.set(-1);
	} catch (const std::invalid_argument &) {
		caught = true;
	}
	CHECK(caught && cell.get() == nullptr);
	CHECK(cell.set(1) && cell.get()->v == 1); // not EDEADLK: the cell is not left busy

	wof::once_cell<int> again;
	int inner = 0;
	CHECK(again.get_or_init([&] {
		inner = deadlock_code([&] { again.set(1); });
		return 2;
	}) == 2);
	CHECK(inner == EDEADLK);

	wof::lazy_cell<int> lazy([]() -> int { throw std::runtime_error("lazy"); });
	caught = false;
	try {
		lazy.force();
	} catch (const std::runtime_error &) {
		caught = true;
	}
	CHECK(caught && lazy.get() == nullptr);
	caught = false;
	try {
		lazy.force(); // runs init again, which throws again
	} catch (const std::runtime_error &) {
		caught = true;
	}
	CHECK(caught);
}

void test_cell_lifetime()
{
	int made0 = made, destroyed0 = destroyed;
	{
		wof::once_cell<tracked> cell;
		CHECK(cell.set(1));
		cell.reset();
		CHECK(destroyed == destroyed0 + 1 && cell.get() == nullptr);
		CHECK(cell.set(2));
	}
	CHECK(made == made0 + 2 && destroyed == destroyed0 + 2);
#if __cplusplus >= 201703L
	{
		wof::once_cell<tracked> cell;
		cell.set(3);
		std::optional<tracked> t = cell.take();
		CHECK(t && t->serial == 3 && cell.get() == nullptr);
	}
	CHECK(destroyed == destroyed0 + 3);
#endif
}

int lazy_runs;

int make_lazy()
{
	return ++lazy_runs * 10;
}

void test_lazy_cell()
{
	wof::lazy_cell<int> lazy(&make_lazy);
	CHECK(lazy.get() == nullptr && lazy_runs == 0);
	CHECK(lazy.force() == 10 && *lazy == 10 && lazy.get() == &lazy.force());
	CHECK(lazy_runs == 1);

	int calls = 0;
	auto init = [&calls] { return std::string(static_cast<std::size_t>(++calls), 'x'); };
	wof::lazy_cell<std::string, decltype(init)> captured(init);
	CHECK(captured->size() == 1 && captured.force().size() == 1 && calls == 1);
#if defined(__cpp_deduction_guides)
	wof::lazy_cell deduced{[] { return 2.5; }};
	static_assert(std::is_same<decltype(deduced)::value_type, double>::value, "CTAD");
	CHECK(*deduced == 2.5);
#endif

	wof::lazy_cell<int, std::function<int()>> *self = nullptr;
	int inner = 0;
	wof::lazy_cell<int, std::function<int()>> reentrant([&]() -> int {
		inner = deadlock_code([&] { self->force(); });
		return 1;
	});
	self = &reentrant;
	CHECK(reentrant.force() == 1 && inner == EDEADLK);
}

// ---- the C cells from C++: an init that throws (the library's cleanup clears "busy") ----------

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

template <typename F>
bool throws_runtime_error(F f)
{
	try {
		f();
	} catch (const std::runtime_error &) {
		return true;
	}
	return false;
}

void test_c_cells_after_exception()
{
	wof_once_cell_t cell = WOF_ONCE_CELL_INIT;
	void *out = nullptr;

	c_throws_left = 2;
	CHECK(throws_runtime_error([&] { wof_once_cell_get_or_init(&cell, c_init, &c_value); }));
	CHECK(wof_once_cell_get(&cell) == nullptr);
	CHECK(throws_runtime_error(
	        [&] { wof_once_cell_get_or_try_init(&cell, c_try_init, &c_value, &out); }));
	CHECK(wof_once_cell_get(&cell) == nullptr);
	errno = 0;
	CHECK(wof_once_cell_get_or_init(&cell, c_init, &c_value) == &c_value);
	CHECK(errno == 0); // not EDEADLK
	CHECK(wof_once_cell_take(&cell) == &c_value);
	CHECK(wof_once_cell_set(&cell, &c_value) == 0);

	wof_lazy_cell_t lazy = WOF_LAZY_CELL_INIT(c_init, &c_value);
	c_throws_left = 1;
	CHECK(throws_runtime_error([&] { wof_lazy_cell_force(&lazy); }));
	CHECK(wof_lazy_cell_get(&lazy) == nullptr);
	CHECK(wof_lazy_cell_force(&lazy) == &c_value);
	CHECK(wof_lazy_cell_get(&lazy) == &c_value);
}

// ---- fork ------------------------------------------------------------------------------------

int wiped, wiped_serial;
pid_t wiped_pid;

void on_wipe(tracked &stale)
{
	++wiped;
	wiped_pid = stale.pid;
	wiped_serial = stale.serial;
}

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
	if (code != 0)
		std::fprintf(stderr, "test_fork: child exit %d\n", code);
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
			bool threw = false;
			try {
				cell.get_or_init([]() -> int { throw std::runtime_error("c"); });
			} catch (const std::runtime_error &) {
				threw = true;
			}
			CHILD_CHECK(threw && cell.get() == nullptr);
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
	CHECK(test::reap(pid) == 0);
	CHECK(forked.get() != nullptr && *forked.get() == 1);
}

} // namespace

int main()
{
	test_lock_basic();
	test_lock_exceptions();
	test_lock_reentry();
	test_lock_threads();
	test_lock_lifetime();
	test_cell_basic();
	test_cell_exceptions_and_reentry();
	test_cell_lifetime();
	test_lazy_cell();
	test_c_cells_after_exception();
	test_fork();
	test_fork_inside_cell_init();
	return test::report("wof.hpp values");
}
