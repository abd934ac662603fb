/* SPDX-License-Identifier: MIT */
/*
 * libwof unloaded and loaded again keeps its promises:
 *
 *   generation  A process loads libwof, takes its generation g, completes a once, unloads
 *               libwof and forks. The child loads libwof again: its generation is not g (a
 *               fresh copy of the library would start counting from scratch and hand the child
 *               its parent's value). The parent loads it again: its generation is still g and
 *               the once is still complete (a generation is constant within a process).
 *   maps        Loading, using (wof_generation) and unloading libwof CYCLES times does not
 *               grow the process's memory map (a library that maps memory of its own on first
 *               use leaks it on every load if it is unloaded).
 *
 *   usage: reload /path/to/libwof.so [CYCLES]      exit 0 passed, 1 failed
 *
 * It must not link libwof (or anything that does), or the library would never be unloaded:
 * of the test library it uses the process helpers only, which need nothing of libwof.
 */
#include <dlfcn.h>

#include "wof-test.h"

struct once {
	uint64_t word;
};

struct lib {
	void *handle;
	uint32_t (*generation)(void);
	int (*call_slow)(struct once *, void (*)(void *), void *);
};

static const char *path;

/* Loads libwof by path; false (with a message) if it cannot. */
static bool load(struct lib *lib)
{
	lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return false;
	}
	*(void **)&lib->generation = dlsym(lib->handle, "wof_generation");
	*(void **)&lib->call_slow = dlsym(lib->handle, "wof_internal_once_call_slow");
	if (!lib->generation || !lib->call_slow) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return false;
	}
	return true;
}

static bool unload(struct lib *lib)
{
	if (dlclose(lib->handle) != 0) {
		fprintf(stderr, "dlclose: %s\n", dlerror());
		return false;
	}
	lib->handle = NULL;
	return true;
}

static int runs;

static void count(void *arg)
{
	(void)arg;
	runs++;
}

static int report_fd;

/* The child: load libwof again and report the generation it gets (0: could not load). */
static int child_reload(void *arg)
{
	struct lib lib;
	uint32_t gen = 0;

	(void)arg;
	if (load(&lib))
		gen = lib.generation();
	return write(report_fd, &gen, sizeof gen) == (ssize_t)sizeof gen ? 0 : 1;
}

static int generation_scenario(void)
{
	struct lib lib;
	struct once once = { 0 };
	uint32_t g, child_gen = 0;
	int fds[2], code;

	if (!load(&lib))
		return 1;
	g = lib.generation();
	if (g == 0 || lib.call_slow(&once, count, NULL) != 0 || runs != 1) {
		fprintf(stderr, "libwof did not work after dlopen\n");
		return 1;
	}
	if (!unload(&lib))
		return 1;
	void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	printf("after dlclose, libwof is %s\n", still ? "still loaded" : "unloaded");
	if (still)
		dlclose(still);

	if (pipe(fds) != 0)
		return 1;
	report_fd = fds[1];
	code = th_wait(th_spawn(TH_FORK, child_reload, NULL), TH_DEADLINE_S);
	close(fds[1]);
	if (code != 0 || read(fds[0], &child_gen, sizeof child_gen) != (ssize_t)sizeof child_gen ||
	    child_gen == 0) {
		fprintf(stderr, "the child could not load libwof again (%s)\n", th_outcome(code));
		return 1;
	}
	close(fds[0]);
	if (child_gen == g) {
		fprintf(stderr, "a child that loaded libwof again got its parent's generation %u: it "
		                "would take the parent's objects for its own\n",
		        g);
		return 1;
	}

	if (!load(&lib))
		return 1;
	uint32_t again = lib.generation();
	if (again != g) {
		fprintf(stderr, "loaded again in the same process: generation %u, was %u\n", again,
		        g);
		return 1;
	}
	if (lib.call_slow(&once, count, NULL) != 0 || runs != 1) {
		fprintf(stderr, "loaded again in the same process: a once completed before the "
		                "dlclose ran again\n");
		return 1;
	}
	unload(&lib);
	printf("generation: parent %u before and after reloading, the child that reloaded %u\n",
	       g, child_gen);
	return 0;
}

/* Lines of /proc/self/maps and the bytes they map; false when there is no such file. */
static bool maps(long *lines, unsigned long *bytes)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long start, end;
	char line[512];

	if (!f)
		return false;
	*lines = 0;
	*bytes = 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx", &start, &end) == 2)
			*bytes += end - start;
		if (strchr(line, '\n'))
			++*lines;
	}
	fclose(f);
	return true;
}

static bool cycle(void)
{
	struct lib lib;

	return load(&lib) && lib.generation() != 0 && unload(&lib);
}

/* Slack for the C library's own bookkeeping (dlerror buffers, malloc's heap). */
#define MAPS_SLACK_BYTES (64 * 1024ul)

/* Sanitizer runtimes map shadow memory as the process runs: only the mappings count there. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MAPS_BYTES_COUNT 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define MAPS_BYTES_COUNT 0
#endif
#endif
#ifndef MAPS_BYTES_COUNT
#define MAPS_BYTES_COUNT 1
#endif

static int maps_scenario(int cycles)
{
	long before, after;
	unsigned long bytes_before, bytes_after;

	if (!cycle()) /* the first load maps what every later one reuses */
		return 1;
	if (!maps(&before, &bytes_before)) {
		printf("maps: no /proc/self/maps here: not checked\n");
		return 0;
	}
	for (int i = 0; i < cycles; i++)
		if (!cycle())
			return 1;
	maps(&after, &bytes_after);
	printf("maps: %d dlopen/wof_generation/dlclose cycles: %ld -> %ld mappings, %lu -> %lu "
	       "KiB\n",
	       cycles, before, after, bytes_before / 1024, bytes_after / 1024);
	if (after > before || (MAPS_BYTES_COUNT && bytes_after > bytes_before + MAPS_SLACK_BYTES)) {
		fprintf(stderr, "%ld more mappings, %ld KiB more mapped after %d cycles: each load "
		                "leaks memory\n",
		        after - before, ((long)bytes_after - (long)bytes_before) / 1024, cycles);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: reload LIBWOF.so [CYCLES]\n");
		return 2;
	}
	path = argv[1];
	int cycles = argc > 2 ? atoi(argv[2]) : 1000;
	if (cycles < 1) {
		fprintf(stderr, "bad count '%s'\n", argv[2]);
		return 2;
	}
	int failed = generation_scenario();
	failed |= maps_scenario(cycles);
	return failed ? 1 : 0;
}
