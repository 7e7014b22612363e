"""The default thread rule (emcore/_threads.py): a pure function, what feeds it, and
that whatever it picks, results stay bitwise the same."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from emcore import GaussianMixture, KMeans, _openmp, _threads
from emcore._threads import MIN_WORK_PER_THREAD, default_threads, resolve_n_threads

needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(), reason="serial build")


@pytest.mark.parametrize("allowed, work, idle, expected", [
    (8, None, None, 8),                       # nothing known: every allowed thread
    (8, 0, None, 1),                          # no work: one
    (8, MIN_WORK_PER_THREAD - 1, None, 1),    # below one thread's share
    (8, 3 * MIN_WORK_PER_THREAD, None, 3),    # one per share
    (2, 100 * MIN_WORK_PER_THREAD, None, 2),  # never above allowed
    (8, 100 * MIN_WORK_PER_THREAD, 3, 3),     # never above the idle CPUs
    (8, 100 * MIN_WORK_PER_THREAD, 0, 1),     # a busy machine still runs one
    (1, None, 16, 1),
])
def test_default_threads_rule(allowed, work, idle, expected):
    assert default_threads(allowed, work, idle) == expected


def test_an_explicit_count_is_kept_whatever_the_work():
    assert resolve_n_threads(2, work=1) == 2


def test_omp_num_threads_caps_the_default(monkeypatch):
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 64)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_n_threads(None, work=1e12) == 1


@needs_openmp
def test_threadpoolctl_sees_and_limits_emcores_pool(monkeypatch):
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 64)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert any(info["internal_api"] == "openmp" for info in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        n = resolve_n_threads(None, work=1e12)
        assert n == 1
        assert _openmp.team_size(n) == 1  # what a kernel's parallel region gets
    assert resolve_n_threads(None, work=1e12) == min(_threads.usable_cores(), 64)


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux only")
def test_busy_processes_lower_the_idle_cpus():
    cpus = os.cpu_count() or 1
    assert 1 <= _threads.idle_cpus() <= cpus
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        # idle_cpus reads two snapshots at two moments (the machine's running tasks,
        # then this process's), so one reading under CI's load can miss; readings are
        # taken until both show the load (if they never do, the test fails)
        deadline = time.monotonic() + 10
        readings = (2, 2)
        while readings != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.05)
            readings = (_threads.idle_cpus(), resolve_n_threads(None, work=1e12))
        assert readings == (1, 1)
    finally:
        for p in busy:
            p.kill()
            p.wait()


@needs_openmp
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_results_do_not_depend_on_the_count_the_rule_picks(coffee, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a Dask cluster may have set it
    X = coffee.reshape(-1, 3).astype(np.float64)
    fits, picked = [], set()
    for idle in (1, 2, 4):
        monkeypatch.setattr(_threads, "idle_cpus", lambda idle=idle: idle)
        picked.add(resolve_n_threads(None, work=X.size * 8))
        fits.append((KMeans(8, random_state=0, max_iter=20).fit(X),
                     GaussianMixture(4, random_state=0, max_iter=5).fit(X)))
    assert len(picked) == min(_threads.usable_cores(), 3)
    for km, gm in fits[1:]:
        np.testing.assert_array_equal(km.cluster_centers_, fits[0][0].cluster_centers_)
        np.testing.assert_array_equal(gm.means_, fits[0][1].means_)
        np.testing.assert_array_equal(gm.predict_proba(X[:500]), fits[0][1].predict_proba(X[:500]))


@pytest.mark.parametrize("n, headroom, started, expected", [
    (4, None, 1, 4),                          # unlimited address space
    (4, 4 << 20, 1, 1),                       # no room beyond the reserve: the caller alone
    (4, (4 << 20) + 2 * (8 << 20), 1, 3),     # room for two more stacks
    (4, 0, 4, 4),                             # the threads exist already
    (8, (4 << 20) + (8 << 20), 2, 3),         # one more than those started
])
def test_threads_that_fit_the_address_space(n, headroom, started, expected):
    assert _threads.threads_that_fit(n, headroom, 8 << 20, started) == expected


def test_thread_stack_size_follows_omp_stacksize(monkeypatch):
    monkeypatch.setenv("OMP_STACKSIZE", "2M")
    assert _threads.thread_stack_bytes() == (2 << 20) + (64 << 10)
    monkeypatch.setenv("OMP_STACKSIZE", "512")  # GNU OpenMP's default unit: K
    assert _threads.thread_stack_bytes() == (512 << 10) + (64 << 10)


@pytest.mark.parametrize("extra_mb", [3, 6, 10])
def test_a_fit_near_the_address_space_limit_never_ends_the_process(extra_mb):
    """GNU OpenMP ends the process (status 1, no exception) when it cannot create a
    thread: with a few MB of address space left, a 2-thread fit must run on fewer
    threads (the same result) or raise MemoryError."""
    code = f"""
import resource, numpy as np
from emcore import KMeans
X = np.random.RandomState(0).rand(100000, 3).astype(np.float32)
mapped = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
limit = mapped + {extra_mb} * 2 ** 20
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    print('inertia', repr(KMeans(8, random_state=0, n_threads=2).fit(X).inertia_))
except MemoryError:
    print('MemoryError')
"""
    # from the tests' folder: in the repository's root the source folder would be imported
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.abspath(__file__)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split()
    if out[0] == "inertia":
        X = np.random.RandomState(0).rand(100000, 3).astype(np.float32)
        assert float(out[1]) == KMeans(8, random_state=0, n_threads=1).fit(X).inertia_
    else:
        assert out == ["MemoryError"]


@pytest.mark.parametrize("n, concurrent, cores, expected", [
    (2, 2, 2, 1),   # two tasks at once on 2 cores: one thread each
    (4, 1, 2, 2),   # one task at a time: its n_threads, at most the cores
    (8, 2, 8, 4),
    (1, 1, 8, 1),
    (3, 16, 8, 1),  # more tasks than cores: never below one
])
def test_threads_per_dask_task_never_oversubscribe(n, concurrent, cores, expected):
    assert _threads.threads_per_task(n, concurrent, cores) == expected


def test_dask_tasks_take_their_share_of_the_cores(monkeypatch):
    import dask

    from emcore import _dask
    cores = _threads.usable_cores()
    with dask.config.set(scheduler="sync"):  # one task at a time
        assert _dask._task_threads(cores) == cores
    with dask.config.set(scheduler="threads", num_workers=cores):
        assert _dask._task_threads(cores) == 1
    assert _dask._task_threads(1) == 1


@pytest.mark.parametrize("n_jobs, workers_allowed, team, expected", [
    (100, 2, 2, (2, 1)),   # a quiet 2-core machine: two files at once, one thread each
    (100, 2, 1, (2, 1)),   # busy: still two at once (one-thread jobs meet at no barrier)
    (3, 16, 16, (3, 5)),   # few files on many cores: the team shared among them
    (3, 16, 2, (3, 1)),    # ... but never more threads than the rule's team
    (1, 8, 8, (1, 8)),
    (5, 1, 1, (1, 1)),
])
def test_batch_layout(n_jobs, workers_allowed, team, expected):
    assert _threads.batch_layout(n_jobs, workers_allowed, team) == expected


ONE_CPU_CHILD = """
import sys, time
import numpy as np
from PIL import Image
from emcore import GaussianMixture, quantize
from emcore.cli.segment import _psnr
photo = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
X = photo.reshape(-1, 3).astype(float)
work = {
    "kmeans": lambda: quantize(photo, 16, n_threads=1),
    "gmm": lambda: GaussianMixture(4, n_threads=1, random_state=0).fit(X).score(X),
    "psnr": lambda: _psnr(photo, photo // 2),
}[sys.argv[2]]
work()
cpu, wall = time.process_time(), time.perf_counter()
while time.perf_counter() - wall < 1.0:
    work()
print((time.process_time() - cpu) / (time.perf_counter() - wall))
"""


@pytest.mark.parametrize("work", ["kmeans", "gmm", "psnr"])
def test_one_thread_means_one_cpu(work):
    """n_threads=1 keeps the work on one CPU: nothing emcore calls leaves threads
    spinning beside it (numpy's dot woke OpenBLAS's threads, which then spun on
    every core: a one-thread batch of files used 1.9 CPUs)."""
    from _photos import DATA
    done = subprocess.run([sys.executable, "-c", ONE_CPU_CHILD, str(DATA / "chelsea.png"), work],
                          capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 1.2  # CPU seconds per second: one CPU, whatever the load
