/*
 * SPDX-License-Identifier: MIT
 *
 * A Promela model of wof_once's state word, as src/once.c implements it. Check it with
 * docs/model/verify (spin -a, then a safety search). Each step names the C it models.
 *
 * The word is (wgen, wstate): generation half and state half. `cur` is the
 * process's generation (src/generation.c, the fork page); a process is named by its generation.
 * N thread slots run operations: call with fn succeeding, failing (try_call) or being
 * cancelled, and wait.
 *
 * Fork comes from a signal handler, so it may happen at any step of any thread: the `forker`
 * process picks a live thread at any moment and forks on its behalf. The model then follows
 * the child: `cur` moves on, the forking thread carries on in the child exactly where it was,
 * with all its locals (a generation and a word it read in the parent, a claim it made there,
 * a park it was in), and every other thread vanishes (its `unless` fires) and is reborn as a
 * fresh thread of the child once the forking thread runs code of its own again (outside wof,
 * or in fn): a child's other threads are made by that thread. A fork inside fn is one such
 * step.
 *
 * Parking is Linux's (src/park.c): a thread reads its bucket's event count, checks the word,
 * and sleeps on the count; a waker changes the word, moves the count on and wakes everyone on
 * it. The count lives in the fork page and reads 0 in a child, so a sleep that a fork carried
 * into the child returns when the kernel restarts it there (the signal's return): the model
 * lets a parked thread go when its process has forked since it parked and the count differs.
 * A thread that then keeps parking on a stale generation hangs, as it would in C, and A6 sees
 * it. Elsewhere a 50 ms bound ends such a sleep instead (not modelled: it is -DSPURIOUS's
 * early return). With -DSPURIOUS a park may also return at any other moment (EINTR, spurious
 * wake-ups); the default leaves that out so that a lost wake-up stays a deadlock that A6 sees,
 * rather than a stall. After every park, and between a successful claim and
 * fn (start(), just before it calls fn; the wipe hook that may come first is not modelled), the
 * thread reads the generation again; that second read is where fn starts: a fork after it is
 * a fork inside fn.
 *
 * Checked (runs are counted by the process in which fn started):
 *   A1  never two runs of fn in flight that started in the same process    (assert in start)
 *   A2  at most one successful run of fn started in each process           (assert in run)
 *       -- so a run claimed in a parent whose fn had not started when the process forked
 *       runs once in the child, never twice
 *   A3  a completed once stays completed within a generation              (assert in finish)
 *   A4  only the runner leaves RUNNING                                    (assert in finish)
 *   A5  a call or wait that returns 0 with its process's generation      (assert after return)
 *       finds the once complete there
 *   A6  no lost wake-up and no hang in a child: when nothing can move, no thread is parked
 *       except wait()ers on a once that is not complete                   (monitor, at timeout)
 *   A7  no thread parks twice on the same stale generation: one that a fork carried into a
 *       child looks at the generation again before it parks again (in C it would otherwise
 *       spin there for ever, since a park on a stale generation returns at once)  (in park)
 * Re-entry (EDEADLK) is a thread-local check outside the word and is not modelled.
 *
 * Planted bugs, each of which docs/model/verify checks is caught, so the checks can fail:
 *   -DBUG_LOST_WAKE           the runner never wakes parked threads
 *   -DBUG_TRUST_STALE         a stale word's state is believed
 *   -DBUG_DROP_QUEUED         a claim drops QUEUED
 *   -DBUG_IGNORE_GENERATION   the fast path ignores the generation
 *   -DBUG_NO_REREAD_PARK      the generation is not read again after a park: a thread a fork
 *                             carried into a child while it slept spins there for ever (A7)
 *   -DBUG_NO_REREAD_CLAIM     the generation is not read again after a claim: a run claimed
 *                             in the parent runs in the child on a stale claim, and again
 *   -DBUG_PARK_NO_COUNT       a parker checks the word and sleeps without the event count:
 *                             a wake-up between the check and the sleep is lost
 *   -DBUG_COUNT_SURVIVES_FORK the event count does not read 0 in a child: a sleep that a fork
 *                             carried into the child, restarted there, never ends
 *   -DBUG_PARK_NO_PAGE_CHECK  a parker does not check the page's generation: a fork between
 *                             its last generation read and its count read leaves it asleep in
 *                             the child, on a count the child's reset came too early for
 */

#ifndef N
#define N 3             /* thread slots (1..3)                            */
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
byte proc_of[N];               /* the process each thread belongs to      */
byte survivor = N;             /* the thread that forked last (N: none)   */
bool in_wof[N];                /* in a wof call, outside fn               */
bool parked[N];                /* the futex wait queue                    */
byte ec = 0;                   /* the bucket's event count, in the fork page */
byte seen[N];                  /* the count each thread read in park (0: none) */
byte mode[N];
byte inflight[MAXFORKS + 2];   /* runs of fn in flight, per starting process  */
byte succeeded[MAXFORKS + 2];  /* successful runs of fn, per starting process */

/* wof_internal_unpark_all(): the count moves on (release; never to 0), then FUTEX_WAKE with
 * INT_MAX on it. */
inline unpark_all()
{
	/* The count's value matters only against what parkers read: with none holding one, it
	 * is 1 (any nonzero value acts alike), which keeps the state space small. */
	d_step {
		i = 0;
		do
		:: i < N && seen[i] == 0 -> i++
		:: i < N && seen[i] != 0 -> break
		:: else -> break
		od;
		if
		:: i == N -> ec = 1
		:: else -> ec = (ec == 255 -> 1 : ec + 1)
		fi;
		i = 0
	}
	d_step {
		i = 0;
		do
		:: i < N -> parked[i] = false; i++
		:: else -> break
		od;
		i = 0
	}
}

/*
 * wof_internal_park(word, expected) on Linux: read the bucket's event count (acquire; 0 is
 * first made 1), check that the word is still (g, expected) and the fork page's generation
 * still g (a fork before the count was read), then FUTEX_WAIT on the count: the
 * kernel compares it with what was read and queues the thread, in one step. Three steps, as in
 * C. A parked thread returns when woken, or when a signal makes the kernel compare again (a
 * restarted wait) and the count has moved on: in a child, where it reads 0, it always has.
 */
inline park(expected)
{
	if                                   /* A7: no second park on one stale generation */
	:: g != cur -> assert(sg != g); sg = g
	:: else -> skip
	fi;
	atomic { seen[_pid] = ec; if :: seen[_pid] == 0 -> ec = 1; seen[_pid] = 1 :: else -> skip fi }
	if
	:: wgen == g && wstate == (expected) ->
		if
#ifndef BUG_PARK_NO_PAGE_CHECK
		:: cur == g ->                       /* the page's generation is still ours */
#else
		:: true ->
#endif
#ifndef BUG_PARK_NO_COUNT
			atomic { if :: ec == seen[_pid] -> parked[_pid] = true :: else -> skip fi }
#else
			parked[_pid] = true
#endif
		:: else -> skip  /* forked before the count was read: no sleep */
		fi
	:: else -> skip          /* the word moved on: no sleep */
	fi;
end_park:
	if
	:: !parked[_pid]                                      /* woken */
	:: atomic { parked[_pid] && g != cur && ec != seen[_pid] ->
		parked[_pid] = false }                        /* restarted in a child: count 0 */
#ifdef SPURIOUS
	:: parked[_pid] -> parked[_pid] = false               /* EINTR, or a spurious wake-up */
#endif
	fi;
	seen[_pid] = 0;
	atomic { lg = wgen; ls = wstate }   /* acquire re-load after parking */
}

/* finish(once, g, state) */
inline finish(newstate)
{
	if
	:: cur != g -> old = 0   /* forked inside fn: leave the parent's word alone */
	:: else ->
		atomic {
			assert(wgen == g && (wstate & RUNNING));             /* A4 */
			assert(!(wgen == g && wstate == COMPLETE));          /* A3 */
			old = wstate;                                        /* release exchange */
			wgen = g;
			wstate = newstate
		}
	fi;
#ifndef BUG_LOST_WAKE
	if
	:: old & QUEUED -> old = 0; unpark_all()
	:: else -> old = 0
	fi
#else
	old = 0
#endif
}

/* fn's first step, in the process it starts in: from here to its return, user code runs. */
inline start()
{
	fnproc = cur;
	inflight[fnproc]++;
	assert(inflight[fnproc] == 1);                                       /* A1 */
	in_wof[_pid] = false
}

/* run(): fn succeeds, fails, or is cancelled (abandon). Forks may come at any step. */
inline run_fn()
{
	if
	:: atomic { in_wof[_pid] = true; inflight[fnproc]--; succeeded[fnproc]++;
	            assert(succeeded[fnproc] == 1) };                        /* A2 */
	   finish(COMPLETE); rc = 0
	:: atomic { in_wof[_pid] = true; inflight[fnproc]-- };
	   finish(INCOMPLETE); rc = 1                                  /* try_call failure */
	:: atomic { in_wof[_pid] = true; inflight[fnproc]-- };
	   finish(INCOMPLETE); rc = 2                                  /* cancelled: abandon */
	fi
}

/* `gen = wof_internal_generation()` after a park (queue_and_park) */
inline reread_after_park()
{
#ifndef BUG_NO_REREAD_PARK
	g = cur
#else
	skip
#endif
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
		:: st & RUNNING ->                       /* queue_and_park(word | QUEUED) */
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
			fi;
			reread_after_park()
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
				:: ok ->
#ifndef BUG_NO_REREAD_CLAIM
					/* the generation read again: fn starts here, or the claim
					 * belongs to a parent and is made again in this process */
					atomic {
						if
						:: cur != g -> moved = true
						:: else -> moved = false; start()
						fi
					}
#else
					atomic { moved = false; start() }
#endif
					if
					:: moved ->
						moved = false;
						g = cur;
						atomic { lg = wgen; ls = wstate }
					:: else -> run_fn(); break
					fi
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
				fi;
				reread_after_park()
			fi
		fi
	od
}

active [N] proctype thread()
{
	byte g, lg, ls, st, old, rc, i, ops, fnproc, sg;
	bool stale, ok, moved;

	/* A child's other threads are made by the thread that forked, once it runs code of its
	 * own again (outside wof, or in fn): until then the child has that thread alone. */
end_born:
	atomic {
		(survivor == N || !in_wof[survivor]) ->
		proc_of[_pid] = cur; parked[_pid] = false; in_wof[_pid] = false; ops = 0; seen[_pid] = 0; sg = 0
	}
	{
		do
		:: ops < OPS ->
			atomic {
				ops++;
				in_wof[_pid] = true;
				if
				:: mode[_pid] = MODE_RUN
				:: mode[_pid] = MODE_WAIT
				fi
			}
			/* the fast path: one acquire load and a compare */
			if
#ifndef BUG_IGNORE_GENERATION
			:: atomic { wgen == cur && wstate == COMPLETE -> rc = 0; g = cur }
#else
			:: atomic { wstate == COMPLETE -> rc = 0; g = cur }
#endif
			:: else -> once_slow()
			fi;
			/* A5: a 0 return with this process's generation means complete here */
			assert(rc != 0 || g != cur || (wgen == cur && wstate == COMPLETE));
			d_step {
				in_wof[_pid] = false;
				g = 0; lg = 0; ls = 0; st = 0; rc = 0; fnproc = 0; sg = 0;
				stale = false; ok = false
			}
		:: else -> break
		od
	} unless { proc_of[_pid] != cur };
	if
	:: proc_of[_pid] != cur ->    /* vanished in a fork: reborn as a child's thread */
		d_step {
			parked[_pid] = false; in_wof[_pid] = false;
			g = 0; lg = 0; ls = 0; st = 0; old = 0; rc = 0; i = 0; fnproc = 0; seen[_pid] = 0; sg = 0;
			stale = false; ok = false; moved = false
		}
		goto end_born
	:: else -> skip
	fi
}

/* A fork from a signal handler of thread t, at whatever step t is: the model follows the
 * child; t carries on in it, every other thread vanishes. Declared after the threads, so that
 * their _pid are 0..N-1. */
active proctype forker()
{
	byte t;
end:
	do
	:: forks < MAXFORKS ->
		atomic {
			if
			:: proc_of[0] == cur -> t = 0
#if N > 1
			:: proc_of[1] == cur -> t = 1
#endif
#if N > 2
			:: proc_of[2] == cur -> t = 2
#endif
			fi;
			forks++;
			cur++;
#ifndef BUG_COUNT_SURVIVES_FORK
			ec = 0;          /* the fork page reads 0 in the child */
#endif
			proc_of[t] = cur;
			survivor = t;
			t = 0
		}
	:: forks < MAXFORKS -> forks = MAXFORKS   /* no more forks: every deadlock is reached (A6) */
	od
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
