"""The ``emcore`` command: segment, densities, sweep and info (a module each).

Errors end in one line on stderr and exit status 2 (a bad argument or value) or
1 (a file could not be read or written); ``--debug`` shows the traceback.
``segment`` also exits 98 (--skip-if-larger skipped a file) and 99 (--quality's
minimum not reached), as pngquant does. Ctrl-C stops within one iteration and
writes nothing more (exit status 130). Every output file is written to a
temporary file and put in place whole; without --force a file that appeared
meanwhile is not replaced.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import NoReturn

from emcore.cli._args import (FAILURE, INTERRUPTED, USAGE_ERROR, Help, Parser, UsageError,
                              notice)

__all__ = ["main", "command", "build_parser", "UsageError"]

#: the subcommands, a module each (imported by main, where Ctrl-C is caught)
COMMANDS = ("segment", "densities", "sweep", "info")


def _command(name: str):
    return importlib.import_module(f"emcore.cli.{name}")


def build_parser() -> Parser:
    """The ``emcore`` argument parser, one subparser per module of COMMANDS."""
    from emcore import __version__
    parser = Parser(prog="emcore",
                    description="Gaussian-mixture (EM) and k-means colour segmentation.",
                    formatter_class=Help)
    parser.add_argument("--version", action="version", version=f"emcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name in COMMANDS:
        _command(name).add_parser(sub, Help)
    return parser


def _message(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, MemoryError):
        return f"not enough memory{': ' + text if text else ''}"
    return text or type(err).__name__


def _one_blas_thread() -> None:
    """Ask OpenBLAS for one thread, unless the user chose, before numpy starts it.

    numpy's OpenBLAS starts a thread per core at import, and they spin: measured on
    ``emcore segment`` of a small icon, 255 ms of CPU per run against 147 ms with one
    thread, the same wall time. The command calls BLAS on nothing large (its long
    sums go through ``_estimation.weighted_sum``), and a batch's other files need
    those cycles. Too late, and left alone, once numpy is imported (in-process use).
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _one_blas_thread()
    try:
        parser = build_parser()  # imports the subcommands, numpy with them
    except KeyboardInterrupt:
        print("emcore: interrupted; nothing was written", file=sys.stderr)
        return INTERRUPTED
    args = parser.parse_args(argv)  # exits with status 2 and a usage line on bad arguments
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings():
            # a library warning (k above the distinct colours, a lossy format) is a one-line note
            warnings.showwarning = lambda message, *rest: notice(args, str(message))
            warnings.simplefilter("always", UserWarning)
            return _command(args.command).run(args)
    except KeyboardInterrupt:
        print("emcore: interrupted; nothing more was written", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        sys.stderr.write("emcore: standard output was closed before the result was written\n")
        return FAILURE
    except Exception as err:  # one line for the person at the terminal
        if debug:
            raise
        usage = isinstance(err, (ValueError, TypeError, FileExistsError))
        hint = (f" (see 'emcore {args.command} --help')" if usage and not isinstance(
            err, FileExistsError) else " (add --debug for details)" if not isinstance(
                err, OSError) else "")
        print(f"emcore {args.command}: error: {_message(err)}{hint}", file=sys.stderr)
        return USAGE_ERROR if usage else FAILURE


def command() -> NoReturn:
    """The ``emcore`` command: :func:`main`, then the process ends with its status.

    When the process is the command's own (not a harness calling this function) and
    has nothing left running (no thread but this one, no worker process), it ends
    without the interpreter's teardown of numpy, Pillow and OpenMP, once its output
    is flushed: 15-20 ms of the 110-130 ms a small file takes (README, "Many files").
    Its files are closed by then. Otherwise (Ctrl-C while a batch's threads finish
    their files) it ends as Python does, joining them.
    """
    status = main()
    if _running_as_the_command() and _nothing_left_running():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit reports it
            sys.exit(status)
        os._exit(status)
    sys.exit(status)


def _running_as_the_command() -> bool:
    """Whether this process was started to run the command (the ``emcore`` script, or
    ``python -m emcore``), not by a program that calls the entry point in its own
    process (a test harness), which ``os._exit`` would end with it."""
    started = sys.modules.get("__main__")
    spec = getattr(started, "__spec__", None)
    if spec is not None and spec.name == "emcore.__main__":
        return True
    script = getattr(started, "__file__", None)
    return isinstance(script, str) and os.path.splitext(os.path.basename(script))[0] in (
        "emcore", "emcore-script")


def _nothing_left_running() -> bool:
    """Whether this process runs no other Python thread and has no live child process
    made by multiprocessing."""
    import threading
    if threading.active_count() > 1:
        return False
    processes = sys.modules.get("multiprocessing")
    return processes is None or not processes.active_children()


if __name__ == "__main__":
    command()
