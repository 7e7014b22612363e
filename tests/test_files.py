"""Atomic output sets and special-file refusal (emcore/_files.py)."""
import os

import pytest

from emcore import _files


def test_a_failed_rename_puts_the_earlier_files_back(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    real = _files._put_in_place
    calls = []

    def fail_second(tmp, path, exclusive):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(tmp, path, exclusive)
    monkeypatch.setattr(_files, "_put_in_place", fail_second)
    with pytest.raises(OSError, match="disk full"):
        with _files.atomic_outputs([a, b]) as (ta, tb):
            open(ta, "w").write("new a")
            open(tb, "w").write("new b")
    assert a.read_text() == "old a" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_all_written_on_success_with_normal_permissions(tmp_path):
    with _files.atomic_outputs([tmp_path / "x", tmp_path / "y"]) as (tx, ty):
        open(tx, "w").write("x")
        open(ty, "w").write("y")
    assert sorted(os.listdir(tmp_path)) == ["x", "y"]
    assert os.stat(tmp_path / "x").st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_special_files(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(OSError, match="FIFO"):
        _files.check_readable_file(tmp_path / "f")
    with pytest.raises(IsADirectoryError):
        _files.check_readable_file(tmp_path)
    with pytest.raises(FileNotFoundError):
        _files.check_readable_file(tmp_path / "none")


def test_bytes_paths_are_read_and_named_as_text(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    assert _files.check_readable_file(os.fsencode(tmp_path / "f")) == str(tmp_path / "f")
    with pytest.raises(FileNotFoundError) as err:
        _files.check_readable_file(os.fsencode(tmp_path / "none"))
    assert str(err.value) == f"no such file: {tmp_path / 'none'}"  # not b'...'



def test_exclusive_outputs_never_replace_a_file_made_meanwhile(tmp_path):
    atomic_outputs = _files.atomic_outputs
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError, match="add --force"):
        with atomic_outputs([target], exclusive=True) as (tmp,):
            with open(tmp, "w") as f:
                f.write("new")
            target.write_text("made during the fit")  # another process, meanwhile
    assert target.read_text() == "made during the fit"
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left
    with atomic_outputs([tmp_path / "fresh.png"], exclusive=True) as (tmp,):
        with open(tmp, "w") as f:
            f.write("x")
    assert (tmp_path / "fresh.png").read_text() == "x"
