// SPDX-License-Identifier: MIT
//
// bench-contention: the first call, contended. T threads (2, 8, 32, 64) are released together
// onto a fresh once whose initialiser takes about 50 us -- a busy-wait on CLOCK_MONOTONIC, not a
// sleep, so that it competes for a core as real work would. One thread runs it; the others must
// wait, and the question is how: a good once puts them to sleep (futex, condvar), a bad one lets
// them spin and steal the core the initialiser needs.
//
// Per iteration (one fresh object each; all allocated before the timed loop):
//   wall_us        from the release until the last of the T threads has returned
//   init_us        from the release until the initialiser returned (see slow_init)
//   tail_us        from then until the last thread returned: how fast the waiters are woken
//   waited         how many of the T-1 other threads called while the initialiser ran
//   waiter_cpu_us  CPU time burnt by the T-1 threads that did not run the initialiser, summed
//                  over them; each thread reads CLOCK_THREAD_CPUTIME_ID (the scheduler's
//                  exact runtime, which getrusage(RUSAGE_THREAD) reports rounded to
//                  microseconds) right before its call and right after it
// Counters are medians over the iterations of one repetition, one set per peer; all peers take
// turns on the same pool of threads (see contended()). Every iteration checks that exactly one
// thread ran the initialiser.
//
// The release, in two steps, because waking 64 sleeping threads on two cores takes longer than
// the initialiser runs (about 5 us a thread in this VM), so threads that were merely woken one
// after another would mostly arrive after the initialiser had finished and never contend.
// Between iterations the T threads sleep on a futex word; one FUTEX_WAKE wakes them all, and
// each then checks in at a spin barrier, yielding the core until the last one arrives. That
// one starts the clock and opens the barrier, and every thread calls the once as soon as it is
// next scheduled: all T are runnable and arrive within about one round of the run queue. The
// initialiser runs for 50 us, and holds the once (yielding) until all T threads have entered
// their call if that is later (init_us), so that every one of the T-1 others really waits.
// The barrier's spinning happens before each thread's CPU clock starts.
// The `release_only` row runs the same harness around no call at all: its wall time is the
// harness's own (one round of T threads through two cores), its waiter CPU the clock reads.
//
// Peers: wof_once_call, wof_lazy_lock_force, pthread_once, C11 call_once, std::call_once,
// absl::call_once, and a C++ function-local static. A local static cannot be reset, so it gets
// fresh ones the same way: a pool of distinct statics, one per instantiation of a function
// template (local_static_pool), handed out one per iteration; when the pool runs dry the row
// reports an error rather than reuse one. `spin_yield` is a control: a once whose waiters spin,
// yielding every 100 us, to show what the waiter-CPU column looks like when waiters do not sleep.

#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <wof.h>

#if WOF_BENCH_C11_DIRECT
#include <threads.h>
#endif
#if WOF_BENCH_HAVE_ABSL
#include <absl/base/call_once.h>
#endif

namespace wof_bench {

constexpr int kIterations = 40;      // fresh objects per repetition
constexpr int64_t kInitNs = 50000;   // the initialiser's busy-wait
constexpr size_t kLocalStatics = 2048;

int64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return int64_t{ ts.tv_sec } * 1000000000 + ts.tv_nsec;
}

long futex(std::atomic<uint32_t> *word, int op, uint32_t value)
{
	return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), op, value, nullptr, nullptr,
	               0);
}

// Which thread ran the initialiser this iteration; how many threads have entered their call;
// when the initialiser finished (written by it, read by the main thread after every worker's
// release decrement of the pool's remaining count).
thread_local bool ran_init;
std::atomic<int> entered;
int entering;
int64_t init_end_ns;

// The initialiser: busy for kInitNs; then, if some threads have not yet entered their call, it
// keeps the once running until they have, yielding its core to them meanwhile (a busy wait
// would keep them off it until the next scheduler tick), so that all T-1 others really wait.
// At 64 threads on two cores, reaching every thread takes a few hundred microseconds of
// context switches; init_us reports how long it took.
void slow_init()
{
	ran_init = true;
	int64_t until = now_ns(CLOCK_MONOTONIC) + kInitNs;
	while (now_ns(CLOCK_MONOTONIC) < until) {
	}
	// Relaxed: a count, not a publication.
	while (entered.load(std::memory_order_relaxed) < entering)
		sched_yield();
	init_end_ns = now_ns(CLOCK_MONOTONIC);
}

// Each peer: fresh objects for a repetition, and the call on object i.
struct Peer {
	virtual ~Peer() = default;
	virtual void call(size_t i) = 0;
	virtual bool runs_init() const { return true; }
};

struct WofOnce final : Peer {
	std::unique_ptr<wof_once_t[]> once{ new wof_once_t[kIterations]() };
	static void fn(void *) { slow_init(); }
	void call(size_t i) override { (void)wof_once_call(&once[i], fn, nullptr); }
};

struct WofLazyLock final : Peer {
	static void *init(void *arg)
	{
		slow_init();
		return arg;
	}
	std::unique_ptr<wof_lazy_lock_t[]> lazy{ new wof_lazy_lock_t[kIterations] };
	WofLazyLock()
	{
		static int value;
		for (int i = 0; i < kIterations; i++)
			lazy[i] = wof_lazy_lock_t WOF_LAZY_LOCK_INIT(init, &value);
	}
	void call(size_t i) override { benchmark::DoNotOptimize(wof_lazy_lock_force(&lazy[i])); }
};

struct PosixOnce final : Peer {
	std::unique_ptr<pthread_once_t[]> once{ new pthread_once_t[kIterations] };
	PosixOnce()
	{
		for (int i = 0; i < kIterations; i++)
			once[i] = PTHREAD_ONCE_INIT;
	}
	void call(size_t i) override { (void)pthread_once(&once[i], slow_init); }
};

#if WOF_BENCH_C11_DIRECT
struct C11Once final : Peer {
	std::unique_ptr<once_flag[]> once{ new once_flag[kIterations] };
	C11Once()
	{
		for (int i = 0; i < kIterations; i++)
			once[i] = ONCE_FLAG_INIT;
	}
	void call(size_t i) override { ::call_once(&once[i], slow_init); }
};
#endif

struct StdOnce final : Peer {
	std::unique_ptr<std::once_flag[]> once{ new std::once_flag[kIterations] };
	void call(size_t i) override { std::call_once(once[i], slow_init); }
};

#if WOF_BENCH_HAVE_ABSL
struct AbslOnce final : Peer {
	std::unique_ptr<absl::once_flag[]> once{ new absl::once_flag[kIterations] };
	void call(size_t i) override { absl::call_once(once[i], slow_init); }
};
#endif

// kLocalStatics distinct function-local statics: one per instantiation.
struct Made {
	int serial;
};

template <size_t I> void local_static_call()
{
	static const Made made = [] {
		slow_init();
		return Made{ static_cast<int>(I) };
	}();
	benchmark::DoNotOptimize(&made);
}

template <size_t... I>
constexpr std::array<void (*)(), sizeof...(I)> make_pool(std::index_sequence<I...>)
{
	return { { &local_static_call<I>... } };
}

constexpr auto local_static_pool = make_pool(std::make_index_sequence<kLocalStatics>());
std::atomic<size_t> local_static_next;

struct LocalStatic final : Peer {
	size_t base = local_static_next.fetch_add(kIterations);
	bool exhausted() const { return base + kIterations > kLocalStatics; }
	void call(size_t i) override { local_static_pool[base + i](); }
};

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

// The control: waiters spin on the word (PAUSE) and yield the core after every 100 us of
// spinning, instead of sleeping -- a hand-rolled spin-then-yield once. On a core of its own a
// waiter burns the whole initialiser; sharing one, it burns up to 100 us before letting the
// initialiser (or another waiter) run.
constexpr int64_t kSpinNs = 100000;

struct SpinYield final : Peer {
	std::unique_ptr<std::atomic<int>[]> state{ new std::atomic<int>[kIterations]() };
	void call(size_t i) override
	{
		std::atomic<int> &s = state[i];
		// Acquire: pairs with the release that marks it done.
		if (s.load(std::memory_order_acquire) == 2)
			return;
		int expected = 0;
		if (s.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
			slow_init();
			s.store(2, std::memory_order_release);
			return;
		}
		int64_t yield_at = now_ns(CLOCK_MONOTONIC) + kSpinNs;
		for (unsigned spins = 1; s.load(std::memory_order_acquire) != 2; spins++) {
			cpu_relax();
			if (spins % 64 == 0 && now_ns(CLOCK_MONOTONIC) >= yield_at) {
				sched_yield();
				yield_at = now_ns(CLOCK_MONOTONIC) + kSpinNs;
			}
		}
	}
};

// The harness alone.
struct ReleaseOnly final : Peer {
	void call(size_t) override {}
	bool runs_init() const override { return false; }
};

// T threads parked on a futex, released together onto object `index` of a peer.
class Pool {
public:
	explicit Pool(int threads) : results_(threads)
	{
		for (int t = 0; t < threads; t++)
			threads_.emplace_back();
		for (int t = 0; t < threads; t++) {
			Arg *arg = new Arg{ this, t };
			if (pthread_create(&threads_[t], nullptr, worker, arg) != 0) {
				perror("pthread_create");
				abort();
			}
		}
	}

	~Pool()
	{
		stop_ = true;
		release();
		for (pthread_t &t : threads_)
			pthread_join(t, nullptr);
	}

	struct Sample {
		int64_t wall_ns;
		int64_t waiter_cpu_ns;
		int64_t init_ns; // from the release until the initialiser returned
		int64_t tail_ns; // from then until the last thread returned
		int inits;
		int waited;      // threads that called while the initialiser ran
	};

	// One iteration: release every thread onto object `index` of `peer`, wait until all have
	// returned.
	Sample run(Peer *peer, size_t index)
	{
		int threads = static_cast<int>(threads_.size());
		peer_ = peer;
		index_ = index;
		// Relaxed: published by the release increment of epoch_ below.
		remaining_.store(static_cast<uint32_t>(threads), std::memory_order_relaxed);
		arrived_.store(0, std::memory_order_relaxed);
		entered.store(0, std::memory_order_relaxed);
		entering = threads;
		init_end_ns = 0;
		release();
		uint32_t left;
		// Acquire: pairs with each worker's release decrement, so its result is visible.
		while ((left = remaining_.load(std::memory_order_acquire)) != 0)
			futex(&remaining_, FUTEX_WAIT_PRIVATE, left);
		Sample s{ 0, 0, 0, 0, 0, 0 };
		int64_t start = start_ns_;
		int64_t last = start;
		for (const Result &r : results_) {
			last = std::max(last, r.end_ns);
			if (r.ran_init)
				s.inits++;
			else
				s.waiter_cpu_ns += r.cpu_ns;
		}
		for (const Result &r : results_) {
			if (!r.ran_init && init_end_ns && r.begin_ns < init_end_ns)
				s.waited++;
		}
		s.wall_ns = last - start;
		if (init_end_ns) {
			s.init_ns = init_end_ns - start;
			s.tail_ns = last - init_end_ns;
		}
		return s;
	}

private:
	struct Arg {
		Pool *pool;
		int slot;
	};
	struct alignas(64) Result {
		int64_t begin_ns;
		int64_t end_ns;
		int64_t cpu_ns;
		bool ran_init;
	};

	void release()
	{
		// Release: publishes peer_, index_, stop_ and remaining_ to the woken workers.
		epoch_.fetch_add(1, std::memory_order_release);
		futex(&epoch_, FUTEX_WAKE_PRIVATE, INT_MAX);
	}

	static void *worker(void *p)
	{
		Arg arg = *static_cast<Arg *>(p);
		delete static_cast<Arg *>(p);
		Pool *pool = arg.pool;
		uint32_t seen = 0;
		for (;;) {
			uint32_t now;
			// Acquire: pairs with the release increment in release().
			while ((now = pool->epoch_.load(std::memory_order_acquire)) == seen)
				pool->futex(&pool->epoch_, FUTEX_WAIT_PRIVATE, seen);
			seen = now;
			if (pool->stop_)
				return nullptr;
			pool->check_in(seen);
			ran_init = false;
			// Relaxed: a count for the initialiser's loop.
			entered.fetch_add(1, std::memory_order_relaxed);
			int64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
			int64_t begin = now_ns(CLOCK_MONOTONIC);
			pool->peer_->call(pool->index_);
			int64_t end = now_ns(CLOCK_MONOTONIC);
			int64_t cpu1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
			Result &r = pool->results_[arg.slot];
			r.begin_ns = begin;
			r.end_ns = end;
			r.cpu_ns = cpu1 - cpu0;
			r.ran_init = ran_init;
			// Release: publishes the result; the last one wakes the main thread.
			if (pool->remaining_.fetch_sub(1, std::memory_order_release) == 1)
				pool->futex(&pool->remaining_, FUTEX_WAKE_PRIVATE, 1);
		}
	}

	// The spin barrier: the last of the T threads to arrive starts the clock and opens it.
	void check_in(uint32_t epoch)
	{
		// Relaxed would do for the count; acq_rel keeps the barrier a barrier for readers.
		if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_.size()) {
			start_ns_ = now_ns(CLOCK_MONOTONIC);
			// Release: pairs with the acquire loads below. run() reads start_ns_
			// after this thread's release decrement of remaining_: nothing more needed.
			go_.store(epoch, std::memory_order_release);
			return;
		}
		while (go_.load(std::memory_order_acquire) != epoch)
			sched_yield();
	}

	static long futex(std::atomic<uint32_t> *word, int op, uint32_t value)
	{
		return wof_bench::futex(word, op, value);
	}

	Peer *peer_ = nullptr;
	std::vector<pthread_t> threads_;
	std::vector<Result> results_;
	alignas(64) std::atomic<uint32_t> epoch_{ 0 };
	alignas(64) std::atomic<uint32_t> remaining_{ 0 };
	alignas(64) std::atomic<size_t> arrived_{ 0 };
	alignas(64) std::atomic<uint32_t> go_{ 0 };
	int64_t start_ns_ = 0;
	size_t index_ = 0;
	bool stop_ = false;
};

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Every peer, in the order of the report.
struct Entry {
	const char *name;
	std::unique_ptr<Peer> peer;
	std::vector<double> wall, waiter_cpu, init, tail, waited;
	bool ok = true;
};

std::vector<Entry> make_entries()
{
	std::vector<Entry> e;
	auto add = [&e](const char *name, Peer *peer) {
		e.push_back(Entry{ name, std::unique_ptr<Peer>(peer), {}, {}, {}, {}, {}, true });
	};
	add("wof_once_call", new WofOnce);
	add("wof_lazy_lock_force", new WofLazyLock);
	add("pthread_once", new PosixOnce);
#if WOF_BENCH_C11_DIRECT
	add("c11_call_once", new C11Once);
#endif
	add("std_call_once", new StdOnce);
	add("local_static", new LocalStatic);
#if WOF_BENCH_HAVE_ABSL
	add("absl_call_once", new AbslOnce);
#endif
	add("spin_yield", new SpinYield);
	add("release_only", new ReleaseOnly);
	return e;
}

// One benchmark per T runs every peer, in turn, on one pool of T threads: each iteration gives
// every peer one fresh object, in an order shuffled anew each iteration, so that the peers share
// the threads, their placement on the cores and whatever else the machine is doing, and no peer
// always follows the same one. Counters are named `<peer>.<field>`; the Time column is
// wof_once_call's mean wall time.
void contended(benchmark::State &state)
{
	int threads = static_cast<int>(state.range(0));
	std::vector<Entry> entries = make_entries();
	for (Entry &e : entries) {
		auto *pool_of_statics = dynamic_cast<LocalStatic *>(e.peer.get());
		if (pool_of_statics && pool_of_statics->exhausted()) {
			state.SkipWithError("local_static_pool is used up: fewer repetitions");
			return;
		}
	}
	std::vector<size_t> order(entries.size());
	for (size_t k = 0; k < order.size(); k++)
		order[k] = k;
	std::mt19937 shuffle(static_cast<unsigned>(threads)); // the same orders in every run
	{
		Pool pool(threads);
		size_t i = 0;
		for (auto _ : state) {
			double wof_wall = 0;
			std::shuffle(order.begin(), order.end(), shuffle);
			for (size_t k : order) {
				Entry &e = entries[k];
				Pool::Sample s = pool.run(e.peer.get(), i);
				double wall_us = static_cast<double>(s.wall_ns) * 1e-3;
				if (&e == &entries[0])
					wof_wall = wall_us;
				e.wall.push_back(wall_us);
				e.waiter_cpu.push_back(static_cast<double>(s.waiter_cpu_ns) * 1e-3);
				e.init.push_back(static_cast<double>(s.init_ns) * 1e-3);
				e.tail.push_back(static_cast<double>(s.tail_ns) * 1e-3);
				e.waited.push_back(s.waited);
				if (s.inits != (e.peer->runs_init() ? 1 : 0))
					e.ok = false;
			}
			state.SetIterationTime(wof_wall * 1e-6);
			i++;
		}
	}
	state.counters["threads"] = threads;
	for (Entry &e : entries) {
		if (!e.ok) {
			state.SkipWithError("an initialiser did not run exactly once");
			return;
		}
		std::string n = e.name;
		int waiters = threads - (e.peer->runs_init() ? 1 : 0);
		state.counters[n + ".wall_us"] = median(e.wall);
		state.counters[n + ".waiter_cpu_us"] = median(e.waiter_cpu);
		state.counters[n + ".waiter_cpu_us_per_waiter"] =
			median(e.waiter_cpu) / std::max(waiters, 1);
		state.counters[n + ".init_us"] = median(e.init);
		state.counters[n + ".tail_us"] = median(e.tail);
		state.counters[n + ".waited"] = median(e.waited);
	}
}

[[maybe_unused]] const bool registered = [] {
	benchmark::RegisterBenchmark("contended", contended)
		->Arg(2)
		->Arg(8)
		->Arg(32)
		->Arg(64)
		->Iterations(kIterations)
		->UseManualTime()
		->Unit(benchmark::kMicrosecond);
	return true;
}();

} // namespace wof_bench

BENCHMARK_MAIN();
