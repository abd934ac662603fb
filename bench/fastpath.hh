// SPDX-License-Identifier: MIT
//
// The fast-path harness shared by bench-once.cc and bench-values.cc: the floor (a bare inline
// acquire-load flag), pthread_once, the run counters and the three timed loops. Each of those
// programs includes this once, so that every fast-path binary carries its own floor and
// pthread_once rows and its ratios are always taken within one run of one binary.
//
// Fairness: every object is a global (or thread_local) completed before the timed loop, and
// every iteration is the same statement: `auto rc = Peer::call(object); use(rc);`. use()'s
// "memory" clobber makes the compiler reload the object each iteration, so no load is hoisted
// out of the loop, and its "r" constraint makes it produce the result in a register, as a
// caller that uses the value would. (benchmark::DoNotOptimize's "+m,r" is not enough: with
// gcc 12 the loop of wof_once_cell_get, whose value is returned untested, had no load of the
// value at all, a load that every real caller pays.) The
// *_via_ptr loops also pass the object through a pointer the compiler cannot see through (so
// a NULL test is no longer folded away).
//
// Time is CPU time (the default; the machine has two cores and is shared). Google Benchmark
// 1.7.1 divides rate counters by the CPU time summed over all threads, so items_per_second is a
// per-thread rate; agg_items_per_second multiplies it by the thread count: the aggregate
// throughput of all threads, each on its own core.
#pragma once

#include <benchmark/benchmark.h>

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#define WOF_BENCH_NOINLINE __attribute__((__noinline__, __cold__))
#define WOF_BENCH_LIKELY(x) __builtin_expect(!!(x), 1)

namespace wof_bench {

// How often each initialiser ran; written only on the slow paths. A benchmark whose initialiser
// did not run exactly once (per thread, for the per-thread rows) reports an error, not a time.
enum Peer : unsigned {
	BARE, POSIX, WOF, C11, STD, LOCAL_STATIC, ABSL,
	WOF_ONCE_LOCK, WOF_LAZY_LOCK, WOF_LAZY_STATIC, WOF_LAZY_GLOBAL, LOCAL_STATIC_VALUE,
	BARE_POINTER,
	NPEERS,
	// Per-thread rows: counted in thread_runs, once per thread.
	PER_THREAD_FIRST = 32,
	BARE_TLS = PER_THREAD_FIRST, WOF_ONCE_CELL, WOF_LAZY_CELL, CXX_THREAD_LOCAL,
	NPER_THREAD,
	NONE = 64, // runs nothing
};

alignas(64) inline std::atomic<unsigned> runs[NPEERS];
inline thread_local unsigned thread_runs[NPER_THREAD - PER_THREAD_FIRST];

inline unsigned note_run(Peer peer)
{
	if (peer >= PER_THREAD_FIRST)
		return ++thread_runs[peer - PER_THREAD_FIRST];
	// Relaxed: read after the runs it counts, by the thread that completed or waited for them.
	return runs[peer].fetch_add(1, std::memory_order_relaxed) + 1;
}

// 1. The floor: one acquire load and a branch; a mutex-protected slow path out of line.
alignas(64) inline std::atomic<bool> bare_flag{false};
inline pthread_mutex_t bare_mutex = PTHREAD_MUTEX_INITIALIZER;

WOF_BENCH_NOINLINE inline int bare_flag_slow(std::atomic<bool> *flag)
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

// 2. pthread_once: a call into libc (through the PLT).
alignas(64) inline pthread_once_t posix_once = PTHREAD_ONCE_INIT;

inline void posix_init(void)
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

// The caller uses the result: it is in a register, and memory may have changed.
template <class T> inline __attribute__((__always_inline__)) void use(T value)
{
	__asm__ __volatile__("" : : "r"(value) : "memory");
}

inline void finish(benchmark::State &state, Peer peer)
{
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
	state.counters["agg_items_per_second"] =
		benchmark::Counter(static_cast<double>(state.iterations()) * state.threads(),
		                   benchmark::Counter::kIsRate);
	unsigned ran = 0;
	if (peer < NPEERS)
		ran = runs[peer].load(std::memory_order_relaxed);
	else if (peer >= PER_THREAD_FIRST && peer < NPER_THREAD)
		ran = thread_runs[peer - PER_THREAD_FIRST];
	if (peer != NONE && ran != 1)
		state.SkipWithError("the initialiser did not run exactly once");
}

// The object as its callers name it: a global, whose address the compiler knows.
template <class P> void completed(benchmark::State &state)
{
	P::prepare();
	for (auto _ : state) {
		use(P::call(P::object()));
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
		use(P::call(object));
	}
	finish(state, P::peer);
}

// Straight-line code: kUnroll calls per iteration, each inlined fast path falling through to
// the next, as in a function that checks several onces or one once in a long body. A one-call
// loop is bound by its own taken branch (about a cycle per iteration), which hides up to a
// cycle of work per call; here the cost is the fast path's own instructions. Rows named
// `<name>_x8`; bench/ratios.py and bench/report divide their times by kUnroll, so they read
// per call, and take their ratios against `bare_flag_x8` and `pthread_once_x8`.
constexpr size_t kUnroll = 8;

template <class P, size_t... I>
inline __attribute__((__always_inline__)) void calls(std::index_sequence<I...>)
{
	(((void)I, use(P::call(P::object()))), ...);
}

template <class P> void completed_x8(benchmark::State &state)
{
	P::prepare();
	for (auto _ : state)
		calls<P>(std::make_index_sequence<kUnroll>());
	finish(state, P::peer);
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kUnroll));
	double calls = static_cast<double>(state.iterations() * kUnroll);
	state.counters["agg_items_per_second"] =
		benchmark::Counter(calls * state.threads(), benchmark::Counter::kIsRate);
}

// Every fast path runs with one thread and with two on the same object (or each on its own,
// for the per-thread rows).
inline void add(const char *name, void (*fn)(benchmark::State &))
{
	benchmark::RegisterBenchmark(name, fn)->Threads(1)->Threads(2);
}

} // namespace wof_bench
