"""The emcore command line, run as a person would (a subprocess) and in-process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import GaussianMixture, compute_densities, load
from emcore.cli import main

from _photos import DATA, segment_mean_palette

CHELSEA = str(DATA / "chelsea.png")
HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args, timeout=300, **kwargs):
    # not from the repo root, where python -m would import the uncompiled source folder
    return subprocess.run([sys.executable, "-m", "emcore", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=HERE, **kwargs)


def test_segment_writes_image_labels_and_model(tmp_path):
    out, labels, model = tmp_path / "seg.png", tmp_path / "labels.npy", tmp_path / "m.npz"
    proc = run("segment", CHELSEA, "-k", "6", "-o", str(out), "--labels", str(labels),
               "--model", str(model), "--json", "--method", "gmm", "--covariance", "diag")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["k"] == 6 and summary["method"] == "gmm" and summary["iterations"] >= 1
    written = PILImage.open(out)
    assert written.mode == "P" and len(written.getpalette()) == 6 * 3  # exactly the palette
    seg = np.asarray(written.convert("RGB"))
    lab = np.load(labels)
    gm = load(model)
    assert isinstance(gm, GaussianMixture) and gm.covariance_type == "diag"
    assert lab.shape == seg.shape[:2] and lab.max() < 6
    pixels = np.asarray(PILImage.open(CHELSEA).convert("RGB"))
    np.testing.assert_array_equal(lab.ravel(), gm.predict(pixels.reshape(-1, 3)))
    # each segment painted with the rounded mean of its pixels (numpy oracle)
    np.testing.assert_array_equal(seg, segment_mean_palette(pixels, lab, 6)[lab])
    np.testing.assert_allclose(summary["log_likelihood"], gm.lower_bound_)


def test_segment_kmeans_summary_line(tmp_path):
    proc = run("segment", CHELSEA, "-k", "4", "-o", str(tmp_path / "k.jpg"), "--method",
               "kmeans", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("kmeans k=4:") and "inertia" in proc.stdout
    assert PILImage.open(tmp_path / "k.jpg").size == (451, 300)


def test_densities_match_the_library(tmp_path):
    model = tmp_path / "m.npz"
    assert main(["segment", CHELSEA, "-k", "3", "-o", str(tmp_path / "s.png"), "--model",
                 str(model), "--quiet", "--method", "gmm"]) == 0
    assert main(["densities", CHELSEA, "--model", str(model), "-o", str(tmp_path / "d.npy"),
                 "--log", "--png", str(tmp_path / "heat.png")]) == 0
    pixels = np.asarray(PILImage.open(CHELSEA).convert("RGB"))
    expected = compute_densities(pixels, load(model), log=True)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), expected)
    heat = np.asarray(PILImage.open(tmp_path / "heat.png"))
    assert heat.shape == pixels.shape[:2] and heat.max() == 255


def test_densities_of_an_image_with_alpha_under_its_own_model(tmp_path):
    # a mixture fitted on an RGBA image scores colour and alpha together, as fitted
    pixels = np.asarray(PILImage.open(CHELSEA).convert("RGB").resize((60, 40)))
    alpha = np.tile(np.linspace(0, 255, 60).astype(np.uint8), (40, 1))
    rgba = np.dstack([pixels, alpha])
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    model = tmp_path / "m.npz"
    assert main(["segment", str(tmp_path / "a.png"), "-k", "4", "--method", "gmm",
                 "--model", str(model), "-o", str(tmp_path / "s.png"), "--quiet"]) == 0
    assert load(model).input_space_ == "composite"
    assert main(["densities", str(tmp_path / "a.png"), "--model", str(model), "-o",
                 str(tmp_path / "d.npy"), "--log"]) == 0
    expected = compute_densities(rgba, load(model), log=True)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), expected)
    proc = run("densities", CHELSEA, "--model", str(model), "-o", str(tmp_path / "e.npy"))
    assert proc.returncode == 2 and "colour and alpha" in proc.stderr


def test_densities_of_a_grey_image(tmp_path, capsys):
    """A grey image (H, W) is scored by a model fitted on grey, and refused in one
    line by a colour model (it raised IndexError)."""
    grey = np.asarray(PILImage.open(CHELSEA).convert("L").resize((60, 40)))
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    grey_model, colour_model = tmp_path / "g.npz", tmp_path / "c.npz"
    for src, model in ((tmp_path / "g.png", grey_model), (CHELSEA, colour_model)):
        assert main(["segment", str(src), "-k", "3", "--method", "gmm", "--model", str(model),
                     "-o", str(tmp_path / "s.png"), "--quiet", "--force"]) == 0
    assert main(["densities", str(tmp_path / "g.png"), "--model", str(grey_model), "-o",
                 str(tmp_path / "d.npy"), "--log"]) == 0
    mixture = load(grey_model)
    expected = mixture.score_samples(grey.reshape(-1, 1).astype(np.float64)).reshape(grey.shape)
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), expected, rtol=1e-12, atol=1e-12)
    capsys.readouterr()
    assert main(["densities", str(tmp_path / "g.png"), "--model", str(colour_model), "-o",
                 str(tmp_path / "e.npy")]) == 2
    assert "has 1 colour channel(s) but the model was fitted on 3" in capsys.readouterr().err


def test_sweep_writes_plot_and_csv(tmp_path):
    proc = run("sweep", CHELSEA, "--k", "2:6:2", "-o", str(tmp_path / "m.png"), "--csv",
               str(tmp_path / "m.csv"))
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[0] == "k,inertia,seconds" and [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]
    inertia = [float(r.split(",")[1]) for r in rows[1:]]
    assert inertia[0] > inertia[1] > inertia[2]
    assert PILImage.open(tmp_path / "m.png").format == "PNG"


def test_info(capsys):
    assert main(["info", str(DATA / "coffee.png")]) == 0
    out = capsys.readouterr().out
    assert "600x400 pixels" in out and "94478 unique colours" in out


@pytest.mark.parametrize("args, status, message", [
    (["segment", "missing.png", "-k", "3", "-o", "{tmp}/o.png"], 1, "no such file"),
    (["segment", str(DATA / "SOURCES.md"), "-k", "3", "-o", "{tmp}/o.png"], 1, "not an image"),
    (["segment", CHELSEA, "-k", "0", "-o", "{tmp}/o.png"], 2, "positive integer"),
    (["segment", CHELSEA, "-k", "x", "-o", "{tmp}/o.png"], 2, "positive integer"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.xyz"], 2, "image format"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.ico"], 2, "does not write ICO"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/no/o.png"], 1, "does not exist"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--tol", "-1"], 2, "number >= 0"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--threads", "0"], 2, "positive"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--method", "x"], 2, "invalid choice"),
    (["densities", CHELSEA, "--model", "{tmp}/none.npz", "-o", "{tmp}/d.npy"], 1, "no such file"),
    (["densities", CHELSEA, "--model", str(DATA / "chelsea.png"), "-o", "{tmp}/d.npy"], 1,
     "cannot read"),
    (["densities", CHELSEA, "--model", "{tmp}/m.npz", "-o", "{tmp}/d.txt"], 2, ".npy"),
    (["sweep", CHELSEA, "--k", "5:2:x", "-o", "{tmp}/m.png"], 2, "invalid k range"),
    (["sweep", CHELSEA, "--k", "0:4", "-o", "{tmp}/m.png"], 2, "at least 1"),
    (["sweep", CHELSEA, "--k", "8:2:2", "-o", "{tmp}/m.png"], 2, "stop is below its start"),
    (["segment", CHELSEA, "-k", "300", "-o", "{tmp}/o.png"], 2, "at most 256 colours"),
    (["segment", CHELSEA, "-k", "257", "-o", "{tmp}/o.gif"], 2, "add --rgb"),
    (["sweep", CHELSEA, "-k", "1:999999999999", "--csv", "{tmp}/m.csv"], 2, "at most 1000"),
    (["info", "missing.png"], 1, "no such file"),
    ([], 2, "required"),
])
def test_errors_are_one_line_with_status_and_no_output(tmp_path, args, status, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run(*args)
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert [p for p in os.listdir(tmp_path)] == []  # nothing written, not even a temp file


def test_debug_shows_the_traceback(tmp_path):
    proc = run("--debug", "segment", "missing.png", "-k", "3", "-o", str(tmp_path / "o.png"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_ctrl_c_during_a_fit_writes_nothing(tmp_path, monkeypatch, capsys):
    from emcore import mixture

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(mixture, "m_step", interrupt)
    out = tmp_path / "o.png"
    assert main(["segment", CHELSEA, "-k", "3", "-o", str(out), "--method", "gmm"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_default_segment_is_an_indexed_kmeans_png(tmp_path):
    out = tmp_path / "o.png"
    proc = run("segment", CHELSEA, "-k", "8", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["method"] == "kmeans"
    with PILImage.open(out) as im:
        assert im.mode == "P" and len(im.getpalette()) == 8 * 3
    proc = run("segment", CHELSEA, "--colors", "8", "-o", str(tmp_path / "r.png"), "--rgb",
               "--dither", "--color-space", "oklab")
    assert proc.returncode == 0, proc.stderr
    assert PILImage.open(tmp_path / "r.png").mode == "RGB"


def test_existing_outputs_need_force_and_the_input_is_named(tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    proc = run("segment", CHELSEA, "-k", "3", "-o", str(out))
    assert proc.returncode == 2 and "exists; add --force" in proc.stderr
    assert out.read_bytes() == b"keep me"
    assert run("segment", CHELSEA, "-k", "3", "-o", str(out), "--force").returncode == 0
    copy = tmp_path / "in.png"
    copy.write_bytes(open(CHELSEA, "rb").read())
    proc = run("segment", str(copy), "-k", "3", "-o", str(copy))
    assert proc.returncode == 2 and "is an input file" in proc.stderr


def test_version_debug_anywhere_and_help_defaults():
    from emcore import __version__
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"emcore {__version__}"
    proc = run("segment", "missing.png", "-k", "3", "-o", "x.png", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    helptext = run("segment", "--help").stdout
    assert "(default: kmeans)" in helptext and "(default: spherical)" in helptext


def test_too_many_colours_is_lossless_with_a_notice(tmp_path):
    out = tmp_path / "o.png"
    # a copy of every colour, not k-means with one cluster per colour (which took minutes)
    proc = run("segment", CHELSEA, "-k", "1000000", "-o", str(out), "--rgb", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "note: k=1000000 is more than the 32584 distinct colours" in proc.stderr
    original = np.asarray(PILImage.open(CHELSEA).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(PILImage.open(out).convert("RGB")), original)


def test_outputs_are_written_as_a_set(tmp_path):
    (tmp_path / "m.npz").mkdir()  # the model cannot be written over a folder
    proc = run("segment", CHELSEA, "-k", "3", "-o", str(tmp_path / "o.png"), "--labels",
               str(tmp_path / "l.npy"), "--model", str(tmp_path / "m.npz"), "--force",
               "--method", "gmm")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # neither the image nor the labels


def test_sweep_csv_only_and_matplotlib_checked_first(tmp_path, monkeypatch, capsys):
    proc = run("sweep", CHELSEA, "-k", "2,3", "--csv", str(tmp_path / "m.csv"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.csv").read_text().startswith("k,inertia,seconds")
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    from emcore import segment
    monkeypatch.setattr(segment, "k_sweep", lambda *a, **k: pytest.fail("fitted first"))
    assert main(["sweep", CHELSEA, "-k", "2", "-o", str(tmp_path / "p.png")]) == 2
    assert "needs matplotlib" in capsys.readouterr().err
    assert main(["sweep", CHELSEA, "-k", "2"]) == 2


def test_info_sweep_and_densities_read_standard_input(tmp_path):
    """'-' is standard input for every subcommand, as for segment; it was "no such
    file: -". Each reads the same as from the file."""
    data = open(CHELSEA, "rb").read()

    def run(*args, input):  # the image's bytes on standard input, text out
        proc = subprocess.run([sys.executable, "-m", "emcore", *args], capture_output=True,
                              timeout=300, cwd=HERE, input=input)
        proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
        return proc

    by_path, piped = run("info", CHELSEA, input=b""), run("info", "-", input=data)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.replace("standard input", CHELSEA) == by_path.stdout
    for name, source in (("path", CHELSEA), ("pipe", "-")):
        proc = run("sweep", source, "-k", "2,3", "--csv", str(tmp_path / f"{name}.csv"),
                   input=data)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "path.csv").read_text().split()[1].split(",")[:2] == (
        tmp_path / "pipe.csv").read_text().split()[1].split(",")[:2]
    model = tmp_path / "m.npz"
    assert main(["segment", CHELSEA, "-k", "3", "--method", "gmm", "-o",
                 str(tmp_path / "s.png"), "--model", str(model), "--quiet"]) == 0
    for name, source in (("path", CHELSEA), ("pipe", "-")):
        proc = run("densities", source, "--model", str(model), "-o",
                   str(tmp_path / f"{name}.npy"), input=data)
        assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "pipe.npy"), np.load(tmp_path / "path.npy"))


def test_fifo_input_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "in.png")
    proc = run("segment", str(tmp_path / "in.png"), "-k", "3", "-o", str(tmp_path / "o.png"))
    assert proc.returncode == 1 and "FIFO" in proc.stderr


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, signum):
    """SIGTERM (a service manager) or SIGHUP (the terminal closed) while the output is
    being written: the temporary file is removed, the status the signal's."""
    import signal
    import textwrap
    signum = getattr(signal, signum)
    import time
    script = textwrap.dedent(f"""
        import os, sys, time
        from emcore import image
        real = image.write_image
        def slow(*args, **kwargs):
            real(*args, **kwargs)
            print("writing", flush=True)
            time.sleep(30)
        image.write_image = slow
        from emcore.cli import main
        sys.exit(main(["segment", {CHELSEA!r}, "-k", "3", "-o", {str(tmp_path / 'o.png')!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signum)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signum
    time.sleep(0.1)
    assert os.listdir(tmp_path) == []


def test_import_is_light_and_names_load_on_first_use(tmp_path):
    code = ("import sys, emcore\n"
            "assert 'numpy' not in sys.modules, 'import emcore imported numpy'\n"
            "assert 'emcore.pipeline' not in sys.modules\n"
            "from emcore import GaussianMixture, load\n"
            "assert GaussianMixture.__module__ == 'emcore.mixture'\n"
            "assert sorted(emcore.__all__) == sorted(set(dir(emcore)) & set(emcore.__all__))\n"
            "try:\n"
            "    emcore.nonsense\n"
            "except AttributeError as err:\n"
            "    assert 'nonsense' in str(err)\n"
            "else:\n"
            "    raise SystemExit('no AttributeError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_ctrl_c_while_the_command_starts_is_one_line_and_status_130(monkeypatch, capsys):
    import emcore.cli as cli

    def interrupted(name):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_command", interrupted)
    assert cli.main(["segment", "x.png"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_the_command_starts_one_blas_thread(tmp_path):
    # numpy's OpenBLAS would start a spinning thread per core; the command needs none
    code = ("import sys\n"
            "from emcore.cli import main\n"
            f"assert main(['info', {CHELSEA!r}]) == 0\n"
            "from threadpoolctl import threadpool_info\n"
            "blas = [p for p in threadpool_info() if p['user_api'] == 'blas']\n"
            "assert blas and all(p['num_threads'] == 1 for p in blas), blas\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    env["OPENBLAS_NUM_THREADS"] = "2"  # the user's choice stands
    proc = subprocess.run([sys.executable, "-c", code.replace("== 1", "== 2")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr


def test_the_command_skips_the_teardown_only_with_nothing_left_running():
    import multiprocessing
    import threading

    from emcore.cli import _nothing_left_running
    release = threading.Event()
    waiting = threading.Thread(target=release.wait)
    waiting.start()
    try:
        assert not _nothing_left_running()  # a thread that may be writing a file
    finally:
        release.set()
        waiting.join()
    fork = multiprocessing.get_context("fork")
    stop = fork.Event()
    child = fork.Process(target=stop.wait)
    child.start()
    try:
        assert not _nothing_left_running()  # a worker process
    finally:
        stop.set()
        child.join()
    # a fresh process that ran nothing else
    alone = subprocess.run([sys.executable, "-c", "from emcore.cli import _nothing_left_running;"
                            " print(_nothing_left_running())"], capture_output=True, text=True,
                           timeout=120, cwd=HERE)
    assert alone.stdout.strip() == "True", alone.stderr


def test_the_entry_point_called_in_process_returns_through_system_exit(
        tmp_path, monkeypatch, capsys):
    # a harness that calls the console script's function in its own process (as
    # pytest-console-scripts does) gets SystemExit with the status; os._exit would end it
    from emcore.cli import _running_as_the_command, command
    assert not _running_as_the_command()  # this process is pytest's
    monkeypatch.setattr(sys, "argv", ["emcore", "info", CHELSEA])
    with pytest.raises(SystemExit) as ended:
        command()
    assert ended.value.code == 0 and "chelsea" in capsys.readouterr().out
    # a console script (a file named emcore run as the program) is the command's own
    script = tmp_path / "emcore"
    script.write_text("from emcore.cli import _running_as_the_command\n"
                      "print(_running_as_the_command())\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=HERE)
    assert done.stdout.strip() == "True", done.stderr


def test_a_batch_that_ends_at_once_has_flushed_every_line_and_kept_its_status(tmp_path):
    # worker processes (two threads: one file each at a time), stdout a pipe: the
    # JSON lines of every file arrive, and a bad file still makes the status 1
    sources = []
    for i in range(4):
        sources.append(tmp_path / f"p{i}.png")
        PILImage.open(CHELSEA).convert("RGB").resize((60 + 7 * i, 40)).save(sources[-1])
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
    out = tmp_path / "out"
    out.mkdir()
    proc = run("segment", *map(str, sources), str(tmp_path / "bad.png"), "-k", "5", "-o",
               f"{out}{os.sep}", "--ext", ".png", "--json", "--threads", "2")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "bad.png" in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(s["input"] for s in lines) == sorted(map(str, sources))
    for src in sources:
        with PILImage.open(out / src.name) as im:
            picture = np.asarray(im.convert("RGB"))
        assert picture.shape[:2] == np.asarray(PILImage.open(src)).shape[:2]
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) <= 5
