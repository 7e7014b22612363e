"""Safe file handling: refuse special files before reading, write outputs atomically.

Every output is written to a temporary file in its destination folder and renamed
into place, so a failure, Ctrl-C or SIGTERM leaves the previous file (or none),
never a partial one. ``atomic_outputs`` does the same for a set of files: all
temporary files are written before the first rename, so one that cannot be
written leaves none of the set behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence


def _article(noun):
    return "an" if noun[:1].lower() in "aeiou" else "a"


def check_readable_file(path: str | bytes | os.PathLike, what: str = "file") -> str:
    """The path as a str if it names a regular file; an OSError naming the problem otherwise.

    A FIFO, a device or a socket would block or never end when read, so they
    are refused from their ``stat`` alone, before anything is opened.
    """
    path = os.fsdecode(path)  # bytes paths too: messages and the result are str
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as err:
        raise OSError(f"cannot read {path}: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path} is a folder, not {_article(what)} {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        raise OSError(f"{path} is {kind}, not {_article(what)} {what}: emcore reads regular "
                      "files only")
    return path


def _new_file_mode() -> int:
    """0666 less the process umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _temporary_beside(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1],
                                   dir=folder)
    except OSError as err:
        raise PermissionError(f"cannot write {path}: {err.strerror}") from None
    os.close(fd)
    return tmp


def _put_in_place(tmp: str, path: str, exclusive: bool) -> None:
    # mkstemp makes the file private (0600); give it the mode a plain open() would,
    # or keep the mode of the file it replaces
    os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else _new_file_mode())
    if not exclusive:
        os.replace(tmp, path)
        return
    try:  # a hard link is created only where no file is: nothing made meanwhile is lost
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; add --force to replace it") from None
    except OSError:  # a file system without hard links: the check, then the rename
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists; add --force to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _keep_copy(path: str, backup: str) -> None:
    """``backup`` made a copy of ``path``: a hard link, or a real copy where links fail."""
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while writing, so the cleanup below runs.

    Only from the main thread (Python allows signal handlers nowhere else), and
    only where the default handler is in force: a caller's own handler is kept.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def _exit(signum, frame):  # noqa: ARG001 - the signal handler's signature
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _check_destination(path: str) -> None:
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a folder")


def _put_all_in_place(temporaries: list[str], paths: list[str], exclusive: bool) -> None:
    """Rename every temporary file to its path, or (on a failure) none.

    Each file about to be replaced is first hard-linked to a backup name, so a
    rename that fails part-way can put the earlier ones back.
    """
    backups: list[str | None] = []
    done: list[str] = []
    try:
        for path in paths:
            backup = None
            if os.path.exists(path):
                backup = _temporary_beside(path)
                os.unlink(backup)
                _keep_copy(path, backup)
            backups.append(backup)
        for tmp, path in zip(temporaries, paths):
            _put_in_place(tmp, path, exclusive)
            done.append(path)
    except BaseException:
        for path, backup in zip(done, backups):
            with contextlib.suppress(OSError):
                if backup is None:
                    os.unlink(path)
                else:
                    os.replace(backup, path)
        raise
    finally:
        for backup in backups:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike[str]], *,
                   exclusive: bool = False) -> Iterator[list[str]]:
    """Yield one temporary path per output; rename them all into place on success.

    On any exception (KeyboardInterrupt and SIGTERM included) every temporary
    file is removed and every destination is left as it was. ``exclusive``:
    a destination that exists when the files are put in place (even one made
    while they were being written) is a FileExistsError, not replaced.
    """
    destinations = [os.fspath(p) for p in paths]
    temporaries: list[str] = []
    with _terminate_as_exit():
        try:
            for path in destinations:
                _check_destination(path)
                temporaries.append(_temporary_beside(path))
            yield list(temporaries)
            _put_all_in_place(temporaries, destinations, exclusive)
        except BaseException:
            for tmp in temporaries:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[str]:
    """``atomic_outputs`` for a single file: yields its temporary path."""
    with atomic_outputs([path], exclusive=exclusive) as (tmp,):
        yield tmp
