"""What every subcommand shares: argument types, the parser, output checks, notices."""
from __future__ import annotations

import argparse
import io
import math
import os
import sys

#: exit statuses: a bad argument or value; a file that could not be read or written;
#: Ctrl-C; --skip-if-larger skipped a file; --quality could not reach its minimum
#: (the last two are pngquant's numbers)
USAGE_ERROR, FAILURE, INTERRUPTED, SKIPPED, QUALITY_TOO_LOW = 2, 1, 130, 98, 99


class UsageError(ValueError):
    """A command-line value that is wrong in itself (exit status 2)."""


#: An input (or output) named '-': standard input (output)
STDIO = "-"


def image_argument(name: str, stdin_bytes: bytes | None = None):
    """An input image as the library reads it: its path, or for '-' standard input's
    bytes in memory (the reader seeks), read now unless given (a batch reads them once)."""
    if name != STDIO:
        return name
    return io.BytesIO(sys.stdin.buffer.read() if stdin_bytes is None else stdin_bytes)


def number(kind, minimum, name, maximum=None):
    """An argparse type: a ``kind`` (int or float) that is finite and in [minimum, maximum]."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        if not (math.isfinite(value) and value >= minimum
                and (maximum is None or value <= maximum)):
            raise argparse.ArgumentTypeError(f"expected {name}, got {text}")
        return value
    return parse


positive_int = number(int, 1, "a positive integer")
non_negative_int = number(int, 0, "an integer >= 0")
non_negative_float = number(float, 0, "a number >= 0")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit status 2) instead of the whole usage, whose
    subcommands take their files between their options too (``emcore segment a.png -k 8
    b.png``), as GNU tools and pngquant do."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._subparsers is not None or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # the intermixed parse calls this method again
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool) or "default" in (
                action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_common(parser: argparse.ArgumentParser, *, threads: bool = True, force: bool = True,
               quiet: bool = False) -> None:
    """Options every subcommand spells the same way."""
    # SUPPRESS: "emcore --debug segment ..." and "emcore segment ... --debug" both work
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    if threads:
        parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                            help="threads (default: OMP_NUM_THREADS or all cores)")
    if force:
        parser.add_argument("-f", "--force", action="store_true",
                            help="overwrite output files that exist")
    if quiet:
        parser.add_argument("--quiet", action="store_true",
                            help="no progress bar, notices or per-file summary lines "
                                 "(--json still prints)")


def progress(total, description, quiet):
    """A tqdm bar on stderr when it is a terminal (shown after one second), else None."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, delay=1.0, file=sys.stderr, leave=False)


def check_outputs(outputs, *, inputs=(), force=False):
    """Refuse, before any work, outputs that cannot or should not be written.

    ``outputs`` holds (path, allowed extensions or None) pairs; None paths are
    skipped. An existing file needs ``force``; an input file is named as such.
    """
    seen = set()
    inputs = {os.path.realpath(p) for p in inputs if p and os.path.exists(p)}
    for path, extensions in outputs:
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"cannot write {path}: folder {folder} is not writable")
        if extensions and os.path.splitext(path)[1].lower() not in extensions:
            raise UsageError(f"{path} must end in {' or '.join(extensions)}")
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{path} is named for two outputs")
        seen.add(real)
        if os.path.exists(path) and not force:
            what = "is an input file" if real in inputs else "exists"
            raise UsageError(f"{path} {what}; add --force to replace it")


def image_format(path):
    """The format of an output path from its extension; a UsageError if it has none."""
    from emcore.image import image_format as from_extension
    try:
        return from_extension(path)
    except ValueError as err:
        raise UsageError(str(err)) from None


def notice(args, message):
    """A one-line note on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        print(f"emcore {args.command}: note: {message}", file=sys.stderr)
