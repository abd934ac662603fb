/*
 * SPDX-License-Identifier: MIT
 *
 * A Promela model of wof_once's state word, as src/once.c implements it. Check it with
 * docs/model/verify (spin -a, then a safety search). Each step names the C it models.
 *
 * The word is (wgen, wstate): generation half and state half (the futex word). `cur` is the
 * process's generation (src/generation.c's cell). N thread slots run operations: call with fn
 * succeeding, failing (try_call) or being cancelled, and wait. A thread may fork, also from
 * inside fn; the model then follows the child: `cur` moves on, every other thread vanishes (its
 * `unless` fires) and is reborn as a fresh thread of the child, and the forking thread carries
 * on -- inside fn, if it forked there -- exactly as after fork() in C.
 *
 * Checked:
 *   A1  never two runs in flight for one generation                (assert in run)
 *   A2  at most one successful run per generation (exactly-once)    (assert in run)
 *   A3  a completed once stays completed within a generation        (assert in finish)
 *   A4  only the runner leaves RUNNING                              (assert in finish)
 *   A5  a call or wait that returns 0 without having forked finds   (assert after return)
 *       the once complete in its process
 *   A6  no lost wake-up and no deadlock in a child: when nothing can move, no thread is
 *       parked except wait()ers on a once that is not complete      (monitor, at timeout)
 * Re-entry (EDEADLK) is a thread-local check outside the word and is not modelled.
 *
 * -DBUG_LOST_WAKE, -DBUG_TRUST_STALE, -DBUG_DROP_QUEUED and -DBUG_IGNORE_GENERATION plant
 * known bugs; docs/model/verify checks that each one is caught, so the checks can fail.
 */

#ifndef N
#define N 3             /* thread slots                                   */
#endif
#ifndef MAXFORKS
#define MAXFORKS 2      /* forks along the followed line of descent       */
#endif
#ifndef OPS
#define OPS 2           /* operations per thread life                     */
#endif

#define INCOMPLETE 0
#define RUNNING 1
#define QUEUED 2
#define COMPLETE 4

#define MODE_RUN 0
#define MODE_WAIT 1

byte wgen = 0;                 /* all-zero word: generation 0 is nobody's */
byte wstate = INCOMPLETE;
byte cur = 1;                  /* the followed process's generation       */
byte forks = 0;
bool parked[N];                /* the futex wait queue                    */
byte mode[N];
byte inflight[MAXFORKS + 2];   /* runs in flight, per run generation      */
byte completed[MAXFORKS + 2];  /* successful runs, per run generation     */

/* fork(): the model follows the child; the forker becomes a thread of it. */
inline do_fork()
{
	atomic {
		forks < MAXFORKS;
		forks++;
		cur++;
		myproc = cur;
	}
}

/* wof_internal_unpark_all(): FUTEX_WAKE with INT_MAX. */
inline unpark_all()
{
	d_step {
		i = 0;
		do
		:: i < N -> parked[i] = false; i++
		:: else -> break
		od;
		i = 0
	}
}

/* wof_internal_park(word, expected): FUTEX_WAIT compares the state half only. */
inline park(expected)
{
	atomic {
		if
		:: wstate == (expected) -> parked[_pid] = true
		:: else -> skip          /* EAGAIN: the state moved on */
		fi
	}
end_park:
	!parked[_pid];
	atomic { lg = wgen; ls = wstate }   /* acquire re-load after parking */
}

/* once_finish(once, g, state) */
inline finish(newstate)
{
	atomic {
		if
		:: cur != g -> old = 0   /* forked inside fn: leave the parent's word alone */
		:: else ->
			assert(wgen == g && (wstate & RUNNING));             /* A4 */
			assert(!(wgen == g && wstate == COMPLETE));          /* A3 */
			old = wstate;                                        /* release exchange */
			wgen = g;
			wstate = newstate
		fi
	}
#ifndef BUG_LOST_WAKE
	if
	:: old & QUEUED -> old = 0; unpark_all()
	:: else -> old = 0
	fi
#else
	old = 0
#endif
}

/* once_run(): fn succeeds, fails, or is cancelled (once_abandon); it may fork. */
inline run_fn()
{
	atomic {
		inflight[g]++;
		assert(inflight[g] == 1);                                    /* A1 */
	}
	if
	:: skip
	:: do_fork()            /* fork from inside fn */
	fi;
	if
	:: atomic { inflight[g]--; completed[g]++; assert(completed[g] == 1) };  /* A2 */
	   finish(COMPLETE); rc = 0
	:: atomic { inflight[g]-- }; finish(INCOMPLETE); rc = 1   /* try_call failure */
	:: atomic { inflight[g]-- }; finish(INCOMPLETE); rc = 2   /* cancelled: once_abandon */
	fi
}

/* once_slow(once, mode, ...) */
inline once_slow()
{
	g = cur;
	atomic { lg = wgen; ls = wstate };                       /* acquire load */
	do
	:: true ->
		stale = (lg != g);
#ifndef BUG_TRUST_STALE
		st = (stale -> INCOMPLETE : ls);
#else
		st = ls;
#endif
		if
		:: st == COMPLETE -> rc = 0; break
		:: st & RUNNING ->
			if
			:: !(ls & QUEUED) ->                     /* CAS (g, RUNNING) -> |QUEUED */
				atomic {
					if
					:: wgen == lg && wstate == ls -> wstate = ls | QUEUED; ok = true
					:: else -> lg = wgen; ls = wstate; ok = false
					fi
				}
			:: else -> ok = true
			fi;
			if
			:: ok -> park(ls | QUEUED)
			:: else -> skip
			fi
		:: else ->
			if
			:: mode[_pid] == MODE_RUN ->             /* claim: CAS -> (g, RUNNING[|QUEUED]) */
				atomic {
					if
					:: wgen == lg && wstate == ls ->
						wgen = g;
#ifndef BUG_DROP_QUEUED
						wstate = RUNNING | (stale -> 0 : (ls & QUEUED));
#else
						wstate = RUNNING;
#endif
						ok = true
					:: else -> lg = wgen; ls = wstate; ok = false
					fi
				}
				if
				:: ok -> run_fn(); break
				:: else -> skip
				fi
			:: else ->                               /* MODE_WAIT: CAS -> (g, QUEUED), park */
				atomic {
					if
					:: wgen == g && wstate == QUEUED -> ok = true
					:: wgen == lg && wstate == ls -> wgen = g; wstate = QUEUED; ok = true
					:: else -> lg = wgen; ls = wstate; ok = false
					fi
				}
				if
				:: ok -> park(QUEUED)
				:: else -> skip
				fi
			fi
		fi
	od
}

active [N] proctype thread()
{
	byte myproc, g, lg, ls, st, old, rc, i, ops;
	bool stale, ok;

born:
	atomic { myproc = cur; parked[_pid] = false; ops = 0 }
	{
		do
		:: ops < OPS ->
			ops++;
			if
			:: mode[_pid] = MODE_RUN
			:: mode[_pid] = MODE_WAIT
			:: do_fork(); goto next   /* a fork outside fn */
			fi;
			/* the fast path: one acquire load and a compare */
			if
#ifndef BUG_IGNORE_GENERATION
			:: atomic { wgen == cur && wstate == COMPLETE } -> rc = 0; g = cur
#else
			:: atomic { wstate == COMPLETE } -> rc = 0; g = cur
#endif
			:: else -> once_slow()
			fi;
			/* A5: a 0 return means complete here, unless fn forked under us */
			assert(rc != 0 || g != cur || (wgen == cur && wstate == COMPLETE));
next:			skip;
			d_step { g = 0; lg = 0; ls = 0; st = 0; rc = 0; stale = false; ok = false }
		:: else -> break
		od
	} unless { myproc != cur };
	if
	:: myproc != cur -> goto born   /* vanished in a fork: reborn as a child's thread */
	:: else -> skip
	fi
}

/* A6: when nothing can move, only wait()ers on an incomplete once may still be parked. */
active proctype monitor()
{
	byte j;
end:
	do
	:: timeout ->
		atomic {
			j = 0;
			do
			:: j < N ->
				assert(!parked[j] ||
				       (mode[j] == MODE_WAIT && !(wgen == cur && wstate == COMPLETE)));
				j++
			:: else -> break
			od
		}
		break
	od
}
