/* SPDX-License-Identifier: MIT */
/*
 * A process that dlopen()s libwof, uses it (which registers its atfork handler), dlclose()s
 * it and later forks must not crash in the child: an atfork handler left behind by an
 * unloaded library is a known hazard. libwof is linked with -z nodelete, so dlclose() leaves
 * it loaded and its handler valid; a build without that flag, or a runtime that unloads
 * anyway, must still pass. Then it loads wof again, and a child still gets a new generation
 * (tests/reload.c checks the generations across an unload in detail).
 *
 *   usage: dlopen-fork /path/to/libwof.so      exit 0 passed, 1 failed
 */
#include <dlfcn.h>

#include "wof-test.h" /* its process helpers only: libwof is not linked, but loaded */

struct once {
	uint64_t word;
};

static void nop(void *arg)
{
	(void)arg;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dlopen-fork LIBWOF.so\n");
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	uint32_t (*generation)(void) = (uint32_t(*)(void))dlsym(lib, "wof_generation");
	int (*call_slow)(struct once *, void (*)(void *), void *) =
	        (int (*)(struct once *, void (*)(void *), void *))dlsym(lib,
	                                                            "wof_internal_once_call_slow");
	if (!generation || !call_slow) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	struct once once = { 0 };
	uint32_t before = generation();
	if (before == 0 || call_slow(&once, nop, NULL) != 0) {
		fprintf(stderr, "libwof did not work after dlopen\n");
		return 1;
	}
	if (dlclose(lib) != 0) {
		fprintf(stderr, "dlclose: %s\n", dlerror());
		return 1;
	}
	void *still = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
	bool stayed = still != NULL; /* -z nodelete (or a sanitizer runtime) keeps it loaded */
	if (still)
		dlclose(still);

	pid_t pid = th_fork(TH_FORK);
	if (pid == 0)
		_exit(0);
	int code = th_wait(pid, TH_DEADLINE_S);
	if (code != 0) {
		fprintf(stderr, "a child forked after dlclose(libwof) died: %s%s\n", th_outcome(code),
		        code > 128 && code < TH_HUNG ? " (a stale atfork handler?)" : "");
		return 1;
	}

	/* Load it again: it works, and a child still sees a new generation. */
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return 1;
	generation = (uint32_t(*)(void))dlsym(lib, "wof_generation");
	uint32_t again = generation();
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return 1;
	pid = th_fork(TH_FORK);
	if (pid == 0) {
		uint32_t child = generation();
		ssize_t n = write(pipefd[1], &child, sizeof child);
		_exit(n == sizeof child ? 0 : 3);
	}
	uint32_t child = 0;
	ssize_t n = read(pipefd[0], &child, sizeof child);
	if (th_wait(pid, TH_DEADLINE_S) != 0 || n != sizeof child || child == 0 || child == again) {
		fprintf(stderr, "after reloading: parent generation %u, child %u\n", again, child);
		return 1;
	}
	printf("dlclose (libwof %s) then fork: child fine; reloaded: generations %u -> %u\n",
	       stayed ? "stayed loaded" : "unloaded", again, child);
	dlclose(lib);
	return 0;
}
