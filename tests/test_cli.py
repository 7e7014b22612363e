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


def run(*args, **kwargs):
    # not from the repo root, where python -m would import the uncompiled source folder
    return subprocess.run([sys.executable, "-m", "emcore", *args], capture_output=True,
                          text=True, timeout=300, cwd=HERE, **kwargs)


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
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/no/o.png"], 1, "does not exist"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--tol", "-1"], 2, "number >= 0"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--threads", "0"], 2, "positive"),
    (["segment", CHELSEA, "-k", "3", "-o", "{tmp}/o.png", "--method", "x"], 2, "invalid choice"),
    (["densities", CHELSEA, "--model", "{tmp}/none.npz", "-o", "{tmp}/d.npy"], 1, "cannot read"),
    (["densities", CHELSEA, "--model", str(DATA / "chelsea.png"), "-o", "{tmp}/d.npy"], 1,
     "cannot read"),
    (["densities", CHELSEA, "--model", "{tmp}/m.npz", "-o", "{tmp}/d.txt"], 2, ".npy"),
    (["sweep", CHELSEA, "--k", "5:2:x", "-o", "{tmp}/m.png"], 2, "invalid k range"),
    (["sweep", CHELSEA, "--k", "0:4", "-o", "{tmp}/m.png"], 2, "positive"),
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
    monkeypatch.setattr(mixture.GaussianMixture, "_m_step", interrupt)
    out = tmp_path / "o.png"
    assert main(["segment", CHELSEA, "-k", "3", "-o", str(out), "--method", "gmm"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
