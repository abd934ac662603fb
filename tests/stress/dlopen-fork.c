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
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct once {
	uint64_t word;
};

static void nop(void *arg)
{
	(void)arg;
}

/* Fork; the child runs `child` and exits with its result. The child's status, or -1. */
static int fork_and_wait(int (*child)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(10);
		_exit(child(arg));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static int nothing(void *arg)
{
	(void)arg;
	return 0;
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

	int status = fork_and_wait(nothing, NULL);
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "a child forked after dlclose(libwof) died: status %#x%s\n", status,
		        WIFSIGNALED(status) ? " (signal: a stale atfork handler?)" : "");
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
	pid_t pid = fork();
	if (pid == 0) {
		uint32_t child = generation();
		ssize_t n = write(pipefd[1], &child, sizeof child);
		_exit(n == sizeof child ? 0 : 3);
	}
	uint32_t child = 0;
	ssize_t n = read(pipefd[0], &child, sizeof child);
	waitpid(pid, &status, 0);
	if (n != sizeof child || child == 0 || child == again || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "after reloading: parent generation %u, child %u\n", again, child);
		return 1;
	}
	printf("dlclose (libwof %s) then fork: child fine; reloaded: generations %u -> %u\n",
	       stayed ? "stayed loaded" : "unloaded", again, child);
	dlclose(lib);
	return 0;
}
