"""``emcore segment`` as pngquant's users run it: batches, standard input and output,
quality and size targets, metadata (emcore/cli/segment.py)."""
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import PngImagePlugin, features

from emcore.cli import main
from emcore.cli.segment import quality_to_psnr

from _photos import DATA

CHELSEA = str(DATA / "chelsea.png")
HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emcore", *args], capture_output=True,
                          timeout=300, cwd=HERE, **kwargs)


def _psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def _frames(path):
    """(every frame decoded as RGB, their durations, the file's loop count)."""
    with PILImage.open(path) as im:
        decoded, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info.get("duration"))
            decoded.append(np.asarray(im.convert("RGB")))
        return decoded, durations, im.info.get("loop")


def _small_photo(tmp_path, name, size=(120, 80)):
    path = tmp_path / name
    PILImage.open(CHELSEA).convert("RGB").resize(size).save(path)
    return path


def test_batch_beside_inputs_with_256_colours_by_default(tmp_path):
    inputs = [_small_photo(tmp_path, f"p{i}.png", (100 + 10 * i, 70)) for i in range(3)]
    assert main(["segment", *map(str, inputs), "--quiet"]) == 0
    for src in inputs:
        out = tmp_path / (src.stem + "-emcore.png")
        with PILImage.open(out) as im:
            assert im.mode == "P" and len(im.getpalette()) == 256 * 3
            assert im.size == PILImage.open(src).size


def test_files_may_come_between_options(tmp_path):
    """As with pngquant (and GNU tools): ``segment a.png -k 8 b.png -o DIR``; it was
    'unrecognized arguments: b.png'."""
    a, b = _small_photo(tmp_path, "a.png"), _small_photo(tmp_path, "b.png", (90, 60))
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["segment", str(a), "-k", "8", str(b), "-o", str(folder), "--quiet"]) == 0
    for name in ("a-emcore.png", "b-emcore.png"):
        with PILImage.open(folder / name) as im:
            assert len(im.getpalette()) == 8 * 3


def test_batch_into_a_folder_with_one_corrupt_file(tmp_path, capsys):
    good = [_small_photo(tmp_path, "a.png"), _small_photo(tmp_path, "b.png")]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    folder = tmp_path / "out"
    folder.mkdir()
    status = main(["segment", str(good[0]), str(bad), str(good[1]), "-k", "8", "-o",
                   str(folder), "--ext", ".png", "--json"])
    assert status == 1
    err = capsys.readouterr()
    assert err.err.count(str(bad)) == 1 and len(err.err.strip().splitlines()) == 1  # once
    assert sorted(os.listdir(folder)) == ["a.png", "b.png"]  # the others written, nothing else
    summaries = [json.loads(line) for line in err.out.splitlines()]
    assert [s["k"] for s in summaries] == [8, 8]


@pytest.mark.parametrize("extra, forked", [
    (["--threads", "2"], sys.platform.startswith("linux")),
    (["--threads", "1"], False),  # one worker: no pool of processes
    (["--threads", "8"], False),  # two threads a file (4 files): a forked child has one
    (["--threads", "2", "--debug"], False),  # threads, so that an error keeps its traceback
])
def test_where_a_batch_runs_its_files(tmp_path, monkeypatch, extra, forked):
    from emcore._threads import max_threads
    from emcore.cli import segment
    if max_threads() < int(extra[1]):
        pytest.skip(f"--threads {extra[1]} is more than this machine allows")
    ran, reported = [], []

    def fake_job(job, args, n_threads, stdin_bytes, tick=None):
        ran.append(job.source)  # seen here only when the job ran in this process
        return {"output": job.destination, "pid": os.getpid(), "threads": n_threads,
                "stdin": stdin_bytes}
    monkeypatch.setattr(segment, "run_job", fake_job)
    monkeypatch.setattr(segment, "_report", lambda summary, args: reported.append(summary))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"png")))
    folder = tmp_path / "out"
    folder.mkdir()
    names = ["a.png", "-", "b.png", "c.png"]
    for name in names[::2] + names[3:]:
        _small_photo(tmp_path, name)
    inputs = [n if n == "-" else str(tmp_path / n) for n in names]
    assert main(["segment", *inputs, "-o", str(folder), *extra]) == 0
    # in input order, each with its own destination, the piped bytes only to "-"
    assert [s["output"] for s in reported] == [
        str(folder / f"{n}-emcore.png") for n in ("a", "stdin", "b", "c")]
    assert [s["stdin"] for s in reported] == [None, b"png", None, None]
    assert all(s["threads"] == (2 if "8" in extra else 1) for s in reported)
    pids = {s["pid"] for s in reported}
    assert (os.getpid() not in pids) == forked
    assert len(ran) == (0 if forked else 4)


def test_a_batch_sends_each_worker_its_file_not_every_input(tmp_path, monkeypatch):
    # the command's arguments (every input among them) reach the forked workers once,
    # through fork; sent with each job, a batch of n files pickled n x n paths (3,000
    # tiny files on two cores: 3.73 -> 2.48 s, system time 2.57 -> 0.98 s)
    import pickle
    from concurrent import futures
    sent = []
    original = futures.ProcessPoolExecutor.map

    def recording_map(self, fn, *iterables, **kwargs):
        iterables = [list(it) for it in iterables]
        sent.append(len(pickle.dumps((fn, *(it[0] for it in iterables)))))
        return original(self, fn, *iterables, **kwargs)
    monkeypatch.setattr(futures.ProcessPoolExecutor, "map", recording_map)
    rng = np.random.default_rng(0)
    sources = []
    for i in range(150):
        sources.append(tmp_path / f"a-rather-long-file-name-{i:04d}.png")
        PILImage.fromarray(rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)).save(sources[-1])
    out = tmp_path / "out"
    out.mkdir()
    assert main(["segment", *map(str, sources), "-k", "2", "-o", f"{out}{os.sep}",
                 "--quiet", "--threads", "2"]) == 0
    assert len(os.listdir(out)) == 150
    assert sent and sent[0] < 1000  # a job's message: its file, whatever the batch's size


@pytest.mark.parametrize("failure", ["no semaphores", "no process left"])
def test_a_batch_falls_back_to_threads_where_processes_cannot_be_made(tmp_path, monkeypatch,
                                                                      failure):
    from concurrent import futures
    shut_down = []

    class NoProcesses:
        def __init__(self, **kwargs):
            if failure == "no semaphores":  # what concurrent.futures says without /dev/shm
                raise NotImplementedError("This Python build lacks multiprocessing.synchronize")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, *args):  # fork failing under RLIMIT_NPROC
            raise BlockingIOError(11, "Resource temporarily unavailable")

        def shutdown(self, wait=True, *, cancel_futures=False):
            shut_down.append(cancel_futures)
    monkeypatch.setattr(futures, "ProcessPoolExecutor", NoProcesses)
    inputs = [_small_photo(tmp_path, f"p{i}.png") for i in range(3)]
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["segment", *map(str, inputs), "-k", "8", "-o", str(folder), "--threads", "2",
                 "--quiet"]) == 0
    assert sorted(os.listdir(folder)) == [f"p{i}-emcore.png" for i in range(3)]
    # a pool that was made is shut down, its pending jobs cancelled (at the failure, and
    # again as the batch ends: a second shutdown does nothing)
    if failure == "no semaphores":
        assert shut_down == []
    else:
        assert shut_down and all(shut_down)


def test_a_batch_in_processes_reports_refusals_and_errors(tmp_path, capsys):
    """A file of a batch refused (--skip-if-larger) and one broken, from worker processes:
    each reported once, the exit status the first one's, the others written."""
    good = _small_photo(tmp_path, "good.png")
    flat = tmp_path / "ramp.png"  # grey: its result carries a palette and is larger
    PILImage.fromarray(np.arange(1024, dtype=np.uint16).reshape(32, 32).__floordiv__(4)
                       .astype(np.uint8)).save(flat, optimize=True)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    folder = tmp_path / "out"
    folder.mkdir()
    status = main(["segment", str(flat), str(bad), str(good), "-o", str(folder),
                   "--ext", ".png", "--skip-if-larger", "--threads", "2"])
    err = capsys.readouterr().err
    assert err.count(str(flat)) == 1 and err.count(str(bad)) == 1, err
    assert "larger than the input" in err and "not an image file" in err
    assert status == 98  # pngquant's status for a file not written by --skip-if-larger
    assert os.listdir(folder) == ["good.png"]


@contextlib.contextmanager
def _batch_stuck_writing(tmp_path, n_files, pause, threads=2):
    """A batch of n_files on two worker processes (``threads=1``: one thread of the
    command's process) whose writes each pause ``pause`` seconds once the temporary
    file is written; yields (process, output folder, the writers' process ids, read
    once each is writing, the stderr file). Whatever happens, the batch's process group
    is killed after (a worker left behind would hold the test's pipes open)."""
    import select
    import signal
    import textwrap
    sources = [str(_small_photo(tmp_path, f"p{i}.png")) for i in range(n_files)]
    folder = tmp_path / "out"
    folder.mkdir()
    script = textwrap.dedent(f"""
        import os, sys, time
        from emcore import image
        real = image.write_image
        def paused(*args, **kwargs):
            real(*args, **kwargs)
            os.write(1, f"{{os.getpid()}}\\n".encode())  # one write: lines never interleave
            time.sleep({pause})
        image.write_image = paused
        from emcore.cli import main
        sys.exit(main(["segment", *{sources!r}, "-k", "3", "-o", {str(folder)!r},
                       "--threads", "{threads}", "--quiet"]))
    """)
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as err:
        # unbuffered: a line read is all that was taken from the pipe, so select() tells
        # whether the next one has come
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=err, bufsize=0, cwd=HERE, start_new_session=True)
    try:
        workers = set()
        for _ in range(threads):
            assert select.select([proc.stdout], [], [], 120)[0], errors.read_text()
            workers.add(int(proc.stdout.readline()))
        assert workers == {proc.pid} if threads == 1 else (
            len(workers) == 2 and proc.pid not in workers)
        yield proc, folder, workers, errors
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()


def _ended(pid, timeout=20.0):
    """True once process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes: Linux")
def test_a_batch_whose_process_is_killed_leaves_no_worker_and_no_temporary_file(tmp_path):
    """SIGKILL to the command's process while both workers are mid-write: each worker
    is told (its parent-death signal, which comes again as each of the dead process's
    threads ends), removes its temporary file and ends; before, they waited for work
    for ever."""
    with _batch_stuck_writing(tmp_path, 4, 60) as (proc, folder, workers, _):
        proc.kill()
        proc.wait(timeout=30)
        assert all(_ended(pid) for pid in workers)
        assert os.listdir(folder) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes: Linux")
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_batch_stopped_by_a_signal_to_its_group_finishes_the_files_being_written(
        tmp_path, signum):
    """Ctrl-C, SIGTERM or SIGHUP to the whole command (the terminal, a service
    manager) while both workers write: those two files are finished, no other is
    started, the status is the signal's, and no worker is left. Before, a worker took
    SIGTERM for its job's error and waited for work for ever."""
    import signal
    signum = getattr(signal, signum)
    with _batch_stuck_writing(tmp_path, 5, 1.5) as (proc, folder, workers, errors):
        os.killpg(proc.pid, signum)
        assert proc.wait(timeout=60) == 128 + signum, errors.read_text()
        assert all(_ended(pid) for pid in workers)
        assert len(os.listdir(folder)) == 2
        assert all(name.endswith("-emcore.png") for name in os.listdir(folder))


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_batch_on_one_thread_stopped_by_a_signal_finishes_its_file(tmp_path, signum):
    """The same on one thread (the files on a thread of the command's process): the
    file being written is finished, the queued ones are cancelled."""
    import signal
    signum = getattr(signal, signum)
    with _batch_stuck_writing(tmp_path, 4, 1.5, threads=1) as (proc, folder, _, errors):
        os.killpg(proc.pid, signum)
        assert proc.wait(timeout=60) == 128 + signum, errors.read_text()
        assert os.listdir(folder) == ["p0-emcore.png"]


def test_standard_input_to_standard_output_through_a_pipe(tmp_path):
    src = _small_photo(tmp_path, "in.png")
    proc = run("segment", "-", "-k", "12", "--seed", "1", input=src.read_bytes())
    assert proc.returncode == 0, proc.stderr
    from_pipe = tmp_path / "pipe.png"
    from_pipe.write_bytes(proc.stdout)
    assert main(["segment", str(src), "-k", "12", "--seed", "1", "-o",
                 str(tmp_path / "file.png"), "--quiet"]) == 0
    np.testing.assert_array_equal(np.asarray(PILImage.open(from_pipe).convert("RGB")),
                                  np.asarray(PILImage.open(tmp_path / "file.png").convert("RGB")))
    assert len(PILImage.open(from_pipe).getpalette()) == 12 * 3
    # --json says its summary on stderr: standard output is the PNG and nothing after it
    proc = run("segment", "-", "-k", "12", "--json", input=src.read_bytes())
    assert proc.returncode == 0 and proc.stdout.endswith(b"IEND\xaeB`\x82")
    assert json.loads(proc.stderr)["k"] == 12


def test_quality_picks_the_fewest_colours_that_reach_max(tmp_path, capsys):
    src = _small_photo(tmp_path, "q.png")
    out = tmp_path / "q-out.png"
    assert main(["segment", str(src), "--quality", "20-55", "-o", str(out), "--json"]) == 0
    k = json.loads(capsys.readouterr().out)["k"]
    original = np.asarray(PILImage.open(src).convert("RGB"))
    target = quality_to_psnr(55)
    assert _psnr(original, PILImage.open(out).convert("RGB")) >= target
    fewer = tmp_path / "fewer.png"
    assert main(["segment", str(src), "-k", str(k - 1), "-o", str(fewer), "--quiet"]) == 0
    assert _psnr(original, PILImage.open(fewer).convert("RGB")) < target


def test_quality_below_min_writes_nothing(tmp_path):
    src = _small_photo(tmp_path, "q.png")
    proc = run("segment", str(src), "-k", "4", "--quality", "90-100", "-o",
               str(tmp_path / "o.png"))
    assert proc.returncode == 99 and b"below --quality's minimum" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_max_bytes_writes_the_most_colours_that_fit(tmp_path, capsys):
    src = _small_photo(tmp_path, "m.png")
    out = tmp_path / "m-out.png"
    limit = 6000
    assert main(["segment", str(src), "--max-bytes", str(limit), "-o", str(out), "--json"]) == 0
    k = json.loads(capsys.readouterr().out)["k"]
    assert os.path.getsize(out) <= limit and 1 < k < 256
    more = tmp_path / "more.png"
    assert main(["segment", str(src), "-k", str(k + 1), "-o", str(more), "--quiet"]) == 0
    assert os.path.getsize(more) > limit


def test_skip_if_larger_writes_nothing(tmp_path):
    src = tmp_path / "ramp.png"  # grey: no palette; the result carries one of 256 entries
    PILImage.fromarray(np.arange(1024, dtype=np.uint16).reshape(32, 32).__floordiv__(4)
                       .astype(np.uint8)).save(src, optimize=True)
    proc = run("segment", str(src), "--skip-if-larger", "-o", str(tmp_path / "o.png"))
    assert proc.returncode == 98 and b"larger than the input" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_metadata_kept_unless_stripped(tmp_path):
    src = tmp_path / "meta.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a cat")
    info.add_itxt("Comment", "ein Kätzchen")
    exif = PILImage.Exif()
    exif[0x010E] = "described"  # ImageDescription
    PILImage.open(CHELSEA).convert("RGB").resize((90, 60)).save(
        src, pnginfo=info, dpi=(300, 300), exif=exif.tobytes())
    kept, stripped = tmp_path / "kept.png", tmp_path / "stripped.png"
    assert main(["segment", str(src), "-k", "6", "-o", str(kept), "--quiet"]) == 0
    assert main(["segment", str(src), "-k", "6", "-o", str(stripped), "--strip", "--quiet"]) == 0
    with PILImage.open(kept) as im:
        assert im.text["Title"] == "a cat" and im.text["Comment"] == "ein Kätzchen"
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
        assert im.getexif()[0x010E] == "described"
    with PILImage.open(stripped) as im:
        assert not im.text and "dpi" not in im.info and not im.getexif()


def test_optimize_keeps_pixels_and_metadata_in_a_smaller_file(tmp_path, monkeypatch, capsys):
    src = tmp_path / "meta.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", "ein Kätzchen")
    PILImage.open(CHELSEA).convert("RGB").resize((180, 120)).save(src, pnginfo=info,
                                                                   dpi=(300, 300))
    plain, small = tmp_path / "plain.png", tmp_path / "small.png"
    assert main(["segment", str(src), "-k", "24", "-o", str(plain), "--quiet"]) == 0
    assert main(["segment", str(src), "-k", "24", "-o", str(small), "--optimize",
                 "--quiet"]) == 0
    assert small.stat().st_size < plain.stat().st_size
    with PILImage.open(plain) as a, PILImage.open(small) as b:
        np.testing.assert_array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
        assert b.text["Comment"] == "ein Kätzchen"
        assert tuple(round(v) for v in b.info["dpi"]) == (300, 300)
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "oxipng" else real(name, *a))
    assert main(["segment", str(src), "-o", str(tmp_path / "x.png"), "--optimize"]) == 1
    assert "pyoxipng" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("ext", [".gif", ".png"])
def test_every_frame_quantized_with_durations_and_loop(tmp_path, ext, capsys):
    photo = PILImage.open(CHELSEA).convert("RGB").resize((90, 60))
    frames = [photo.rotate(angle) for angle in (0, 15, 30)]
    src = tmp_path / f"anim{ext}"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[100, 200, 300],
                   loop=0)
    out = tmp_path / f"out{ext}"
    assert main(["segment", str(src), "-k", "8", "-o", str(out)]) == 0
    assert "only the first" not in capsys.readouterr().err  # every frame was read
    decoded, durations, loop = _frames(out)
    assert len(decoded) == 3 and loop == 0
    assert durations == [100, 200, 300]
    # one palette fitted to every frame: 8 colours over all of them
    assert len(np.unique(np.concatenate(decoded).reshape(-1, 3), axis=0)) <= 8
    for original, frame in zip(_frames(src)[0], decoded):  # each its own, not the first's
        assert _psnr(original, frame) > 22


def test_smooth_on_an_animation_smooths_each_frame_within_itself(tmp_path):
    # the frames' labels are the pipeline's for the stack fitted as frames (no pixel
    # coupled with one in another frame; as one grid, 5 pixels at the seams differed)
    from emcore.pipeline import ImageSamples, finish, fit_model
    rng = np.random.default_rng(0)
    base = np.zeros((40, 50, 3))
    base[8:30, 5:25] = (200, 60, 50)
    base[15:38, 28:46] = (40, 160, 90)
    frames = [np.clip(np.rint(np.roll(base, 17 * i, axis=0) + rng.normal(0, 50, base.shape)),
                      0, 255).astype(np.uint8) for i in range(3)]
    src, out = tmp_path / "noisy.png", tmp_path / "smooth.png"
    PILImage.fromarray(frames[0]).save(src, save_all=True, duration=100,
                                       append_images=[PILImage.fromarray(f) for f in frames[1:]])
    assert main(["segment", str(src), "-k", "3", "--smooth", "1.5", "-o", str(out),
                 "--quiet"]) == 0
    samples = ImageSamples(np.concatenate(frames), unique_colors=False, frames=3)
    expected = finish(samples, fit_model(samples, 3, smoothing=1.5, random_state=0,
                                         covariance_type="spherical"), eight_bit=True)
    decoded = _frames(out)[0]
    assert len(decoded) == 3
    np.testing.assert_array_equal(np.concatenate(decoded), expected.image)


@pytest.mark.parametrize("ext", [".gif", ".png", ".webp"])
def test_an_animation_that_plays_once_still_plays_once(tmp_path, ext):
    if ext == ".webp" and not features.check("webp"):
        pytest.skip("this Pillow writes no WebP")
    frames = [PILImage.new("RGB", (20, 10), (40 * i, 90, 200 - 40 * i)) for i in range(3)]
    src = tmp_path / "once.gif"  # no loop count: shown once
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    out = tmp_path / f"out{ext}"
    assert main(["segment", str(src), "-k", "4", "-o", str(out), "--quiet"]) == 0
    with PILImage.open(out) as im:
        assert im.n_frames == 3
        # GIF: no loop count; APNG and WebP: one play (their 0 is for ever)
        assert im.info.get("loop") == (None if ext == ".gif" else 1)


@pytest.mark.parametrize("frame_palettes", [False, True])
@pytest.mark.parametrize("ext", [".gif", ".png", ".tif", ".webp"])
def test_frames_with_transparency_show_as_painted(tmp_path, ext, frame_palettes):
    """A frame with a transparent band, one with nothing visible, one half visible:
    each written frame decodes to the same pixels shown (APNG frames replace what was
    there, GIF frames are disposed to the background) and its colours close by."""
    photo = np.asarray(PILImage.open(CHELSEA).convert("RGB").resize((40, 30)))
    alphas = [np.full((30, 40), 255, np.uint8) for _ in range(3)]
    alphas[0][:6] = 0
    alphas[1][:] = 0
    alphas[2][:15] = 0
    frames = [PILImage.fromarray(np.dstack([np.roll(photo, 5 * i, axis=1), a]), "RGBA")
              for i, a in enumerate(alphas)]
    src, out = tmp_path / f"anim{ext}", tmp_path / f"out{ext}"
    options = {} if ext == ".tif" else {"duration": 40, "loop": 0, "disposal": 2}
    frames[0].save(src, save_all=True, append_images=frames[1:], **options)
    with PILImage.open(src) as a:  # the file holds the frames meant
        for i, alpha in enumerate(alphas):
            a.seek(i)
            np.testing.assert_array_equal(np.asarray(a.convert("RGBA"))[:, :, 3] > 0, alpha > 0)
    extra = ["--frame-palettes"] if frame_palettes else []
    assert main(["segment", str(src), "-k", "16", *extra, "-o", str(out), "--quiet"]) == 0
    with PILImage.open(src) as a, PILImage.open(out) as b:
        assert a.n_frames == b.n_frames == 3
        for i in range(3):
            a.seek(i)
            b.seek(i)
            original, written = np.asarray(a.convert("RGBA")), np.asarray(b.convert("RGBA"))
            shown = original[:, :, 3] > 0
            np.testing.assert_array_equal(written[:, :, 3] > 0, shown)
            if shown.any():
                assert _psnr(original[shown][:, :3], written[shown][:, :3]) > 24


@pytest.mark.parametrize("args, message", [
    (["-", "-"], "read once"),
    (["{a}", "{a}", "-o", "{tmp}/one.png"], "names one file"),
    (["{a}", "{a}", "--model", "{tmp}/m.npz", "-o", "{tmp}"], "one input"),
    (["{a}", "{tmp}/sub/a.png", "-o", "{tmp}/out/"], "both be written"),  # one name
    (["{a}", "{a}", "--force"], "both be written"),
    (["{a}", "--ext", "/../x.png"], "suffix"),  # a path would write outside the folder
    (["{a}", "--ext", ""], "suffix"),
])
def test_batch_usage_errors(tmp_path, args, message):
    a = _small_photo(tmp_path, "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "out").mkdir()
    _small_photo(tmp_path / "sub", "a.png")
    args = [x.replace("{a}", str(a)).replace("{tmp}", str(tmp_path)) for x in args]
    proc = run("segment", *args)
    assert proc.returncode == 2 and message.encode() in proc.stderr


def test_sixteen_bit_colour_png_is_read_at_full_depth_into_an_8_bit_palette(tmp_path):
    png = pytest.importorskip("png")  # pypng writes the 16-bit test file (test only)
    rng = np.random.RandomState(0)
    photo = np.asarray(PILImage.open(CHELSEA).convert("RGB").resize((90, 60)), np.uint16)
    deep = photo * 257 + rng.randint(0, 257, photo.shape).astype(np.uint16)  # low bits too
    src = tmp_path / "deep.png"
    with open(src, "wb") as f:
        png.Writer(90, 60, greyscale=False, bitdepth=16).write(f, deep.reshape(60, -1).tolist())
    from emcore.image import read_picture
    np.testing.assert_array_equal(read_picture(str(src)).pixels, deep)  # not cut to 8 bits
    out, labels = tmp_path / "out.png", tmp_path / "labels.npy"
    assert main(["segment", str(src), "-k", "10", "-o", str(out), "--labels", str(labels),
                 "--quiet"]) == 0
    lab = np.load(labels)
    with PILImage.open(out) as im:
        assert im.mode == "P" and len(im.getpalette()) == 10 * 3
        written = np.asarray(im.convert("RGB"))
    # float64 reference: each segment's mean of the 16-bit pixels, rounded to 8 bits
    flat, seg = deep.reshape(-1, 3).astype(np.float64), lab.ravel()
    means = np.stack([flat[seg == j].mean(axis=0) for j in range(10)])
    np.testing.assert_array_equal(written, np.rint(means / 257).astype(np.uint8)[lab])
    # --rgb keeps 16 bits, in a 16-bit PNG: each segment's mean rounded to 16 bits
    assert main(["segment", str(src), "-k", "10", "--rgb", "-o", str(out), "--force",
                 "--labels", str(labels), "--quiet"]) == 0
    lab = np.load(labels).ravel()
    width, height, rows, info = png.Reader(filename=str(out)).asDirect()
    assert info["bitdepth"] == 16 and (width, height) == (90, 60)
    deep_out = np.array([np.asarray(row) for row in rows]).reshape(-1, 3)
    means = np.stack([flat[lab == j].mean(axis=0) for j in range(10)])
    np.testing.assert_array_equal(deep_out, np.rint(means)[lab])


def test_a_colour_key_comes_out_as_a_transparent_entry(tmp_path):
    # an RGB PNG whose tRNS chunk makes one colour transparent: those pixels, and no
    # others, are transparent in the indexed result
    photo = np.asarray(PILImage.open(CHELSEA).convert("RGB").resize((90, 60))).copy()
    photo[10:30, 20:50] = (0, 255, 0)
    PILImage.fromarray(photo).save(tmp_path / "keyed.png", transparency=(0, 255, 0))
    assert main(["segment", str(tmp_path / "keyed.png"), "-k", "16", "-o",
                 str(tmp_path / "out.png"), "--quiet"]) == 0
    with PILImage.open(tmp_path / "out.png") as out:
        assert out.mode == "P" and "transparency" in out.info
        alpha = np.asarray(out.convert("RGBA"))[:, :, 3]
    np.testing.assert_array_equal(alpha, np.where((photo == (0, 255, 0)).all(axis=2), 0, 255))


def test_smooth_writes_the_spatial_segmentation(tmp_path):
    from emcore import segment_image
    rng = np.random.default_rng(0)
    truth = np.zeros((50, 70), dtype=np.intp)
    truth[8:40, 10:35] = 1
    image = np.clip(np.array([[70, 70, 160], [190, 120, 60]])[truth]
                    + rng.normal(0, 50, truth.shape + (3,)), 0, 255).astype(np.uint8)
    src, out = tmp_path / "noisy.png", tmp_path / "out.png"
    PILImage.fromarray(image).save(src)
    done = run("segment", str(src), "-k", "2", "--smooth", "1.5", "-o", str(out), "--json",
               "--labels", str(tmp_path / "labels.npy"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["method"] == "spatial-gmm" and summary["smoothing"] == 1.5
    labels = np.load(tmp_path / "labels.npy")
    np.testing.assert_array_equal(labels, segment_image(image, 2, smoothing=1.5).labels)
    assert max(np.mean(labels == truth), np.mean(labels == 1 - truth)) > 0.99
    bad = run("segment", str(src), "--smooth", "x", "-o", str(out), "--force")
    assert bad.returncode == 2 and b"--smooth" in bad.stderr
    huge = run("segment", str(src), "--smooth", "1e308", "-o", str(out), "--force")
    assert huge.returncode == 2 and b"--smooth" in huge.stderr  # not a covariance error


@pytest.mark.parametrize("ext", [".gif", ".png"])
def test_a_palette_per_frame(tmp_path, ext):
    from emcore import segment_image
    rng = np.random.default_rng(0)
    base = [np.array([200, 40, 40]), np.array([40, 200, 40]), np.array([40, 40, 200])]
    frames = [np.clip(c + rng.normal(0, 25, (40, 50, 3)), 0, 255).astype(np.uint8)
              for c in base]  # three frames, each its own colours
    src = tmp_path / f"anim{ext}"
    PILImage.fromarray(frames[0]).save(src, save_all=True, duration=[50, 60, 70], loop=0,
                                       append_images=[PILImage.fromarray(f) for f in frames[1:]])
    originals = _frames(src)[0]  # what the file holds (GIF has quantized it already)
    shared, own = tmp_path / f"shared{ext}", tmp_path / f"own{ext}"
    assert main(["segment", str(src), "-k", "4", "-o", str(shared), "--quiet"]) == 0
    assert main(["segment", str(src), "-k", "4", "--frame-palettes", "-o", str(own),
                 "--quiet"]) == 0
    decoded, durations, loop = _frames(own)
    assert len(decoded) == 3 and loop == 0
    assert durations == [50, 60, 70]
    colours = [set(map(tuple, d.reshape(-1, 3))) for d in decoded]
    assert all(len(c) <= 4 for c in colours) and not colours[0] & colours[1]
    for original, frame in zip(originals, decoded):  # each frame is its own 4-colour fit
        expected = segment_image(original, 4).image
        assert abs(_psnr(original, frame) - _psnr(original, expected)) < 0.05
    shared_frames = _frames(shared)[0]
    assert np.mean([_psnr(o, f) for o, f in zip(originals, decoded)]) > np.mean(
        [_psnr(o, f) for o, f in zip(originals, shared_frames)]) + 2  # 4 colours for 12


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_standard_output_loses_the_summary_not_the_result(tmp_path):
    src, out = _small_photo(tmp_path, "a.png"), tmp_path / "out.png"
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "emcore", "segment", str(src), "-k", "8",
                               "-o", str(out)], stdout=full, stderr=subprocess.PIPE,
                              timeout=300, cwd=HERE)
    assert done.returncode == 0, done.stderr
    assert b"summary could not be printed" in done.stderr and out.exists()
    with open("/dev/full", "w") as full:  # the image itself to a full output: a failure
        done = subprocess.run([sys.executable, "-m", "emcore", "segment", str(src), "-k", "8",
                               "-o", "-"], stdout=full, stderr=subprocess.PIPE, timeout=300,
                              cwd=HERE)
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1


def test_quiet_prints_nothing_but_json_still_prints(tmp_path):
    src = _small_photo(tmp_path, "a.png")
    quiet = run("segment", str(src), "-k", "4", "-o", str(tmp_path / "q.png"), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == b"" and quiet.stderr == b""
    as_json = run("segment", str(src), "-k", "4", "-o", str(tmp_path / "j.png"), "--quiet",
                  "--json")
    assert json.loads(as_json.stdout)["k"] == 4


def test_n_init_keeps_the_best_of_several_seeds(tmp_path):
    from emcore import segment_image
    src = _small_photo(tmp_path, "p.png", (160, 110))
    out, model = tmp_path / "out.png", tmp_path / "model.npz"
    assert main(["segment", str(src), "-k", "12", "--n-init", "4", "-o", str(out),
                 "--model", str(model), "--quiet"]) == 0
    pixels = np.asarray(PILImage.open(src).convert("RGB"))
    expected = segment_image(pixels, 12, n_init=4, random_state=0)
    np.testing.assert_array_equal(np.asarray(PILImage.open(out).convert("RGB")), expected.image)
    single = segment_image(pixels, 12, random_state=0)  # the first of the four seeds
    assert expected.model.inertia_ <= single.model.inertia_
    with pytest.raises(SystemExit) as exit_:
        main(["segment", str(src), "--n-init", "0", "-o", str(tmp_path / "x.png")])
    assert exit_.value.code == 2 and not (tmp_path / "x.png").exists()


def _alpha_photo(tmp_path):
    """A chelsea crop with a transparent band and a half-transparent one."""
    rgb = np.asarray(PILImage.open(CHELSEA).convert("RGB"))[:60, :80]
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:10], alpha[10:20] = 0, 128
    src = tmp_path / "alpha.png"
    PILImage.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    return src


@pytest.mark.parametrize("alpha", [False, True])
def test_webp_is_written_exactly_its_palette(tmp_path, alpha):
    """WebP output is lossless (image.WEBP_OPTIONS): the file decodes to the PNG
    result's pixels, alpha and colours under transparent pixels included."""
    if not features.check("webp"):
        pytest.skip("this Pillow writes no WebP")
    src = _alpha_photo(tmp_path) if alpha else CHELSEA
    for ext in (".png", ".webp"):
        assert main(["segment", str(src), "-k", "12", "-o", str(tmp_path / f"q{ext}"),
                     "--quiet"]) == 0
    mode = "RGBA" if alpha else "RGB"
    with PILImage.open(tmp_path / "q.png") as p, PILImage.open(tmp_path / "q.webp") as w:
        expected, written = np.asarray(p.convert(mode)), np.asarray(w.convert(mode))
    np.testing.assert_array_equal(written, expected)
    assert len(np.unique(written.reshape(-1, written.shape[2]), axis=0)) <= 12


def test_animated_webp_frames_are_written_exactly(tmp_path):
    if not features.check("webp"):
        pytest.skip("this Pillow writes no WebP")
    rgb = np.asarray(PILImage.open(CHELSEA).convert("RGB"))[:40, :50]
    frames = [PILImage.fromarray(np.roll(rgb, 7 * i, axis=1)) for i in range(3)]
    src = tmp_path / "anim.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=50, loop=0)
    for ext in (".png", ".webp"):
        assert main(["segment", str(src), "-k", "8", "-o", str(tmp_path / f"a{ext}"),
                     "--quiet"]) == 0
    a, w = _frames(tmp_path / "a.png")[0], _frames(tmp_path / "a.webp")[0]
    assert len(a) == len(w) == 3
    for png_frame, webp_frame in zip(a, w):
        np.testing.assert_array_equal(webp_frame, png_frame)


@pytest.mark.parametrize("alpha", [False, True])
def test_jpeg_output_gets_a_note_naming_what_it_loses(tmp_path, capsys, alpha):
    src = _alpha_photo(tmp_path) if alpha else CHELSEA
    assert main(["segment", str(src), "-k", "8", "-o", str(tmp_path / "q.jpg")]) == 0
    err = capsys.readouterr().err
    assert "JPEG is lossy" in err
    assert ("no alpha channel" in err) == alpha
    assert main(["segment", str(src), "-k", "8", "-o", str(tmp_path / "q.webp")]) == 0
    assert "lossy" not in capsys.readouterr().err


def test_a_float_image_no_8_bit_format_holds_is_refused_before_the_fit(tmp_path, capsys,
                                                                      monkeypatch):
    src = tmp_path / "f.tif"
    PILImage.fromarray((np.random.default_rng(0).random((20, 30)) * 1000).astype(np.float32),
                       "F").save(src)

    def fit_model(*args, **kwargs):
        raise AssertionError("fitted before the refusal")
    monkeypatch.setattr("emcore.pipeline.fit_model", fit_model)
    assert main(["segment", str(src), "-k", "4", "-o", str(tmp_path / "f.png")]) == 2
    assert "floats must lie in 0-1 or 0-255" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["f.tif"]


@pytest.mark.parametrize("top", [1.0, 255.0, 1000.0])
def test_psnr_of_a_float_image_is_on_its_own_scale(tmp_path, capsys, top):
    """1 for a 0-1 image, 255 for a 0-255 one, else its largest value (image.float_peak)."""
    rng = np.random.default_rng(1)
    pixels = (rng.random((20, 30)) * top).astype(np.float32)
    src, out = tmp_path / "f.tif", tmp_path / "f.npy"
    PILImage.fromarray(pixels, "F").save(src)
    assert main(["segment", str(src), "-k", "4", "-o", str(out), "--json"]) == 0
    reported = json.loads(capsys.readouterr().out)["psnr"]
    mse = np.mean((pixels.astype(np.float64) - np.load(out).astype(np.float64)) ** 2)
    peak = top if top != 1000.0 else pixels.max()
    assert reported == pytest.approx(10 * np.log10(peak ** 2 / mse), abs=2e-3)


def test_a_quiet_command_makes_no_psnr_and_json_still_reports_it(tmp_path, capsys, monkeypatch):
    from emcore.cli import segment
    made = []
    real = segment._psnr
    monkeypatch.setattr(segment, "_psnr", lambda a, b: made.append(1) or real(a, b))
    assert main(["segment", CHELSEA, "-k", "8", "-o", str(tmp_path / "a.png"), "--quiet",
                 "--threads", "1"]) == 0
    assert made == []
    assert main(["segment", CHELSEA, "-k", "8", "-o", str(tmp_path / "b.png"), "--quiet",
                 "--json", "--threads", "1"]) == 0
    reported = json.loads(capsys.readouterr().out)["psnr"]
    original = np.asarray(PILImage.open(CHELSEA).convert("RGB"))
    written = np.asarray(PILImage.open(tmp_path / "b.png").convert("RGB"))
    assert made == [1] and reported == pytest.approx(_psnr(original, written), abs=1e-3)


def test_reported_psnr_of_a_large_image_is_that_of_the_written_file(tmp_path, capsys):
    # 1.6 M values: the PSNR is summed over two blocks of rows, each painted on its own
    original = np.tile(np.asarray(PILImage.open(CHELSEA).convert("RGB")), (2, 2, 1))
    PILImage.fromarray(original).save(tmp_path / "big.png")
    assert main(["segment", str(tmp_path / "big.png"), "-k", "48", "-o",
                 str(tmp_path / "q.png"), "--json", "--threads", "1"]) == 0
    reported = json.loads(capsys.readouterr().out)["psnr"]
    written = np.asarray(PILImage.open(tmp_path / "q.png").convert("RGB"))
    assert reported == pytest.approx(_psnr(original, written), abs=1e-3)
