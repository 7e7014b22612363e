"""Safe file handling: refuse special files before reading, write outputs atomically.

Every output is written to a temporary file in its destination folder and renamed
into place, so a failure, Ctrl-C, SIGTERM or SIGHUP leaves the previous file (or
none), never a partial one. ``atomic_outputs`` does the same for a set of files: all
temporary files are written before the first rename, so one that cannot be
written leaves none of the set behind. The steps that make a file and record it
(for the cleanup) run with those signals held back, so none lands between the two.
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


#: Signals that end a process by default and that a write turns into SystemExit
#: (SIGHUP: the terminal closed), so that its temporary files are removed
ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                       if hasattr(signal, name))
#: ... and Ctrl-C's, held back with them while a file is made and recorded
_HELD_SIGNALS = {signal.SIGINT, *ENDING_SIGNALS}


def raise_exit(signum, frame):  # noqa: ARG001 - the signal handler's signature
    """A signal handler: SystemExit with the shell's status for the signal, once; the
    signal is ignored from then on, so that a second one (a parent-death signal comes
    again as each of the dead parent's threads ends) cannot cut the cleanup short."""
    signal.signal(signum, signal.SIG_IGN)
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def ending_signals_as_exit() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while writing, so the cleanup below runs.

    Only from the main thread (Python allows signal handlers nowhere else), and
    only for a signal whose default handler is in force: a caller's own is kept.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in ENDING_SIGNALS if signal.getsignal(s) is signal.SIG_DFL]
    for signum in taken:
        signal.signal(signum, raise_exit)
    try:
        yield
    finally:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back for a few system calls (delivered after,
    where Python raises them), so that a file made is also recorded for the cleanup.
    Where signal masks do not exist (Windows), nothing is held."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


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
            with _signals_held():  # each backup made is one the cleanup removes
                backup = None
                if os.path.exists(path):
                    backup = _temporary_beside(path)
                    os.unlink(backup)
                    _keep_copy(path, backup)
                backups.append(backup)
        for tmp, path in zip(temporaries, paths):
            with _signals_held():  # each file put in place is one a rollback sees
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
    with ending_signals_as_exit():
        try:
            for path in destinations:
                _check_destination(path)
                with _signals_held():  # each temporary file made is one removed below
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
