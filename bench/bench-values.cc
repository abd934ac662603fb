// SPDX-License-Identifier: MIT
//
// bench-values: the fast paths of wof's value types once their value exists -- what every read
// after the first costs. The thread-safe ones (wof_once_lock_get, wof_lazy_lock_force, the
// accessors of a WOF_LAZY_STATIC, of a lazy global and of a WOF_LAZY_SECRET, and WOF_LAZY_PEEK)
// run against the floor (a bare inline acquire-load flag), pthread_once, the hand-written
// double-checked pointer (one acquire load tested for NULL) and a C++ function-local static
// that holds a value; the single-threaded cells
// (wof_once_cell_get, wof_lazy_cell_force), each a C++ `thread_local` (C's `_Thread_local`), run
// against the same floor and pthread_once and against their per-thread peers: a bare
// thread_local pointer tested for NULL, and a C++ function-local `thread_local` with a dynamic
// initialiser (the compiler's TLS guard).
//
// The harness and the two common baselines are in bench/fastpath.hh, so this binary carries its
// own floor and pthread_once rows and its ratios are taken within one run. Threads(2): the
// thread-safe rows share one object; the per-thread rows each use their own thread's.
//
// Every row returns the value's address (or the value), so each peer also pays for producing
// the pointer a caller would use. Built three ways, as bench-once is (bench/meson.build).

#include "fastpath.hh"

#include <wof.h>

namespace wof_bench {

struct Gadget {
	unsigned serial;
	unsigned payload[15];
};

alignas(64) Gadget gadget_value; // what the pointer-valued types hold

// 2a. The floor for a lazily set value: the hand-written double-checked pointer, one acquire
// load tested for NULL, set under a mutex out of line.
alignas(64) std::atomic<void *> bare_pointer{ nullptr };

WOF_BENCH_NOINLINE void *bare_pointer_slow()
{
	pthread_mutex_lock(&bare_mutex);
	// Relaxed: the mutex orders this load against the store of the thread that set it.
	void *p = bare_pointer.load(std::memory_order_relaxed);
	if (!p) {
		note_run(BARE_POINTER);
		p = &gadget_value;
		// Release: pairs with the acquire load of the fast path.
		bare_pointer.store(p, std::memory_order_release);
	}
	pthread_mutex_unlock(&bare_mutex);
	return p;
}

struct BarePointer {
	using Object = std::atomic<void *>;
	static constexpr Peer peer = BARE_POINTER;
	static Object *object() { return &bare_pointer; }
	static void *call(Object *ptr)
	{
		// Acquire: pairs with the release in bare_pointer_slow.
		void *p = ptr->load(std::memory_order_acquire);
		if (WOF_BENCH_LIKELY(p != nullptr))
			return p;
		return bare_pointer_slow();
	}
	static void prepare() { (void)call(object()); }
};

// 3. wof_once_lock_get: the value set once in this process.
alignas(64) wof_once_lock_t once_lock = WOF_ONCE_LOCK_INIT;

static void *once_lock_init(void *arg)
{
	note_run(WOF_ONCE_LOCK);
	return arg;
}

struct WofOnceLockGet {
	using Object = wof_once_lock_t;
	static constexpr Peer peer = WOF_ONCE_LOCK;
	static Object *object() { return &once_lock; }
	static void *call(Object *lock) { return wof_once_lock_get(lock); }
	static void prepare()
	{
		(void)wof_once_lock_get_or_init(object(), once_lock_init, &gadget_value);
	}
};

// 4. wof_lazy_lock_force: the value with its initialiser.
static void *lazy_lock_init(void *arg)
{
	note_run(WOF_LAZY_LOCK);
	return arg;
}

alignas(64) wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT(lazy_lock_init, &gadget_value);

struct WofLazyLockForce {
	using Object = wof_lazy_lock_t;
	static constexpr Peer peer = WOF_LAZY_LOCK;
	static Object *object() { return &lazy_lock; }
	static void *call(Object *lazy) { return wof_lazy_lock_force(lazy); }
	static void prepare() { (void)call(object()); }
};

// 5. WOF_LAZY_STATIC: a typed value stored inline in static storage, behind its accessor.
static int gadget_init(Gadget *slot)
{
	slot->serial = note_run(WOF_LAZY_STATIC);
	return 0;
}

WOF_LAZY_STATIC(Gadget, lazy_gadget, gadget_init);

struct WofLazyStatic {
	using Object = int; // the accessor names its own storage; the loop passes a placeholder
	static constexpr Peer peer = WOF_LAZY_STATIC;
	static Object *object() { return nullptr; }
	static Gadget *call(Object *) { return lazy_gadget(); }
	static void prepare() { (void)call(object()); }
};

// 5a. A lazy global (WOF_LAZY_GLOBAL_DECLARE in a header, WOF_LAZY_GLOBAL_DEFINE in one file):
// the same fast path as WOF_LAZY_STATIC, on an object with external linkage. Declared and
// defined here; in a program the definition sits in another file of the same executable, which
// changes nothing: the object is at a link-time address either way. WOF_LAZY_PEEK() is the
// accessor without the slow path: the pointer, or NULL before the first init in this process.
WOF_LAZY_GLOBAL_DECLARE(Gadget, global_gadget);

static int global_gadget_init(Gadget *slot)
{
	slot->serial = note_run(WOF_LAZY_GLOBAL);
	return 0;
}

WOF_LAZY_GLOBAL_DEFINE(Gadget, global_gadget, global_gadget_init);

struct WofLazyGlobal {
	using Object = int;
	static constexpr Peer peer = WOF_LAZY_GLOBAL;
	static Object *object() { return nullptr; }
	static Gadget *call(Object *) { return global_gadget(); }
	static void prepare() { (void)call(object()); }
};

// Its caller tests the pointer and has a slow path of its own, as the flag's caller does.
WOF_BENCH_NOINLINE Gadget *peek_fallback()
{
	return global_gadget();
}

struct WofLazyPeek {
	using Object = int;
	static constexpr Peer peer = WOF_LAZY_GLOBAL;
	static Object *object() { return nullptr; }
	static Gadget *call(Object *)
	{
		Gadget *g = WOF_LAZY_PEEK(global_gadget);
		if (WOF_BENCH_LIKELY(g != nullptr))
			return g;
		return peek_fallback();
	}
	static void prepare() { (void)global_gadget(); }
};

// 5b. WOF_LAZY_SECRET: the same typed value, held in secret memory (a block that every forked
// child reads as zeros), behind its accessor: the file-static pointer to the block, tested for
// NULL, then the state half of the block's once word; no generation compare. fastpath.hh has
// no run counter for it, so its rows count the runs here and check them after the loop.
unsigned lazy_secret_runs;

static int secret_gadget_init(Gadget *slot)
{
	slot->serial = ++lazy_secret_runs;
	return 0;
}

WOF_LAZY_SECRET(Gadget, secret_gadget, secret_gadget_init);

struct WofLazySecret {
	using Object = int;
	static constexpr Peer peer = NONE; // counted in lazy_secret_runs instead
	static Object *object() { return nullptr; }
	static Gadget *call(Object *) { return secret_gadget(); }
	static void prepare() { (void)call(object()); }
};

template <void (*Loop)(benchmark::State &)> void lazy_secret_checked(benchmark::State &state)
{
	Loop(state);
	if (lazy_secret_runs != 1)
		state.SkipWithError("the initialiser did not run exactly once");
}

// 6. Its C++ peer: a function-local static with a dynamic initialiser (the guard variable).
WOF_BENCH_NOINLINE Gadget make_gadget()
{
	Gadget g{};
	g.serial = note_run(LOCAL_STATIC_VALUE);
	return g;
}

struct LocalStaticValue {
	using Object = int;
	static constexpr Peer peer = LOCAL_STATIC_VALUE;
	static Object *object() { return nullptr; }
	static const Gadget *call(Object *)
	{
		static const Gadget gadget = make_gadget();
		return &gadget;
	}
	static void prepare() { (void)call(object()); }
};

// 7. The per-thread floor: a thread_local pointer, tested for NULL, filled out of line.
thread_local void *tls_value;

WOF_BENCH_NOINLINE void *tls_value_slow()
{
	note_run(BARE_TLS);
	tls_value = &gadget_value;
	return tls_value;
}

struct BareTls {
	using Object = void *;
	static constexpr Peer peer = BARE_TLS;
	static Object *object() { return &tls_value; }
	static void *call(Object *slot)
	{
		if (WOF_BENCH_LIKELY(*slot != nullptr))
			return *slot;
		return tls_value_slow();
	}
	static void prepare() { (void)call(object()); }
};

// 8. wof_once_cell_get on this thread's cell (set in prepare).
thread_local wof_once_cell_t once_cell = WOF_ONCE_CELL_INIT;

struct WofOnceCellGet {
	using Object = wof_once_cell_t;
	static constexpr Peer peer = WOF_ONCE_CELL;
	static Object *object() { return &once_cell; }
	static void *call(Object *cell) { return wof_once_cell_get(cell); }
	static void prepare()
	{
		if (!call(object()) && wof_once_cell_set(object(), &gadget_value) == 0)
			note_run(WOF_ONCE_CELL);
	}
};

// 9. wof_lazy_cell_force on this thread's cell.
static void *lazy_cell_init(void *arg)
{
	note_run(WOF_LAZY_CELL);
	return arg;
}

thread_local wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT(lazy_cell_init, &gadget_value);

struct WofLazyCellForce {
	using Object = wof_lazy_cell_t;
	static constexpr Peer peer = WOF_LAZY_CELL;
	static Object *object() { return &lazy_cell; }
	static void *call(Object *lazy) { return wof_lazy_cell_force(lazy); }
	static void prepare() { (void)call(object()); }
};

// 10. Their C++ peer: a function-local thread_local with a dynamic initialiser (a TLS guard).
WOF_BENCH_NOINLINE Gadget make_thread_gadget()
{
	Gadget g{};
	g.serial = note_run(CXX_THREAD_LOCAL);
	return g;
}

struct CxxThreadLocal {
	using Object = int;
	static constexpr Peer peer = CXX_THREAD_LOCAL;
	static Object *object() { return nullptr; }
	static const Gadget *call(Object *)
	{
		thread_local const Gadget gadget = make_thread_gadget();
		return &gadget;
	}
	static void prepare() { (void)call(object()); }
};

// Registered in this order, which is the order of the report.
[[maybe_unused]] const bool registered = [] {
	add("bare_flag", completed<BareFlag>);
	add("pthread_once", completed<PosixOnce>);
	add("bare_pointer", completed<BarePointer>);
	add("wof_once_lock_get", completed<WofOnceLockGet>);
	add("wof_lazy_lock_force", completed<WofLazyLockForce>);
	add("wof_lazy_static", completed<WofLazyStatic>);
	add("wof_lazy_global", completed<WofLazyGlobal>);
	add("wof_lazy_peek", completed<WofLazyPeek>);
	add("wof_lazy_secret", lazy_secret_checked<completed<WofLazySecret>>);
	add("local_static_value", completed<LocalStaticValue>);
	add("bare_tls_pointer", completed<BareTls>);
	add("wof_once_cell_get_tls", completed<WofOnceCellGet>);
	add("wof_lazy_cell_force_tls", completed<WofLazyCellForce>);
	add("cxx_thread_local", completed<CxxThreadLocal>);
	add("bare_flag_via_ptr", completed_via_ptr<BareFlag>);
	add("wof_once_lock_get_via_ptr", completed_via_ptr<WofOnceLockGet>);
	add("wof_lazy_lock_force_via_ptr", completed_via_ptr<WofLazyLockForce>);
	add("wof_lazy_cell_force_tls_via_ptr", completed_via_ptr<WofLazyCellForce>);
	add("bare_flag_x8", completed_x8<BareFlag>);
	add("pthread_once_x8", completed_x8<PosixOnce>);
	add("bare_pointer_x8", completed_x8<BarePointer>);
	add("wof_once_lock_get_x8", completed_x8<WofOnceLockGet>);
	add("wof_lazy_lock_force_x8", completed_x8<WofLazyLockForce>);
	add("wof_lazy_static_x8", completed_x8<WofLazyStatic>);
	add("wof_lazy_global_x8", completed_x8<WofLazyGlobal>);
	add("wof_lazy_peek_x8", completed_x8<WofLazyPeek>);
	add("wof_lazy_secret_x8", lazy_secret_checked<completed_x8<WofLazySecret>>);
	add("local_static_value_x8", completed_x8<LocalStaticValue>);
	add("bare_tls_pointer_x8", completed_x8<BareTls>);
	add("wof_once_cell_get_tls_x8", completed_x8<WofOnceCellGet>);
	add("wof_lazy_cell_force_tls_x8", completed_x8<WofLazyCellForce>);
	add("cxx_thread_local_x8", completed_x8<CxxThreadLocal>);
	return true;
}();

} // namespace wof_bench

BENCHMARK_MAIN();
