// SPDX-License-Identifier: MIT
//
// bench-once: what it costs to ask "has this run yet?" of a once that has already completed --
// the fast path every caller after the first takes. wof_once_call() runs beside the floor (a
// bare inline acquire-load flag) and its peers: pthread_once, C11 call_once, std::call_once, a
// C++ function-local static and absl::call_once, in one binary, so that ratios compare like
// with like (bench/ratios.py prints them). wof_generation(), the out-of-line generation lookup,
// is measured too.
//
// Fairness: every peer's object is a global with external linkage, completed before the timed
// loop, and every iteration is the same statement: `int rc = Peer::call(&object);
// benchmark::DoNotOptimize(rc);`. DoNotOptimize's "memory" clobber makes the compiler reload the
// object each iteration, so no load is hoisted out of the loop. Every peer's fast path is
// whatever its header offers (inline for the flag, wof, the local static and absl; a call into
// libc for pthread_once and C11; libstdc++'s std::call_once is a call to pthread_once).
// The *_via_ptr rows also pass the object through a pointer the compiler cannot see through
// (so wof's NULL test is no longer folded away), identically for the flag and for wof.
//
// Threads(2) runs both threads on the same object. Time is CPU time (the default; the machine
// has two cores and is shared). Google Benchmark 1.7.1 divides rate counters by the CPU time
// summed over all threads, so items_per_second is a per-thread rate; agg_items_per_second
// multiplies it by the thread count: the aggregate throughput of all threads, each on its own
// core, so that "2 threads >= 1.8x one thread" reads straight off that column.
//
// Each initialiser counts its runs; a row whose initialiser did not run exactly once reports
// an error instead of a time.

#include <benchmark/benchmark.h>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include <wof.h>

#if WOF_BENCH_C11_DIRECT
#include <threads.h>
#elif WOF_BENCH_C11_WRAPPER
extern "C" void wof_bench_c11_call_once(void (*fn)(void)); // bench/baseline-c11.c
#endif

#if WOF_BENCH_HAVE_ABSL
#include <absl/base/call_once.h>
#endif

#define WOF_BENCH_NOINLINE __attribute__((__noinline__, __cold__))
#define WOF_BENCH_LIKELY(x) __builtin_expect(!!(x), 1)

namespace wof_bench {

// The objects under test: globals with external linkage, each on its own cache line.
alignas(64) std::atomic<bool> bare_flag{false};
alignas(64) wof_once_t wof_once = WOF_ONCE_INIT;
alignas(64) pthread_once_t posix_once = PTHREAD_ONCE_INIT;
#if WOF_BENCH_C11_DIRECT
alignas(64) once_flag c11_once = ONCE_FLAG_INIT;
#endif
alignas(64) std::once_flag std_once;
#if WOF_BENCH_HAVE_ABSL
alignas(64) absl::once_flag absl_once;
#endif

// How often each initialiser ran; written only on the slow paths.
enum Peer { BARE, WOF, POSIX, C11, STD, LOCAL_STATIC, ABSL, NPEERS };
alignas(64) std::atomic<unsigned> runs[NPEERS];

static unsigned note_run(Peer peer)
{
	// Relaxed: read after the runs it counts, by the thread that completed or waited for them.
	return runs[peer].fetch_add(1, std::memory_order_relaxed) + 1;
}

// 1. The floor: one acquire load and a branch; a mutex-protected slow path out of line.
pthread_mutex_t bare_mutex = PTHREAD_MUTEX_INITIALIZER;

WOF_BENCH_NOINLINE int bare_flag_slow(std::atomic<bool> *flag)
{
	pthread_mutex_lock(&bare_mutex);
	// Relaxed: the mutex orders this load against the store of the thread that set the flag.
	if (!flag->load(std::memory_order_relaxed)) {
		note_run(BARE);
		// Release: pairs with the acquire load of the fast path.
		flag->store(true, std::memory_order_release);
	}
	pthread_mutex_unlock(&bare_mutex);
	return 0;
}

struct BareFlag {
	using Object = std::atomic<bool>;
	static constexpr Peer peer = BARE;
	static Object *object() { return &bare_flag; }
	static int call(Object *flag)
	{
		// Acquire: pairs with the release in bare_flag_slow.
		if (WOF_BENCH_LIKELY(flag->load(std::memory_order_acquire)))
			return 0;
		return bare_flag_slow(flag);
	}
	static void prepare() { (void)call(object()); }
};

// 2. wof.
static void wof_init(void *arg)
{
	(void)arg;
	note_run(WOF);
}

struct WofOnceCall {
	using Object = wof_once_t;
	static constexpr Peer peer = WOF;
	static Object *object() { return &wof_once; }
	static int call(Object *once) { return wof_once_call(once, wof_init, nullptr); }
	static void prepare() { (void)call(object()); }
};

struct WofOnceIsCompleted {
	using Object = wof_once_t;
	static constexpr Peer peer = WOF;
	static Object *object() { return &wof_once; }
	static int call(Object *once) { return wof_once_is_completed(once) ? 0 : 1; }
	static void prepare() { (void)WofOnceCall::call(object()); }
};

// 3. pthread_once.
static void posix_init(void)
{
	note_run(POSIX);
}

struct PosixOnce {
	using Object = pthread_once_t;
	static constexpr Peer peer = POSIX;
	static Object *object() { return &posix_once; }
	static int call(Object *once) { return pthread_once(once, posix_init); }
	static void prepare() { (void)call(object()); }
};

// 4. C11 call_once.
#if WOF_BENCH_C11_DIRECT || WOF_BENCH_C11_WRAPPER
static void c11_init(void)
{
	note_run(C11);
}
#endif

#if WOF_BENCH_C11_DIRECT
struct C11CallOnce {
	using Object = once_flag;
	static constexpr Peer peer = C11;
	static Object *object() { return &c11_once; }
	static int call(Object *once)
	{
		::call_once(once, c11_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#elif WOF_BENCH_C11_WRAPPER
struct C11CallOnce {
	// The once_flag lives in bench/baseline-c11.c; this is only the address the loop passes.
	using Object = int;
	static constexpr Peer peer = C11;
	static Object *object() { return nullptr; }
	static int call(Object *)
	{
		wof_bench_c11_call_once(c11_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#endif

// 5. std::call_once.
static void std_init()
{
	note_run(STD);
}

struct StdCallOnce {
	using Object = std::once_flag;
	static constexpr Peer peer = STD;
	static Object *object() { return &std_once; }
	static int call(Object *once)
	{
		std::call_once(*once, std_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};

// 6. A function-local static with a dynamic initialiser: the compiler's guard variable.
struct Widget {
	unsigned serial;
};

WOF_BENCH_NOINLINE Widget make_widget()
{
	return Widget{ note_run(LOCAL_STATIC) };
}

struct LocalStatic {
	// The guard is the function's own; the loop passes a placeholder like every other peer.
	using Object = int;
	static constexpr Peer peer = LOCAL_STATIC;
	static Object *object() { return nullptr; }
	static int call(Object *)
	{
		static const Widget widget = make_widget();
		(void)widget;
		return 0;
	}
	static void prepare() { (void)call(object()); }
};

// 7. absl::call_once.
#if WOF_BENCH_HAVE_ABSL
static void absl_init()
{
	note_run(ABSL);
}

struct AbslCallOnce {
	using Object = absl::once_flag;
	static constexpr Peer peer = ABSL;
	static Object *object() { return &absl_once; }
	static int call(Object *once)
	{
		absl::call_once(*once, absl_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#endif

// wof_generation(): exported, out of line (a PLT call from here).
struct WofGeneration {
	using Object = int;
	static constexpr Peer peer = NPEERS; // runs nothing
	static Object *object() { return nullptr; }
	static int call(Object *) { return static_cast<int>(wof_generation()); }
	static void prepare() {}
};

static void finish(benchmark::State &state, Peer peer)
{
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
	state.counters["agg_items_per_second"] =
		benchmark::Counter(static_cast<double>(state.iterations()) * state.threads(),
		                   benchmark::Counter::kIsRate);
	if (peer != NPEERS && runs[peer].load(std::memory_order_relaxed) != 1)
		state.SkipWithError("the initialiser did not run exactly once");
}

// The object as its callers name it: a global, whose address the compiler knows.
template <class P> void completed(benchmark::State &state)
{
	P::prepare();
	for (auto _ : state) {
		int rc = P::call(P::object());
		benchmark::DoNotOptimize(rc);
	}
	finish(state, P::peer);
}

// The object through a pointer the compiler cannot see through, laundered every iteration.
template <class P> void completed_via_ptr(benchmark::State &state)
{
	P::prepare();
	for (auto _ : state) {
		typename P::Object *object = P::object();
		benchmark::DoNotOptimize(object);
		int rc = P::call(object);
		benchmark::DoNotOptimize(rc);
	}
	finish(state, P::peer);
}

static void add(const char *name, void (*fn)(benchmark::State &))
{
	benchmark::RegisterBenchmark(name, fn)->Threads(1)->Threads(2);
}

// Registered in this order, which is the order of the report and of bench/ratios.py's table.
[[maybe_unused]] const bool registered = [] {
	add("bare_flag", completed<BareFlag>);
	add("wof_once_call", completed<WofOnceCall>);
	add("wof_once_is_completed", completed<WofOnceIsCompleted>);
	add("pthread_once", completed<PosixOnce>);
#if WOF_BENCH_C11_DIRECT
	add("c11_call_once", completed<C11CallOnce>);
#elif WOF_BENCH_C11_WRAPPER
	add("c11_call_once_wrapped", completed<C11CallOnce>);
#endif
	add("std_call_once", completed<StdCallOnce>);
	add("local_static", completed<LocalStatic>);
#if WOF_BENCH_HAVE_ABSL
	add("absl_call_once", completed<AbslCallOnce>);
#endif
	add("wof_generation", completed<WofGeneration>);
	add("bare_flag_via_ptr", completed_via_ptr<BareFlag>);
	add("wof_once_call_via_ptr", completed_via_ptr<WofOnceCall>);
	return true;
}();

} // namespace wof_bench

BENCHMARK_MAIN();
