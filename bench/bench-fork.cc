// SPDX-License-Identifier: MIT
//
// bench-fork: what wof costs around fork().
//
// 1. fork_latency: fork() + the child's _exit(0) + the parent's waitpid(), in a parent that
//    holds 10^6 completed wof_once_t against one that holds 10^6 completed pthread_once_t.
//    Nothing is registered per object and nothing is walked at fork, so the two should cost
//    the same. What fork does cost is copying page tables, so both hold the same resident
//    memory: one 8 MB private anonymous mapping (MADV_NOHUGEPAGE: 4 KiB pages, as in most heaps),
//    written in full -- the wof_once_t array fills it (10^6 x 8 bytes); the pthread_once_t
//    array fills the first half (10^6 x 4 bytes) and a padding array written with ones fills the
//    rest. The `nothing` row forks without that mapping, to show what 8 MB of page tables costs.
//    Every row has called wof_generation() first, so every child runs wof's atfork handler.
//
// 2. child_first_touch: in a child, the first call on each of N = 10^5 objects that the parent
//    completed (and which the child sees wiped) runs the initialiser again; how much does that
//    cost beyond the initialiser itself? The child times, in this order:
//      fn    N calls of the empty initialiser through a pointer the compiler cannot see through
//      cow   one 8-byte store per object into a second array of the same layout that the parent
//            also wrote: the copy-on-write page faults any first write after fork pays
//      obj   the first wof call on each of the N objects, with the same empty initialiser
//    and reports through a pipe. Counters, medians over the forks of one repetition:
//      first_touch_ns  (obj - fn) / N: the first touch per object, minus the initialiser
//      cow_ns          cow / N: the share of that which is copy-on-write faults
//      logic_ns        (obj - fn - cow) / N: the rest, wof's slow path
//    `pthread_once_fresh` is the reference: the first pthread_once() ever on N fresh
//    pthread_once_t (written by the parent, at the same 8-byte stride, never run): what any
//    once pays to run for the first time.
//
// 3. child_first: single first events in a fresh child, each timed with CLOCK_MONOTONIC (minus
//    the clock's own cost) and reported through a pipe; the median over many forks:
//      wof_generation          the first wof_generation() of the child: takes a generation
//      wof_generation_errno_written
//                              the same in a child that has already used errno, so that the
//                              fault that maps libc's __errno_location code page (wof reads
//                              errno to restore it) is not counted
//      wof_once_call           the first wof_once_call() on a once the parent completed
//      cow_store               one store to a page the parent wrote: one copy-on-write fault,
//                              the unit the rows above are made of
//    with minflt, the page faults the event took (getrusage).

#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <wof.h>

namespace wof_bench {

constexpr size_t kForkObjects = 1000000;
constexpr size_t kTouchObjects = 100000;

int64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t{ ts.tv_sec } * 1000000000 + ts.tv_nsec;
}

long minflt()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

[[noreturn]] void die(const char *what)
{
	perror(what);
	abort();
}

// A private anonymous mapping in 4 KiB pages, written in full by its owner.
class Mapping {
public:
	explicit Mapping(size_t bytes) : bytes_(bytes)
	{
		if (!bytes)
			return;
		void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		               -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		(void)madvise(p, bytes, MADV_NOHUGEPAGE);
		base_ = static_cast<unsigned char *>(p);
	}
	~Mapping()
	{
		if (base_)
			munmap(base_, bytes_);
	}
	Mapping(const Mapping &) = delete;
	Mapping &operator=(const Mapping &) = delete;

	unsigned char *get() const { return base_; }
	size_t size() const { return bytes_; }

	// How many of its pages are resident (mincore), to show that both rows hold the same.
	size_t resident_pages() const
	{
		if (!base_)
			return 0;
		size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
		std::vector<unsigned char> vec((bytes_ + page - 1) / page);
		if (mincore(base_, bytes_, vec.data()) != 0)
			die("mincore");
		return static_cast<size_t>(std::count_if(vec.begin(), vec.end(),
		                                         [](unsigned char c) { return c & 1; }));
	}

private:
	unsigned char *base_ = nullptr;
	size_t bytes_;
};

void write_all(int fd, const void *buf, size_t len)
{
	const char *p = static_cast<const char *>(buf);
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(2);
		p += n;
		len -= static_cast<size_t>(n);
	}
}

bool read_all(int fd, void *buf, size_t len)
{
	char *p = static_cast<char *>(buf);
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= static_cast<size_t>(n);
	}
	return true;
}

// Initialisers that do nothing, each called through a pointer the compiler cannot see through.
unsigned long noop_runs;
void noop(void *) { noop_runs++; }
void noop_posix(void) { noop_runs++; }
int lazy_value;
void *noop_lazy(void *) { noop_runs++; return &lazy_value; }

// ---------------------------------------------------------------------------------------------
// 1. fork latency

enum class Holding { NOTHING, WOF_ONCE, PTHREAD_ONCE };

// Fill `m` (or nothing) as the row says; return false if the objects did not complete.
bool hold(Holding holding, Mapping &m)
{
	static_assert(sizeof(wof_once_t) == 8 && sizeof(pthread_once_t) == 4,
	              "the 8 MB mapping holds 10^6 of either");
	(void)wof_generation(); // every row: libwof set up, its atfork handler registered
	if (holding == Holding::WOF_ONCE) {
		auto *once = reinterpret_cast<wof_once_t *>(m.get());
		for (size_t i = 0; i < kForkObjects; i++)
			once[i] = wof_once_t WOF_ONCE_INIT;
		for (size_t i = 0; i < kForkObjects; i++)
			(void)wof_once_call(&once[i], noop, nullptr);
		return wof_once_is_completed(&once[0]) &&
		       wof_once_is_completed(&once[kForkObjects - 1]);
	}
	if (holding == Holding::PTHREAD_ONCE) {
		auto *once = reinterpret_cast<pthread_once_t *>(m.get());
		for (size_t i = 0; i < kForkObjects; i++)
			once[i] = PTHREAD_ONCE_INIT;
		for (size_t i = 0; i < kForkObjects; i++)
			(void)pthread_once(&once[i], noop_posix);
		size_t used = kForkObjects * sizeof(pthread_once_t);
		memset(m.get() + used, 1, m.size() - used); // the padding
	}
	return true;
}

// A process that holds one row's objects and, on each request, forks a child that _exits at
// once, and reports how long fork() + waitpid() took. The holders are forked from this
// (single-threaded) benchmark process, so they start from the same memory, and they are asked
// in turn, so that whatever else the machine is doing falls on all of them alike.
class Holder {
public:
	explicit Holder(Holding holding)
	{
		int up[2], down[2];
		if (pipe(up) != 0 || pipe(down) != 0)
			die("pipe");
		pid_ = fork();
		if (pid_ < 0)
			die("fork");
		if (pid_ == 0) {
			close(up[0]);
			close(down[1]);
			// The other holders' pipe ends: a holder must not keep another one's
			// command pipe open, or that one would never see end of file and exit.
			for (int fd : parent_fds())
				close(fd);
			serve(holding, down[0], up[1]);
		}
		close(up[1]);
		close(down[0]);
		from_ = up[0];
		to_ = down[1];
		parent_fds().push_back(from_);
		parent_fds().push_back(to_);
		int64_t ready = 0;
		ok_ = read_all(from_, &ready, sizeof(ready)) && ready >= 0;
		resident_kib_ = ready;
	}
	~Holder()
	{
		std::vector<int> &fds = parent_fds();
		fds.erase(std::remove_if(fds.begin(), fds.end(),
		                         [this](int fd) { return fd == from_ || fd == to_; }),
		          fds.end());
		close(to_); // the holder exits on end of file
		close(from_);
		int status;
		while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
		}
	}
	Holder(const Holder &) = delete;
	Holder &operator=(const Holder &) = delete;

	bool ok() const { return ok_; }
	int64_t resident_kib() const { return resident_kib_; }

	// One fork in the holder; its latency in ns, or -1.
	int64_t fork_once()
	{
		char go = 'f';
		int64_t ns = -1;
		if (write(to_, &go, 1) != 1 || !read_all(from_, &ns, sizeof(ns)))
			return -1;
		return ns;
	}

private:
	// This process's ends of the pipes of every live holder.
	static std::vector<int> &parent_fds()
	{
		static std::vector<int> fds;
		return fds;
	}

	[[noreturn]] static void serve(Holding holding, int in, int out)
	{
		Mapping m(holding == Holding::NOTHING ? 0 : kForkObjects * sizeof(wof_once_t));
		int64_t ready = hold(holding, m)
			? static_cast<int64_t>(m.resident_pages() *
			                       static_cast<size_t>(sysconf(_SC_PAGESIZE)) / 1024)
			: -1;
		write_all(out, &ready, sizeof(ready));
		char go;
		while (read(in, &go, 1) == 1) {
			int64_t t0 = now_ns();
			pid_t pid = fork();
			if (pid == 0)
				_exit(0);
			int status;
			while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			int64_t t1 = now_ns();
			int64_t ns = pid > 0 ? t1 - t0 : -1;
			write_all(out, &ns, sizeof(ns));
		}
		_exit(0);
	}

	pid_t pid_ = -1;
	int from_ = -1, to_ = -1;
	bool ok_ = false;
	int64_t resident_kib_ = 0;
};

// Three holders of each kind, created in the order of a Latin square (n w p, p n w, w p n), so
// that no kind always takes the same place in the process tree: measured here, where a holder
// was created mattered by up to 10 %, whatever it held. Each iteration forks once in each of
// the nine, in an order that rotates; a kind's latency is the median over its three holders'
// forks. The Time column is the wof holders' mean.
void fork_latency(benchmark::State &state)
{
	static const Holding square[3][3] = {
		{ Holding::NOTHING, Holding::WOF_ONCE, Holding::PTHREAD_ONCE },
		{ Holding::PTHREAD_ONCE, Holding::NOTHING, Holding::WOF_ONCE },
		{ Holding::WOF_ONCE, Holding::PTHREAD_ONCE, Holding::NOTHING },
	};
	std::vector<std::unique_ptr<Holder>> holders;
	std::vector<Holding> kind;
	for (const auto &row : square) {
		for (Holding h : row) {
			holders.emplace_back(new Holder(h));
			kind.push_back(h);
			if (!holders.back()->ok()) {
				state.SkipWithError("a holder could not set up its objects");
				return;
			}
		}
	}
	auto index = [](Holding h) { return static_cast<size_t>(h); };
	std::vector<double> samples[3];
	int64_t resident[3] = { 0, 0, 0 };
	for (size_t h = 0; h < holders.size(); h++)
		resident[index(kind[h])] = holders[h]->resident_kib();
	size_t turn = 0;
	bool ok = true;
	for (auto _ : state) {
		double wof_ns = 0;
		for (size_t k = 0; k < holders.size(); k++) {
			size_t h = (turn + k) % holders.size();
			int64_t ns = holders[h]->fork_once();
			ok = ok && ns > 0;
			samples[index(kind[h])].push_back(static_cast<double>(ns) * 1e-3);
			if (kind[h] == Holding::WOF_ONCE)
				wof_ns += static_cast<double>(ns) / 3;
		}
		turn++;
		state.SetIterationTime(wof_ns * 1e-9);
	}
	if (!ok) {
		state.SkipWithError("fork failed");
		return;
	}
	double w = median(samples[index(Holding::WOF_ONCE)]);
	double p = median(samples[index(Holding::PTHREAD_ONCE)]);
	state.counters["nothing_us"] = median(samples[index(Holding::NOTHING)]);
	state.counters["wof_once_1e6_us"] = w;
	state.counters["pthread_once_1e6_us"] = p;
	state.counters["ratio"] = w / p;
	state.counters["wof_resident_kib"] =
		static_cast<double>(resident[index(Holding::WOF_ONCE)]);
	state.counters["pthread_resident_kib"] =
		static_cast<double>(resident[index(Holding::PTHREAD_ONCE)]);
}

// ---------------------------------------------------------------------------------------------
// 2. the child's first touch of N wiped objects

enum class Touch { WOF_ONCE, WOF_LAZY_LOCK, PTHREAD_FRESH };

struct TouchReport {
	int64_t fn_ns, cow_ns, obj_ns;
	long cow_faults, obj_faults;
	unsigned long runs;
};

// Fork; run `child` in the child, which reports a T through a pipe; return it in the parent.
template <class T, class F> bool in_child(F child, T *report)
{
	int fds[2];
	if (pipe(fds) != 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(fds[0]);
		T r = child();
		write_all(fds[1], &r, sizeof(r));
		_exit(0);
	}
	close(fds[1]);
	bool ok = read_all(fds[0], report, sizeof(*report));
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

template <class Object> Object *at(const Mapping &m, size_t i, size_t stride)
{
	return reinterpret_cast<Object *>(m.get() + i * stride);
}

// The child's side of child_first_touch: time the three loops, in this order.
TouchReport touch_in_child(Touch touch, const Mapping &objects, const Mapping &cow,
                           size_t stride, size_t n)
{
	TouchReport c{};
	void (*volatile fn)(void *) = noop;
	void (*volatile fn_posix)(void) = noop_posix;
	void *(*volatile fn_lazy)(void *) = noop_lazy;
	(void)now_ns();

	int64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		switch (touch) {
		case Touch::WOF_ONCE:
			fn(nullptr);
			break;
		case Touch::WOF_LAZY_LOCK:
			benchmark::DoNotOptimize(fn_lazy(nullptr));
			break;
		case Touch::PTHREAD_FRESH:
			fn_posix();
			break;
		}
	}
	int64_t t1 = now_ns();
	long f0 = minflt();
	for (size_t i = 0; i < n; i++)
		*reinterpret_cast<volatile uint64_t *>(cow.get() + i * stride) = i;
	int64_t t2 = now_ns();
	long f1 = minflt();
	unsigned long runs1 = noop_runs;
	int64_t t3 = now_ns();
	for (size_t i = 0; i < n; i++) {
		switch (touch) {
		case Touch::WOF_ONCE:
			(void)wof_once_call(at<wof_once_t>(objects, i, stride), fn, nullptr);
			break;
		case Touch::WOF_LAZY_LOCK:
			benchmark::DoNotOptimize(
				wof_lazy_lock_force(at<wof_lazy_lock_t>(objects, i, stride)));
			break;
		case Touch::PTHREAD_FRESH:
			(void)pthread_once(at<pthread_once_t>(objects, i, stride), fn_posix);
			break;
		}
	}
	int64_t t4 = now_ns();
	long f2 = minflt();
	c.fn_ns = t1 - t0;
	c.cow_ns = t2 - t1;
	c.obj_ns = t4 - t3;
	c.cow_faults = f1 - f0;
	c.obj_faults = f2 - f1;
	c.runs = noop_runs - runs1;
	return c;
}

void child_first_touch(benchmark::State &state, Touch touch)
{
	(void)wof_generation();
	const size_t stride = touch == Touch::WOF_LAZY_LOCK ? sizeof(wof_lazy_lock_t) : 8;
	const size_t n = kTouchObjects;
	Mapping objects(n * stride), cow(n * stride);
	memset(cow.get(), 1, cow.size());
	memset(objects.get(), 0, objects.size());
	for (size_t i = 0; i < n; i++) {
		switch (touch) {
		case Touch::WOF_ONCE:
			*at<wof_once_t>(objects, i, stride) = wof_once_t WOF_ONCE_INIT;
			(void)wof_once_call(at<wof_once_t>(objects, i, stride), noop, nullptr);
			break;
		case Touch::WOF_LAZY_LOCK:
			*at<wof_lazy_lock_t>(objects, i, stride) =
				wof_lazy_lock_t WOF_LAZY_LOCK_INIT(noop_lazy, nullptr);
			(void)wof_lazy_lock_force(at<wof_lazy_lock_t>(objects, i, stride));
			break;
		case Touch::PTHREAD_FRESH:
			*at<pthread_once_t>(objects, i, stride) = PTHREAD_ONCE_INIT;
			break;
		}
	}

	std::vector<double> first, cow_part, logic, fn_part, obj_faults, cow_faults;
	bool ok = true;
	for (auto _ : state) {
		TouchReport r{};
		auto child = [&]() { return touch_in_child(touch, objects, cow, stride, n); };
		if (!in_child(child, &r) || r.runs != n) {
			ok = false;
			break;
		}
		double dn = static_cast<double>(n);
		state.SetIterationTime(static_cast<double>(r.obj_ns) * 1e-9);
		fn_part.push_back(static_cast<double>(r.fn_ns) / dn);
		first.push_back(static_cast<double>(r.obj_ns - r.fn_ns) / dn);
		cow_part.push_back(static_cast<double>(r.cow_ns) / dn);
		logic.push_back(static_cast<double>(r.obj_ns - r.fn_ns - r.cow_ns) / dn);
		obj_faults.push_back(static_cast<double>(r.obj_faults));
		cow_faults.push_back(static_cast<double>(r.cow_faults));
	}
	if (!ok) {
		state.SkipWithError("the child failed or did not run the initialiser N times");
		return;
	}
	state.counters["objects"] = static_cast<double>(n);
	state.counters["fn_ns"] = median(fn_part);
	state.counters["first_touch_ns"] = median(first);
	state.counters["cow_ns"] = median(cow_part);
	state.counters["logic_ns"] = median(logic);
	state.counters["obj_minflt"] = median(obj_faults);
	state.counters["cow_minflt"] = median(cow_faults);
}

// ---------------------------------------------------------------------------------------------
// 3. single first events in a fresh child

enum class First { WOF_GENERATION, WOF_GENERATION_ERRNO, WOF_ONCE_CALL, COW_STORE };

struct FirstReport {
	int64_t ns;
	long faults;
	uint32_t generation;
};

alignas(4096) wof_once_t parent_once = WOF_ONCE_INIT;
alignas(4096) volatile uint64_t parent_page[512];

// The clock's own cost: the least of a few back-to-back readings.
int64_t clock_cost()
{
	int64_t best = INT64_MAX;
	for (int i = 0; i < 16; i++) {
		int64_t a = now_ns();
		int64_t b = now_ns();
		best = std::min(best, b - a);
	}
	return best;
}

// The child's side of child_first: time one event.
FirstReport first_in_child(First what)
{
	FirstReport c{};
	int64_t cost = clock_cost();
	if (what == First::WOF_GENERATION_ERRNO)
		errno = 0; // calls libc's __errno_location: maps its code page before the clock
	long f0 = minflt();
	int64_t t0 = now_ns();
	switch (what) {
	case First::WOF_GENERATION:
	case First::WOF_GENERATION_ERRNO:
		c.generation = wof_generation();
		break;
	case First::WOF_ONCE_CALL:
		(void)wof_once_call(&parent_once, noop, nullptr);
		break;
	case First::COW_STORE:
		parent_page[1] = 2;
		break;
	}
	int64_t t1 = now_ns();
	long f1 = minflt();
	c.ns = t1 - t0 - cost;
	c.faults = f1 - f0;
	if (what == First::WOF_ONCE_CALL)
		c.generation = wof_once_is_completed(&parent_once) ? wof_generation() : 0;
	return c;
}

void child_first(benchmark::State &state, First what)
{
	uint32_t parent_generation = wof_generation();
	(void)wof_once_call(&parent_once, noop, nullptr);
	parent_page[0] = 1;

	std::vector<double> ns, faults;
	bool ok = true;
	for (auto _ : state) {
		FirstReport r{};
		auto child = [&]() { return first_in_child(what); };
		if (!in_child(child, &r)) {
			ok = false;
			break;
		}
		if ((what != First::COW_STORE) &&
		    (r.generation == 0 || r.generation == parent_generation)) {
			ok = false;
			break;
		}
		state.SetIterationTime(static_cast<double>(r.ns) * 1e-9);
		ns.push_back(static_cast<double>(r.ns));
		faults.push_back(static_cast<double>(r.faults));
	}
	if (!ok) {
		state.SkipWithError("the child failed, or did not see a new generation");
		return;
	}
	state.counters["median_ns"] = median(ns);
	state.counters["minflt"] = median(faults);
}

[[maybe_unused]] const bool registered = [] {
	using benchmark::RegisterBenchmark;
	RegisterBenchmark("fork_latency", fork_latency)
		->UseManualTime()
		->Iterations(100)
		->Unit(benchmark::kMicrosecond);

	auto touch = [](const char *name, Touch t) {
		RegisterBenchmark(name, child_first_touch, t)
			->UseManualTime()
			->Iterations(15)
			->Unit(benchmark::kMicrosecond);
	};
	touch("child_first_touch/wof_once_call", Touch::WOF_ONCE);
	touch("child_first_touch/wof_lazy_lock_force", Touch::WOF_LAZY_LOCK);
	touch("child_first_touch/pthread_once_fresh", Touch::PTHREAD_FRESH);

	auto first = [](const char *name, First f) {
		RegisterBenchmark(name, child_first, f)
			->UseManualTime()
			->Iterations(300)
			->Unit(benchmark::kNanosecond);
	};
	first("child_first/wof_generation", First::WOF_GENERATION);
	first("child_first/wof_generation_errno_written", First::WOF_GENERATION_ERRNO);
	first("child_first/wof_once_call", First::WOF_ONCE_CALL);
	first("child_first/cow_store", First::COW_STORE);
	return true;
}();

} // namespace wof_bench

BENCHMARK_MAIN();
