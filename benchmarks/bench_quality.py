"""The main job's picture and time beside libimagequant and Pillow.

Group "quality <photo> 32 colours": each quantizer in process (the image in
memory, the indexed result out), with PSNR, mean CIEDE2000 and indexed-PNG
bytes in extra_info. Group "main job <photo>": the whole command, file to file,
as a new process: ``emcore segment IN -k 32 -o OUT.png`` against
``pngquant --nofs 32`` (when pngquant is on the PATH), with equal threads: emcore
with --threads 1 beside pngquant with OMP_NUM_THREADS=1, and both on all cores
(Debian's pngquant runs libimagequant on OpenMP; the in-process libimagequant
of the quality group uses one thread).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from _data import FULL, load_photo
from quality import METHODS, mean_ciede2000, photographs, png_bytes, psnr

PHOTOS = list(photographs()) if FULL else ["coffee"]
PEERS = ["libimagequant, no dithering", "libimagequant, dithering", "Pillow median cut",
         "Pillow fast octree"]
_photos = {}


def _photo(name):
    if name not in _photos:
        _photos[name] = photographs([name])[name]
    return _photos[name]


def _record(benchmark, img, indexed):
    result = np.asarray(indexed.convert("RGB"))
    info = {"psnr": psnr(img, result), "ciede2000": mean_ciede2000(img, result),
            "bytes": png_bytes(indexed)}
    benchmark.extra_info.update(info)
    return info


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("threads", [1, None], ids=["1thread", "allcores"])
def test_quality_emcore(benchmark, name, threads):
    pytest.importorskip("skimage")
    img = _photo(name)
    benchmark.group = f"quality {name} 32 colours"
    from emcore import segment_image
    from emcore.image import _as_indexed

    def run():
        seg = segment_image(img, 32, n_threads=threads)
        return _as_indexed(seg.labels, seg.palette)
    info = _record(benchmark, img, benchmark.pedantic(run, rounds=3))
    if name == "coffee":  # README: emcore's default picture, beside libimagequant's
        iq = pytest.importorskip("imagequant")
        peer = iq.quantize_pil_image(Image.fromarray(img).convert("RGBA"), dithering_level=0.0,
                                     max_colors=32)
        assert info["psnr"] > psnr(img, np.asarray(peer.convert("RGB")))
        assert info["bytes"] <= 1.15 * png_bytes(peer)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("peer", PEERS)
def test_quality_peer(benchmark, name, peer):
    pytest.importorskip("skimage")
    if peer.startswith("libimagequant"):
        pytest.importorskip("imagequant", reason="libimagequant is a peer: pip install '.[bench]'")
    img = _photo(name)
    benchmark.group = f"quality {name} 32 colours"
    indexed = benchmark.pedantic(lambda: METHODS[peer](img, 32), rounds=3)
    info = _record(benchmark, img, indexed)
    assert indexed.mode == "P" and info["psnr"] > 20


@pytest.fixture(scope="module")
def photo_2mp(tmp_path_factory):
    import compileall

    import emcore
    # the bytecode pip writes at install: an editable install (or PYTHONDONTWRITEBYTECODE)
    # would otherwise compile emcore's sources at every start, about 80 ms
    compileall.compile_dir(os.path.dirname(emcore.__file__), quiet=1)
    path = tmp_path_factory.mktemp("main-job") / "coffee-2.2MP.png"
    Image.fromarray(load_photo("coffee", 3)).save(path)
    return path


def _command_bench(benchmark, photo_2mp, command, out, k, env=None):
    benchmark.group = f"main job coffee-2.2MP {k} colours, file to file"

    def run():
        if os.path.exists(out):
            os.unlink(out)
        # not from the repo root, where python -m would import the uncompiled source folder
        subprocess.run(command, check=True, capture_output=True, timeout=300,
                       cwd=os.path.dirname(out), env=env)
    benchmark.pedantic(run, rounds=3 if FULL else 1)
    with Image.open(photo_2mp) as a, Image.open(out) as b:
        original, result = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
        benchmark.extra_info.update({"psnr": psnr(original, result), "bytes": os.path.getsize(out),
                                     "mode": b.mode})


@pytest.mark.parametrize("k", ["32", "256"])
@pytest.mark.parametrize("threads", ["1", None], ids=["1thread", "allcores"])
def test_main_job_emcore(benchmark, photo_2mp, tmp_path, threads, k):
    out = tmp_path / "out.png"
    command = [sys.executable, "-m", "emcore", "segment", str(photo_2mp), "-k", k, "-o",
               str(out), "--force"] + (["--threads", threads] if threads else [])
    _command_bench(benchmark, photo_2mp, command, out, k)
    assert benchmark.extra_info["mode"] == "P"


@pytest.mark.parametrize("k", ["32", "256"])
@pytest.mark.parametrize("threads", ["1", None], ids=["1thread", "allcores"])
def test_main_job_pngquant(benchmark, photo_2mp, tmp_path, threads, k):
    if shutil.which("pngquant") is None:
        pytest.skip("pngquant is a peer of the main job: apt-get install pngquant")
    out = tmp_path / "out.png"
    env = dict(os.environ, **({"OMP_NUM_THREADS": threads} if threads else {}))
    _command_bench(benchmark, photo_2mp,
                   ["pngquant", "--nofs", k, "--force", "-o", str(out), str(photo_2mp)], out, k,
                   env)
