"""How many threads the kernels run on.

The rule for ``n_threads=None`` (measured in benchmarks/load.py; README, "Threads"):

* ``OMP_NUM_THREADS`` when set, else the CPUs this process may run on; lowered
  to the OpenMP runtime's limit when ``threadpoolctl.threadpool_limits`` (or
  ``omp_set_num_threads``) has lowered it in the calling thread, so code that
  limits scikit-learn's pools this way limits emcore's;
* one thread per MIN_WORK_PER_THREAD units of work (samples x components x
  features of one pass): a small pass is mostly fork and join;
* no more than the CPUs that are idle when the call starts (Linux: the running
  tasks in /proc/loadavg, less this process's own). On a busy machine every join
  waits for a thread the scheduler has put aside, and while it waits the OpenMP
  runtime's spinning threads take the cycles the others need: small fits ran 2-4x
  slower on 2 threads than on 1 with 1-3 other busy processes.

An explicit ``n_threads`` is used as given, except that no team is made larger than
the address space left (RLIMIT_AS) holds stacks for (``threads_that_fit``). Results
do not depend on the count.

Passive waiting (``OMP_WAIT_POLICY=passive``) was measured as the alternative and
is not set: it made fits with many short passes (k-means at K = 256 on an image's
distinct colours) 1.6x slower on 2 threads than on 1 on a quiet machine, where
the runtime's default spinning made them 1.7x faster. A caller's
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is the runtime's to read, as always.
"""
from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from emcore._openmp import runtime_max_threads

#: n_threads above this many per usable core is refused: the OpenMP runtime cannot
#: create tens of thousands of threads (it ends the process), and more threads than
#: cores only adds waiting.
MAX_THREADS_PER_CORE = 4

#: Units of work (samples x components x features in one pass) each default thread
#: needs: below about 2^20 per thread a second thread made EM and Lloyd passes
#: slower on the quiet 2-core machine (benchmarks/load.py).
MIN_WORK_PER_THREAD = 1 << 20

#: True in a child made by fork() after this process ran OpenMP code: GNU OpenMP's
#: thread pool does not survive fork (a parallel region in the child deadlocks), so
#: such a child runs the kernels on one thread.
_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: The runtime's thread limit when it was loaded: a lower one later was set by
#: threadpoolctl (or omp_set_num_threads) in this thread, and the default obeys it.
_LOADED_LIMIT = runtime_max_threads()


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The most threads a fit may ask for here: MAX_THREADS_PER_CORE x the usable cores."""
    return MAX_THREADS_PER_CORE * usable_cores()


def _environment_limit() -> int | None:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


def default_threads(allowed: int, work: float | None, idle_cpus: int | None) -> int:
    """The default thread count (the rule above), a pure function: at most ``allowed``,
    one per MIN_WORK_PER_THREAD units of ``work`` (no cap when unknown), at most
    ``idle_cpus`` (no cap when unknown), and at least one."""
    n = allowed
    if work is not None:
        n = min(n, int(work // MIN_WORK_PER_THREAD))
    if idle_cpus is not None:
        n = min(n, idle_cpus)
    return max(1, n)


def _own_running_threads() -> int:
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                line = stat.read()
        except OSError:  # the thread ended meanwhile
            continue
        count += line[line.rindex(")") + 2] == "R"
    return count


def idle_cpus() -> int | None:
    """CPUs no other process is running on right now (None where unknown): the online
    CPUs less the running tasks that are not this process's threads."""
    try:
        with open("/proc/loadavg") as loadavg:
            running = int(loadavg.read().split()[3].split("/")[0])
        others = max(0, running - max(1, _own_running_threads()))
    except (OSError, ValueError, IndexError):
        return None
    return max(1, (os.cpu_count() or 1) - others)


#: Address space kept free beside the OpenMP threads' stacks for the kernel's own
#: scratch and Python's allocations
RESERVED_BYTES = 4 << 20
#: The most threads that have run at once here: the runtime keeps them, so a team of
#: up to this many needs no new stack
_most_started = 1


def thread_stack_bytes() -> int:
    """The address space an OpenMP thread's stack takes: OMP_STACKSIZE (GNU OpenMP's
    units: K by default, or B, K, M, G), else the stack limit, else glibc's 32 MiB
    default for an unlimited one; plus a guard page's worth."""
    text = os.environ.get("OMP_STACKSIZE", "").strip().upper()
    units = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text:
        number, unit = (text[:-1], text[-1]) if text[-1] in units else (text, "K")
        if number.strip().isdigit():
            return int(number) * units[unit] + (64 << 10)
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    except (ImportError, OSError, ValueError):
        soft = -1
    return (soft if soft > 0 else 32 << 20) + (64 << 10)


def address_space_headroom() -> int | None:
    """Bytes of address space this process may still map (RLIMIT_AS less the size
    mapped now); None when unlimited or unknown."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft < 0 or soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return soft - mapped


def threads_that_fit(n: int, headroom: int | None, stack: int, started: int) -> int:
    """At most ``n`` threads such that the ones not yet started (beyond ``started``)
    get their stacks within ``headroom`` bytes, RESERVED_BYTES kept free; a pure
    function. GNU OpenMP ends the whole process when it cannot create a thread, so a
    team too large for the address space left is made smaller instead (one thread
    runs in the caller's and needs none)."""
    if headroom is None or n <= started:
        return n
    room = max(0, headroom - RESERVED_BYTES) // max(stack, 1)
    return max(1, min(n, started + room))


def affordable_threads(n: int) -> int:
    """``n`` lowered by threads_that_fit for this process now (usually ``n`` itself:
    the address space is unlimited)."""
    global _most_started
    if n > _most_started:
        n = threads_that_fit(n, address_space_headroom(), thread_stack_bytes(), _most_started)
        _most_started = max(_most_started, n)
    return n


def allowed_threads() -> int:
    """The most threads the default may take, whatever the work and the load:
    ``OMP_NUM_THREADS`` when set (at most max_threads()), else the usable CPUs;
    lowered to the OpenMP runtime's limit when threadpoolctl has lowered it."""
    env = _environment_limit()
    allowed = min(env, max_threads()) if env is not None else usable_cores()
    runtime = runtime_max_threads()
    if runtime < _LOADED_LIMIT:
        allowed = min(allowed, runtime)
    return max(1, allowed)


def batch_layout(n_jobs: int, workers_allowed: int, team_threads: int) -> tuple[int, int]:
    """(jobs run at once, threads for each job's kernels) for a batch of ``n_jobs``
    independent files; a pure function. As many jobs at once as ``workers_allowed``
    (the cores, without the idle-CPU cap: jobs of one thread each meet at no barrier,
    so on a busy CPU they only share its time), and the ``team_threads`` the rule
    gives one fit shared among them, at least one each."""
    workers = max(1, min(n_jobs, workers_allowed))
    return workers, max(1, team_threads // workers)


def resolve_n_threads(n_threads: Any, work: float | None = None) -> int:
    """The thread count for the kernels: ``n_threads`` as given, or the default rule
    (module docstring) when None, for passes of ``work`` units.

    At most MAX_THREADS_PER_CORE x the usable cores (ValueError above); always 1
    in a process forked from one that ran the kernels.
    """
    limit = max_threads()
    if n_threads is None:
        allowed = default_threads(allowed_threads(), work, None)
        # reading the machine's load costs ~50 us: only when a second thread may pay
        n_threads = default_threads(allowed, None, idle_cpus()) if allowed > 1 else 1
    elif isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    elif int(n_threads) < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads}")
    elif int(n_threads) > limit:
        raise ValueError(f"n_threads={n_threads} is more than {MAX_THREADS_PER_CORE} per usable "
                         f"core (at most {limit} here); use None for all cores")
    return 1 if _forked_child else affordable_threads(int(n_threads))


def threads_per_task(n_threads: int, concurrent_tasks: int, cores: int) -> int:
    """Threads for one task of a parallel scheduler that runs ``concurrent_tasks`` at
    once on ``cores``: at most ``n_threads`` and at most the task's share of the
    cores, so that tasks x threads never exceeds them; a pure function."""
    return max(1, min(n_threads, cores // max(1, concurrent_tasks)))


def work_of(X, n_components: int) -> float | None:
    """Units of work of one pass over X for n_components (None when X has no shape)."""
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2 or not isinstance(n_components, numbers.Integral):
        return None  # the estimator's own checks report bad values
    return float(shape[0]) * float(shape[1]) * max(1, int(n_components))
