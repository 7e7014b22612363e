"""Image input and output, unique colours, and the k-means tutorial's helpers.

Reading applies the EXIF orientation, keeps the ICC profile, converts LAB and
CMYK to sRGB and refuses what it cannot read faithfully (16-bit colour files,
FIFOs and devices). Writing is atomic (emcore/_files.py) and writes a quantized
result as an indexed image wherever the format has one.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
import zlib
from typing import TYPE_CHECKING, NamedTuple, cast

import numpy as np
from PIL import Image as PILImage

from emcore import _colors, _png
from emcore._dask import is_dask_array
from emcore._files import atomic_output, check_readable_file
from emcore._kernels import CODE_WORDS, code_scratch, spread_rgb8
from emcore._threads import resolve_n_threads, work_of
from emcore._validation import as_pixel_depth, as_real_array, check_finite, check_labels

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: Pillow modes read as they are; others are converted to sRGB (with alpha where present).
_PASS_MODES = {"L", "RGB", "RGBA", "LA", "I;16", "I;16B", "I;16L", "I", "F"}


class Image:
    """An image as the k-means tutorial used it.

    Attributes
    ----------
    rgb_matrix : ndarray (H, W, C)
        The pixels.
    rgb_vector : ndarray (H * W, C)
        The same pixels, one row each.
    shape : tuple
        ``rgb_matrix.shape``.
    title : str

    Parameters
    ----------
    rgb_matrix : array_like of shape (H, W, C) or (H, W)
    title : str, default ''
    """

    def __init__(self, rgb_matrix: ArrayLike, title: str = "") -> None:
        self.rgb_matrix = np.asarray(rgb_matrix)
        self.title = title

    @property
    def shape(self) -> tuple[int, ...]:
        """``rgb_matrix.shape``."""
        return self.rgb_matrix.shape

    @property
    def rgb_vector(self) -> np.ndarray:
        """The pixels one row each: (H * W, C), or (H * W, 1) for a grey image."""
        return self.rgb_matrix.reshape(-1, self.rgb_matrix.shape[-1]) if (
            self.rgb_matrix.ndim == 3) else self.rgb_matrix.reshape(-1, 1)

    def __repr__(self):
        return f"Image(shape={self.shape}, dtype={self.rgb_matrix.dtype}, title={self.title!r})"


#: Formats that store an indexed (palette) image, and lossy ones that would put back
#: colours a quantized image does not have.
PALETTE_FORMATS = {"PNG", "GIF", "TIFF", "BMP"}
LOSSY_FORMATS = {"JPEG", "AVIF"}
#: WebP is written lossless, its invisible colours kept (``exact``): a quantized image
#: stays exactly its palette (lossy WebP at Pillow's default quality turned the
#: 32-colour coffee result into 36,313 colours), and the file is smaller than the
#: PNG (56,362 against 64,382 bytes). JPEG 2000 is lossless at Pillow's defaults.
WEBP_OPTIONS = {"lossless": True, "exact": True}
#: Formats written without an alpha channel (the colour of every pixel kept)
NO_ALPHA_FORMATS = {"JPEG", "BMP", "PPM"}
#: The formats emcore writes (Pillow's names, and numpy's array file): each holds the
#: picture as it is (checked pixel for pixel by tests/test_image.py), but for the lossy
#: ones and alpha in the NO_ALPHA ones, which warn (warn_if_lossy).
WRITTEN_FORMATS = {"PNG", "GIF", "TIFF", "BMP", "WEBP", "JPEG", "AVIF", "JPEG2000", "TGA",
                   "PPM", "NPY"}
#: Why a format Pillow writes is refused, where there is more to say than "not written"
_NOT_WRITTEN_BECAUSE = {
    "ICO": "Pillow resizes an icon to standard sizes", "ICNS": "Pillow resizes an icon to "
    "standard sizes", "PDF": "a document, not an image file", "EPS": "a document, not an "
    "image file", "MPO": "it is JPEG, lossy", "XBM": "it holds 1 bit a pixel",
    "MSP": "it holds 1 bit a pixel", "PALM": "it holds 1 bit a pixel"}
#: Deflate level of PNG output, by zlib-ng (emcore/_png.py). The image data of the
#: coffee photo's 32-colour result at 2.2 MP: zlib (Pillow's) at 6 321 KB in 76 ms, at
#: 9 306 KB in 369 ms; zlib-ng at 6 315 KB in 38 ms, at 9 306 KB in 120 ms (one
#: thread). Over 7 photographs at 8-256 colours (benchmarks/file_size.py) zlib-ng at 9
#: wrote 0-3% fewer bytes than zlib at 6 in 1.1-1.6x its time.
PNG_LEVEL = 9
#: An indexed PNG of at most this many entries is written with its palette in order of
#: luminance (transparent entries first) and zlib's run-length strategy: PNG packs such
#: images at 4 bits or fewer a pixel, and indices that follow the brightness compress
#: better. Measured (benchmarks/file_size.py, 7 photographs): luminance order 6-20%
#: smaller at 8-16 colours in 20 of 21 cases, no difference above 16 (within 0.2%);
#: Z_RLE a further 0.1-17% smaller at 2-16 colours in 49 of 49 cases, and 5-20x
#: faster than the default strategy, but 10-40% larger above 16 colours.
LUMINANCE_ORDER_MAX = 16
#: Such a PNG's indices are also deflated unfiltered, at this level with the default
#: strategy, and written so when that is smaller: Pillow filters each row (Sub, Up,
#: Paeth), which suits some images and not others. On 7 photographs at 2, 8 and 16
#: colours (zlib-ng at 9 for Pillow's rows) this saved 1-23% on 7 of 21 (retina at 2
#: colours 6,622 -> 5,067 bytes, coffee at 16 48,478 -> 47,661) for 1-16 ms more a
#: write; level 9 saved 1-2% more (33% on retina) in 4-10x that time.
UNFILTERED_LEVEL = 6
#: oxipng's preset for ``optimize`` (2, its default: 0-21% smaller on 7 photographs,
#: 0.05-1.2 s each; benchmarks/file_size.py)
OXIPNG_LEVEL = 2


class Picture(NamedTuple):
    """Pixels read from a file or an object, with what writing them back needs.

    ``metadata`` holds what a file said beside its pixels and a result keeps
    (unless stripped): 'dpi' (x, y), 'text' {key: value} (PNG text chunks),
    'exif' bytes (with the orientation already applied to the pixels).
    """
    pixels: np.ndarray
    icc_profile: bytes | None = None
    metadata: dict | None = None


def _resolution(info: dict) -> dict:
    """The 'dpi' of Picture.metadata from a Pillow image's info, if it has one."""
    return {"dpi": tuple(float(v) for v in info["dpi"])} if "dpi" in info else {}


def _metadata(im: PILImage.Image, oriented: PILImage.Image) -> dict:
    meta = _resolution(im.info)
    text = getattr(im, "text", None)  # PNG tEXt, zTXt and iTXt chunks
    if text:
        meta["text"] = {str(k): str(v) for k, v in text.items()}
    exif = oriented.info.get("exif")  # exif_transpose's copy has the orientation removed
    if isinstance(exif, bytes) and exif:
        meta["exif"] = exif
    return meta


def readable_source(source: str | bytes | os.PathLike | io.BytesIO
                    ) -> tuple[str | io.BytesIO, str]:
    """(what Pillow opens, the name messages use): a path checked to be a regular file,
    or an in-memory file (standard input)."""
    if isinstance(source, io.BytesIO):  # named when read_picture read it from a file object
        return source, str(getattr(source, "name", "standard input"))
    path = check_readable_file(source, "image")
    return path, path


@contextlib.contextmanager
def pillow_errors(name: str):
    """Pillow's errors while reading ``name`` as one ValueError or OSError naming it."""
    try:
        yield
    except _DepthError:
        raise  # already names the file and what to do
    except PILImage.DecompressionBombError as err:
        raise ValueError(f"{name}: image is too large to read safely ({err})") from None
    except PILImage.UnidentifiedImageError:
        raise OSError(f"{name} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, EOFError, ValueError) as err:
        raise OSError(f"{name} could not be read as an image: {err}") from None


def count_frames(source: str | os.PathLike | io.BytesIO) -> int:
    """The frames (animation frames or pages) of an image file; 1 for a still image."""
    source, name = readable_source(source)
    if _file_kind(source) is not None:  # most inputs: their headers tell, without Pillow
        return 1
    start = source.tell() if isinstance(source, io.BytesIO) else 0
    try:
        with pillow_errors(name), PILImage.open(source) as im:
            return int(getattr(im, "n_frames", 1))
    finally:
        if isinstance(source, io.BytesIO):  # left where it was, for the read that follows
            source.seek(start)


#: The first bytes of a .npy file (a PNG's: _png.SIGNATURE)
NPY_MAGIC = b"\x93NUMPY"


def _file_kind(source: str | io.BytesIO) -> str | None:
    """What a file's first bytes say: 'npy' (numpy's format), 'still png' (a PNG whose
    chunks before the first IDAT hold no acTL: an APNG must put it there), or None
    for anything else, which Pillow reads. An in-memory file is left where it was."""
    with contextlib.ExitStack() as stack:
        f = source if isinstance(source, io.BytesIO) else stack.enter_context(
            open(source, "rb"))
        start = f.tell()
        try:
            head = f.read(8)
            if head[:6] == NPY_MAGIC:
                return "npy"
            if head != _png.SIGNATURE:
                return None
            while True:
                header = f.read(8)
                if len(header) < 8 or header[4:] == b"acTL":
                    return None
                if header[4:] == b"IDAT":
                    return "still png"
                f.seek(int.from_bytes(header[:4], "big") + 4, io.SEEK_CUR)  # data, CRC
        finally:
            f.seek(start)


def _read_npy(source: str | io.BytesIO, name: str) -> np.ndarray:
    """A .npy image array, without pickles; a file's is mapped first, and refused
    before its pixels are read when it holds more than Pillow would decode (its
    decompression-bomb limit)."""
    try:
        if isinstance(source, io.BytesIO):  # already in memory
            source.seek(0)
            return np.load(source, allow_pickle=False)
        mapped = np.load(source, mmap_mode="r", allow_pickle=False)
    except (OSError, EOFError, ValueError) as err:
        raise OSError(f"{name} could not be read as a .npy array: {err}") from None
    limit = 2 * (PILImage.MAX_IMAGE_PIXELS or 0)
    pixels = int(np.prod(mapped.shape[:2], dtype=np.int64)) if mapped.ndim >= 2 else 0
    if limit and pixels > limit:
        raise ValueError(f"{name}: image is too large to read safely ({pixels} pixels, "
                         f"more than {limit})")
    return np.array(mapped)

def _to_srgb(im: PILImage.Image) -> PILImage.Image:
    """A Pillow image in a mode emcore reads: colour spaces converted, alpha kept."""
    if im.mode in _PASS_MODES:
        return im
    from PIL import ImageCms  # here: a few ms of import, for LAB and CMYK images only
    if im.mode == "LAB":  # Pillow's own convert() is not colorimetric for LAB
        lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
        return cast(PILImage.Image, ImageCms.applyTransform(
            im, ImageCms.buildTransform(lab, srgb, "LAB", "RGB")))
    if im.mode == "CMYK" and im.info.get("icc_profile"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
            return cast(PILImage.Image, ImageCms.profileToProfile(
                im, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"))
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: Pillow's plain conversion below
    has_alpha = im.mode in ("RGBa", "La", "PA") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def sixteen_bit_colour(im: PILImage.Image) -> bool:
    """True for 16-bit-per-channel colour files (and grey + alpha, which Pillow opens as
    RGBA), which Pillow would cut to 8 bits."""
    if im.mode not in ("RGB", "RGBA", "RGBX"):
        return False
    for tile in getattr(im, "tile", ()):  # what the file's decoder was asked for
        args = tile[3]  # (decoder, extents, offset, args): rawmode first, or alone
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


#: Pillow modes whose ``transparency`` is a colour key (a PNG's tRNS chunk in a grey
#: or RGB file): the pixels of that value are transparent
_KEYED_MODES = {"L", "RGB", "I;16", "I;16B", "I;16L", "I"}


def _with_colour_key(arr: np.ndarray, key: object) -> np.ndarray:
    """Grey (H, W) or RGB (H, W, 3) pixels with a colour key as grey + alpha or RGBA:
    the key's pixels fully transparent, the others opaque (255, or 65535 above 8 bits).
    Unchanged when no pixel has the key, or it does not fit the pixels (a broken file,
    which decoders ignore too)."""
    grey = arr.ndim == 2
    if grey and isinstance(key, int):
        hit = arr == key
    elif (not grey and arr.shape[2] == 3 and isinstance(key, tuple) and len(key) == 3
          and all(isinstance(v, int) for v in key)):
        hit = (arr == np.array(key)).all(axis=2)
    else:
        return arr
    if not hit.any():  # no pixel is transparent: the image is opaque
        return arr
    opaque = 255 if arr.dtype == np.uint8 else 65535
    alpha = np.where(hit, 0, opaque).astype(arr.dtype)
    return np.dstack([arr, alpha])


def _pillow_pixels(im: PILImage.Image) -> tuple[np.ndarray, bytes | None]:
    """(pixels, ICC profile) of a loaded Pillow image: colour spaces converted to sRGB
    (the profile kept only where the pixels keep their encoding), a grey or RGB image's
    colour key made an alpha channel."""
    converted = _to_srgb(im)
    arr = np.asarray(converted)
    if converted is not im:
        return arr, None
    key = im.info.get("transparency") if im.mode in _KEYED_MODES else None
    return (arr if key is None else _with_colour_key(arr, key)), im.info.get("icc_profile")


def _png_16_bits(data: bytes) -> np.ndarray:
    """A 16-bit PNG's pixels as (H, W, 4) uint16 RGBA by libspng. pyspng.load() asks for
    8-bit formats or its own choice, which fails for grey + alpha at 16 bits; libspng
    leaves a tRNS colour key to the caller. Its errors (a truncated or corrupt stream)
    come as OSError."""
    from pyspng import _pyspng_c as spng
    try:
        return np.asarray(spng.spng_decode_image_bytes(data, spng.SPNG_FMT_RGBA16))
    except RuntimeError as err:
        raise OSError(str(err)) from None


class _DepthError(ValueError):
    """A file at a depth emcore would not read faithfully."""


def full_depth(source: str | io.BytesIO, im: PILImage.Image, name: str,
               page: int = 0) -> np.ndarray:
    """The pixels at full depth of a 16-bit colour file (or of its page, counted from 0),
    which Pillow would cut to 8 bits: PNG by libspng (pyspng; an APNG's first frame
    only), TIFF by tifffile; ValueError naming ``name`` when neither can."""
    arr = _full_depth(source, im, page)
    if arr is None:
        raise _DepthError(
            f"{name} has 16 bits per colour channel, which Pillow would cut to 8 bits: "
            "emcore reads 16-bit colour PNGs (with pyspng; of an animation the first "
            "frame) and TIFFs (with tifffile, pip install tifffile). Load it yourself "
            "and pass the uint16 array")
    return arr


def _full_depth(source: str | io.BytesIO, im: PILImage.Image,
                page: int) -> np.ndarray | None:
    data = source.getvalue() if isinstance(source, io.BytesIO) else None
    if im.format == "PNG" and page == 0:
        if data is None:
            with open(cast(str, source), "rb") as f:
                data = f.read()
        rgba = _png_16_bits(data)
        color_type = data[25]  # in the header, after the size and bit depth
        if color_type == 4:  # grey + alpha (which Pillow opens as RGBA) stays grey
            return np.ascontiguousarray(rgba[:, :, [0, 3]])
        if color_type == 6:
            return rgba
        rgb = np.ascontiguousarray(rgba[:, :, :3])
        key = im.info.get("transparency")
        return rgb if key is None else _with_colour_key(rgb, key)
    if im.format == "TIFF":
        try:
            import tifffile
        except ImportError:
            return None
        arr = tifffile.imread(io.BytesIO(data) if data is not None else source, key=page)
        return np.asarray(arr) if arr.dtype == np.uint16 and arr.ndim == 3 else None
    return None


#: PNG chunks that make a file more than its pixels, an ICC profile and a resolution
#: (text, EXIF with an orientation, transparency, animation): such files go through
#: Pillow, every other 8-bit PNG is decoded by libspng, twice as fast
_PNG_EXTRAS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tRNS", b"acTL"}


def _plain_png(data: bytes) -> bool:
    """Whether a PNG's chunks are only those a plain libspng decode keeps."""
    position = 8  # after the signature
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        if kind in _PNG_EXTRAS:
            return False
        if kind == b"IEND":
            return True
        position += 12 + length
    return False  # truncated: Pillow says what is wrong


def _fast_png(source: str | io.BytesIO, im: PILImage.Image) -> np.ndarray | None:
    """An 8-bit grey or colour PNG's pixels by libspng (pyspng), for a file with no
    chunk beyond those Pillow's header read already holds; None otherwise."""
    if im.format != "PNG" or im.mode not in ("L", "LA", "RGB", "RGBA") or im.info.get(
            "transparency") is not None:
        return None
    if isinstance(source, io.BytesIO):
        data = source.getvalue()
    else:
        with open(source, "rb") as f:
            data = f.read()
    if not _plain_png(data):
        return None
    import pyspng
    try:
        arr = np.asarray(pyspng.load(data))
    except Exception:  # anything libspng refuses: Pillow reads it or names the fault
        return None
    channels = len(im.mode)
    expected = (im.height, im.width) + ((channels,) if channels > 1 else ())
    if arr.dtype != np.uint8 or arr.shape != expected:
        return None
    return arr


#: The EXIF (and TIFF) orientation tag, and for each of its values the steps that show
#: an (H, W, ...) array upright, as Pillow's ImageOps.exif_transpose turns an image
ORIENTATION_TAG = 0x0112
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(a, -1)[::-1], 8: lambda a: np.rot90(a, 1)}


def _upright(im: PILImage.Image, arr: np.ndarray, meta: dict) -> np.ndarray:
    """Pixels read beside Pillow (at 16 bits) turned upright by the file's orientation,
    as exif_transpose turns the pixels Pillow reads; the orientation is dropped from
    the EXIF in ``meta`` (in place), which now describes upright pixels."""
    exif = im.getexif()
    orientation = exif.get(ORIENTATION_TAG, 1)
    if orientation not in _UPRIGHT:
        return arr
    if "exif" in meta:
        del exif[ORIENTATION_TAG]
        meta["exif"] = exif.tobytes()
    return np.ascontiguousarray(_UPRIGHT[orientation](arr))


def _open(path: str | bytes | os.PathLike | io.BytesIO) -> Picture:
    """Read an image file (or an in-memory file) fully: EXIF orientation applied, ICC
    profile kept where the pixels keep their encoding, colour spaces converted to sRGB
    (Pillow's size limit kept)."""
    source, path = readable_source(path)
    if _file_kind(source) == "npy":  # an array emcore wrote (16-bit colour, floats)
        return Picture(_read_npy(source, path), None, None)
    meta: dict
    arr: np.ndarray | None
    with pillow_errors(path):
        with PILImage.open(source) as im:
            sixteen_bit = sixteen_bit_colour(im)
            fast = None if sixteen_bit else _fast_png(source, im)
            if fast is not None:
                arr, icc = fast, im.info.get("icc_profile")
                meta = _resolution(im.info)  # the one piece of _metadata such a file has
            elif sixteen_bit:  # the pixels first: reading metadata may load the
                arr = full_depth(source, im, path)  # image, which clears its tiles
                icc = im.info.get("icc_profile")
                meta = _metadata(im, im)
                arr = _upright(im, arr, meta)
            else:
                im.load()
                from PIL import ImageOps  # not on the fast road of most PNGs
                oriented = ImageOps.exif_transpose(im)
                arr, icc = _pillow_pixels(oriented)
                meta = _metadata(im, oriented)
                n_frames = int(getattr(im, "n_frames", 1))
                if n_frames > 1:
                    warnings.warn(f"{path} has {n_frames} frames: only the first is read "
                                  "here; emcore.frames.read_frames (and 'emcore segment') "
                                  "read every frame", UserWarning, stacklevel=4)
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # 16-bit grayscale PNGs come as mode 'I'
    return Picture(arr, icc or None, meta or None)


def load_image(path: str | os.PathLike[str], title: str | None = None) -> Image:
    """Load an image file as an :class:`Image` (tutorial helper).

    Parameters
    ----------
    path : str or path
    title : str, optional
        Defaults to the file name.

    Returns
    -------
    image : Image
        The pixels as read (EXIF orientation applied, converted to sRGB).
    """
    return Image(_open(path).pixels,
                 title=os.path.basename(os.fspath(path)) if title is None else title)


def read_picture(source) -> Picture:
    """Pixels and ICC profile from a path, a binary file object, a PIL image, an
    :class:`Image` or an array.

    The pixels are an (H, W) or (H, W, C) real array with 1 to 4 channels,
    finite and non-empty; anything else raises ValueError or TypeError. Integers of
    another type than uint8 and uint16 come as the 8 or 16-bit image their values
    fit, else as float64 (``_validation.as_pixel_depth``).
    """
    icc, meta = None, None
    if hasattr(source, "read") and not isinstance(source, io.BytesIO):  # an open file
        data = source.read()
        if not isinstance(data, bytes):
            raise TypeError(f"an image file must be opened in binary mode ('rb'): its read() "
                            f"gave {type(data).__name__}")
        name = getattr(source, "name", None)
        source = io.BytesIO(data)
        source.name = name if isinstance(name, str) else "the image file object"
    if isinstance(source, Picture):
        arr, icc, meta = source
    elif isinstance(source, (str, bytes, os.PathLike, io.BytesIO)):
        arr, icc, meta = _open(source)
    elif isinstance(source, PILImage.Image):
        try:
            source.load()
        except (AttributeError, ValueError, OSError) as err:  # a closed image
            raise ValueError(f"the PIL image cannot be read (is it closed?): {err}") from None
        arr, icc = _pillow_pixels(source)
    elif isinstance(source, Image):
        arr = source.rgb_matrix
    else:
        arr = source
    arr = as_pixel_depth(as_real_array(arr, "image"))
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"image must be (H, W) or (H, W, C) with 1 to 4 channels, "
                         f"got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    return Picture(check_finite(arr, "image"), icc or None, meta)


def as_pixel_array(source) -> np.ndarray:
    """The pixels of :func:`read_picture`, without the profile."""
    return read_picture(source).pixels


def split_alpha(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour channels (H, W, C), alpha (H, W) or None): LA and RGBA keep alpha aside."""
    if arr.ndim == 2:
        return arr[:, :, None], None
    if arr.shape[2] in (2, 4):
        return arr[:, :, :-1], arr[:, :, -1]
    return arr, None


def rgb_vector_to_image(vector: ArrayLike, shape: tuple[int, ...], title: str = "") -> Image:
    """Reshape pixel rows back into an :class:`Image` (tutorial helper).

    Parameters
    ----------
    vector : array_like of shape (H * W, C)
    shape : tuple
        The image's (H, W, C) shape.
    title : str, default ''

    Returns
    -------
    image : Image
    """
    vector = np.asarray(vector)
    if int(np.prod(shape)) != vector.size:
        raise ValueError(f"a vector of {vector.size} values cannot form an image of shape "
                         f"{tuple(shape)}")
    return Image(vector.reshape(shape), title=title)


def unique_colors(pixels: ArrayLike, n_threads: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique rows of an (N, C) pixel array.

    Parameters
    ----------
    pixels : array_like or Dask array of shape (N, C)
    n_threads : int or None
        Threads for 8-bit RGB (None: emcore's rule, emcore/_threads.py).

    Returns
    -------
    colors : ndarray (M, C)
        In lexicographic order, the pixels' dtype.
    counts : ndarray (M,) int64
    inverse : ndarray (N,) int32
        ``colors[inverse] == pixels``.

    8-bit RGB takes two passes over the pixels and a 2 MiB bitmap of 24-bit colour
    codes (without the GIL, shared among threads: the same result for any number);
    other types use a sort. For a Dask array the colours and counts are
    merged from every chunk's and the inverse is a lazy Dask array.
    """
    return distinct_colors(pixels, n_threads=n_threads)


def distinct_colors(pixels: ArrayLike, z_order: bool = False, n_threads: int | None = 1
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """unique_colors; with ``z_order``, integer colours come in Z-order (the bits of
    their channels interleaved, most significant first) rather than lexicographic
    order. Neighbours in Z-order are near in colour, which makes the k-means
    kernels' tiles small boxes (emcore/_kmeans.pyx), and the order of 16-bit
    colours v * 257 is that of the 8-bit colours v."""
    if is_dask_array(pixels):  # colours and counts in memory, the inverse lazy
        from emcore import _dask
        return _dask.unique_colors(pixels, z_order)
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 2:
        raise ValueError(f"pixels must be (N, C), got shape {pixels.shape}")
    if pixels.dtype == np.uint8 and pixels.shape[1] == 3:  # Z-order from the bitmap itself
        threads = resolve_n_threads(n_threads, work_of(pixels, 1))
        colors, counts, inverse = _colors.unique_rgb8(pixels, *code_scratch(), z_order, threads)
        assert inverse is not None  # asked for (with_inverse)
        return colors, counts, inverse
    colors, counts, inverse = _lexicographic_colors(pixels)
    order = z_order_permutation(colors) if z_order else None
    if order is None:
        return colors, counts, inverse
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return colors[order], counts[order], rank[inverse]


def rgb8_colors(pixels: np.ndarray, n_threads: int | None = 1
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`distinct_colors` of (N, 3) uint8 pixels in Z-order, with the bitmap of
    their colours' codes (uint64, 2 MiB) in the inverse's place: :func:`rgb8_labels`
    finds each pixel's colour index from it again. The inverse takes 4 bytes a pixel
    (92 MiB at 24 MP) for as long as labels may be asked for."""
    pixels = np.ascontiguousarray(pixels)
    bitmap = np.empty(CODE_WORDS, dtype=np.uint64)
    _, summary, rank = code_scratch()
    threads = resolve_n_threads(n_threads, work_of(pixels, 1))
    colors, counts, _ = _colors.unique_rgb8(pixels, bitmap, summary, rank, True, threads,
                                            False)
    return colors, counts, bitmap


def rgb8_labels(pixels: np.ndarray, bitmap: np.ndarray, table: np.ndarray,
                n_threads: int | None = 1) -> np.ndarray:
    """``table[inverse]`` for the (N, 3) uint8 pixels of :func:`rgb8_colors`, from its
    bitmap; ``table`` (uint8 or int32) has an entry per distinct colour. ValueError if
    a pixel's colour is not one of them (the pixels changed in between)."""
    table = np.ascontiguousarray(table)
    pixels = np.ascontiguousarray(pixels)
    out = np.empty(len(pixels), dtype=table.dtype)
    threads = resolve_n_threads(n_threads, work_of(pixels, 1))
    spread_rgb8(pixels, bitmap, table, out, threads, z_order=True)
    return out


def z_order_permutation(colors: np.ndarray) -> np.ndarray | None:
    """The permutation that puts distinct (M, C) unsigned-integer colours in Z-order,
    or None where that is their order already (one channel) or undefined (floats)."""
    if colors.dtype.kind != "u" or colors.shape[1] < 2 or colors.shape[1] * colors.itemsize > 8:
        return None
    n_channels, n_bits = colors.shape[1], 8 * colors.itemsize
    values = colors.astype(np.uint64)
    key = np.zeros(len(colors), dtype=np.uint64)
    for bit in range(n_bits - 1, -1, -1):  # most significant bits first
        for c in range(n_channels):
            key = (key << np.uint64(1)) | ((values[:, c] >> np.uint64(bit)) & np.uint64(1))
    return np.argsort(key)


def _lexicographic_colors(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if pixels.dtype == np.uint8 and pixels.shape[1] == 1:
        counts = np.bincount(pixels[:, 0], minlength=256)
        present = np.flatnonzero(counts)
        index = np.zeros(256, dtype=np.int32)
        index[present] = np.arange(len(present), dtype=np.int32)
        return (present.astype(np.uint8)[:, None], counts[present].astype(np.int64),
                index[pixels[:, 0]])
    if pixels.dtype in (np.uint8, np.uint16) and pixels.shape[1] * pixels.itemsize in (2, 4, 8):
        # each row as one big-endian integer: a 1-D sort in the rows' lexicographic order
        code = np.dtype(f">u{pixels.shape[1] * pixels.itemsize}")
        rows = pixels.astype(pixels.dtype.newbyteorder(">")).view(code).ravel()
        codes, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
        colors = codes.view(pixels.dtype.newbyteorder(">")).reshape(-1, pixels.shape[1])
        return (colors.astype(pixels.dtype), counts.astype(np.int64),
                inverse.ravel().astype(np.int32))
    colors, inverse, counts = np.unique(pixels, axis=0, return_inverse=True, return_counts=True)
    return colors, counts.astype(np.int64), inverse.ravel().astype(np.int32)


def image_format(path: str | os.PathLike[str]) -> str:
    """Pillow's format name for an output path's extension ('NPY' for .npy); ValueError
    if unknown or not one of WRITTEN_FORMATS."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return "NPY"
    PILImage.preinit()  # the common formats (PNG, JPEG, GIF, BMP): a few ms
    if ext not in PILImage.EXTENSION:
        PILImage.init()  # every plugin Pillow has: about 80 ms, only when needed
    if ext not in PILImage.EXTENSION:
        raise ValueError(f"cannot tell the image format from {path!r}: use an extension such "
                         f"as .png, .gif, .tif, .jpg, .webp or .npy")
    fmt = PILImage.EXTENSION[ext]
    if fmt not in WRITTEN_FORMATS:
        why = _NOT_WRITTEN_BECAUSE.get(fmt)
        raise ValueError(f"emcore does not write {fmt} files ({ext}"
                         f"{': ' + why if why else ''}); use .png, .gif, .tif, .bmp, "
                         f".webp, .tga, .jp2, .ppm, .jpg, .avif or .npy")
    return fmt


#: The largest width or height a format's header holds (16-bit fields; WebP 14 bits).
FORMAT_MAX_SIDE = {"GIF": 65535, "WEBP": 16383, "BMP": 2**31 - 1}

#: Formats Pillow writes 16-bit grey to; every other one holds 8 bits a channel.
SIXTEEN_BIT_GREY_FORMATS = {"PNG", "TIFF"}


def _float_scale(arr: np.ndarray) -> float | None:
    """What a float image is multiplied by to make 8-bit values: 255 on scikit-image's
    0-1 scale (every value in [0, 1]), else 1 on the 0-255 scale; None when it is on
    neither (negative, above 255 or not finite)."""
    if not arr.size or not np.isfinite(arr).all() or arr.min() < 0:
        return None
    top = arr.max()
    return 255.0 if top <= 1 else 1.0 if top <= 255 else None


def float_to_uint8(arr: np.ndarray) -> np.ndarray | None:
    """A float image as 8 bits (see _float_scale), or None."""
    scale = _float_scale(arr)
    return None if scale is None else np.rint(arr * scale).astype(np.uint8)


def float_peak(arr: np.ndarray) -> float:
    """The full-intensity value of a float image, for its PSNR: 1 on the 0-1 scale, 255
    on the 0-255 scale (see _float_scale), else its largest absolute finite value."""
    scale = _float_scale(arr)
    if scale is not None:
        return 255.0 / scale
    finite = arr[np.isfinite(arr)]
    return float(np.abs(finite).max()) if finite.size and finite.any() else 1.0


def _unwritable(arr: np.ndarray, fmt: str) -> ValueError:
    return ValueError(f"cannot write a {arr.dtype} image of shape {arr.shape} as {fmt} "
                      f"(floats must lie in 0-1 or 0-255; integers outside 0-65535 are read "
                      f"as floats); save it as .npy instead")


def check_float_pixels_writable(arr: np.ndarray, fmt: str) -> None:
    """ValueError, before any work is done on it, for a float image whose values an
    8-bit format cannot hold (as writing it would raise)."""
    if arr.dtype.kind == "f" and fmt != "NPY" and _float_scale(arr) is None:
        raise _unwritable(arr, fmt)


def _as_pil(arr: np.ndarray, fmt: str) -> PILImage.Image:
    """A Pillow image of ``arr`` for format ``fmt``.

    Floats go through :func:`float_to_uint8`; 16-bit pixels go to an 8-bit format at
    8 bits (x / 257, with a warning); anything else that Pillow cannot write raises
    ValueError.
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.uint16 and not (arr.ndim == 2 and fmt in SIXTEEN_BIT_GREY_FORMATS):
        if fmt in SIXTEEN_BIT_GREY_FORMATS:
            raise ValueError(f"cannot write 16-bit colour as {fmt}: save it as .png or "
                             ".npy, or as an 8-bit image")
        warnings.warn(f"{fmt} holds 8 bits a channel: the 16-bit image is written at 8 bits",
                      UserWarning, stacklevel=4)
        arr = np.rint(arr / 257.0).astype(np.uint8)
    if arr.dtype in (np.uint8, np.uint16):
        return PILImage.fromarray(arr)  # uint16 grey: Pillow infers I;16
    eight_bit = float_to_uint8(arr) if arr.dtype.kind == "f" else None
    if eight_bit is not None:
        return PILImage.fromarray(eight_bit)
    raise _unwritable(arr, fmt)


def _as_indexed(labels: np.ndarray, palette: np.ndarray) -> PILImage.Image:
    """A mode 'P' image holding exactly ``palette`` (K <= 256 rows of 1 or 3 uint8)."""
    palette = np.asarray(palette)
    if palette.shape[1] == 1:
        palette = np.repeat(palette, 3, axis=1)
    im = PILImage.fromarray(np.asarray(labels, dtype=np.uint8))  # mode L ...
    im.putpalette(np.ascontiguousarray(palette, dtype=np.uint8).tobytes(), rawmode="RGB")
    return im  # ... and now P


def entry_order(n: int, alpha: np.ndarray | None, opaque: float,
                key: np.ndarray | None = None) -> np.ndarray:
    """The permutation putting n palette entries fully transparent first, then
    translucent, then opaque (alpha ``opaque``; all opaque without alpha), so that a
    PNG's tRNS chunk stops at the last translucent entry; within each kind by
    ``key`` (optional), ties in their order."""
    rank = np.zeros(n) if alpha is None else np.where(
        alpha == 0, 0, np.where(alpha < opaque, 1, 2))
    return np.lexsort((np.arange(n),) + (() if key is None else (key,)) + (rank,))


def reordered(palette: np.ndarray, labels: np.ndarray,
              order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(palette in ``order``, labels pointing at the same entries there: in the
    labels' own integer type when it holds every entry, else int32)."""
    labels = np.asarray(labels)
    dtype = labels.dtype if (labels.dtype.kind in "ui" and labels.dtype.itemsize <= 4
                             and np.iinfo(labels.dtype).max >= len(order) - 1) else np.int32
    position = np.empty(len(order), dtype=dtype)
    position[order] = np.arange(len(order))
    return palette[order], gather(position, labels)


def gather(table: np.ndarray, index: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """``table[index]`` in chunks: numpy turns an int32 index into a full intp copy first,
    which on a 50 MP image is 400 MB; per chunk it is 8 MB. The callers' indices are in
    range (checked, or made so), so the table is taken with mode "clip": under the
    default "raise" numpy buffers ``out``, which on a crop's 51,584 pixels took 337 us
    for the labels (34 us clipped) and 337 us for the palette's rows (85 us)."""
    flat = index.reshape(-1)
    out = np.empty((len(flat),) + table.shape[1:], dtype=table.dtype)
    for start in range(0, len(flat), chunk):
        np.take(table, flat[start:start + chunk], axis=0, out=out[start:start + chunk],
                mode="clip")
    return out.reshape(index.shape + table.shape[1:])


def luminance_order(colors: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """:func:`entry_order` of 8-bit palette rows (K, 1 or 3), each kind in order of
    luminance (Rec. 601 weights)."""
    colors = np.asarray(colors, dtype=np.float64)
    luma = colors[:, 0] if colors.shape[1] == 1 else colors[:, :3] @ [0.299, 0.587, 0.114]
    return entry_order(len(colors), alpha, 255, luma)


def optimized_png(data: bytes) -> bytes:
    """A PNG file made smaller without changing its pixels or chunks, by oxipng."""
    try:
        import oxipng
    except ImportError:
        raise ImportError("optimize needs pyoxipng: pip install 'emcore[optimize]'") from None
    return oxipng.optimize_from_memory(data, level=OXIPNG_LEVEL)


def _palette_alpha(image: np.ndarray, palette: np.ndarray) -> np.ndarray | None:
    """The alpha column of a palette whose rows carry the image's alpha, else None."""
    if image.ndim == 3 and image.shape[2] in (2, 4) and palette.shape[1] == image.shape[2]:
        return palette[:, -1]
    return None


def palette_transparency(alpha: np.ndarray, fmt: str) -> bytes | int | None:
    """Pillow's ``transparency`` for a palette's alpha (K,) uint8, or None for none:
    PNG's tRNS bytes up to the last entry that is not opaque (the rest are); GIF's one
    transparent index, the first fully transparent entry (translucent ones show opaque)."""
    if fmt == "GIF":
        clear = np.flatnonzero(alpha == 0)
        return int(clear[0]) if len(clear) else None
    shown = np.flatnonzero(alpha != 255)
    return alpha[:shown[-1] + 1].astype(np.uint8).tobytes() if len(shown) else None


#: Formats whose palettes carry alpha: PNG per entry (tRNS), GIF one transparent index.
ALPHA_PALETTE_FORMATS = {"PNG", "GIF"}


def indexable(image: np.ndarray, palette: np.ndarray | None, fmt: str) -> bool:
    """True when ``image`` can be written as an index into ``palette`` in format ``fmt``:
    8-bit pixels, at most 256 colours, a format with palettes; with an alpha channel,
    a palette that carries the alpha and a format whose palettes do."""
    if palette is None or fmt not in PALETTE_FORMATS or image.dtype != np.uint8:
        return False
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or not 1 <= len(palette) <= 256:
        return False
    if image.ndim == 2 or image.shape[2] in (1, 3):
        return palette.shape[1] in (1, 3) and palette.shape[1] == (
            1 if image.ndim == 2 else image.shape[2])
    return fmt in ALPHA_PALETTE_FORMATS and _palette_alpha(image, palette) is not None


def _metadata_options(fmt: str, metadata: dict | None) -> dict[str, object]:
    """Pillow save options that write ``metadata`` (Picture.metadata) in format ``fmt``."""
    from PIL import PngImagePlugin
    if not metadata:
        return {}
    options: dict[str, object] = {}
    if "dpi" in metadata and fmt in ("PNG", "TIFF", "JPEG"):
        options["dpi"] = metadata["dpi"]
    if "exif" in metadata and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["exif"] = metadata["exif"]
    if metadata.get("text") and fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in metadata["text"].items():
            try:
                (key + value).encode("latin-1")
                info.add_text(key, value)
            except UnicodeEncodeError:  # iTXt holds UTF-8
                info.add_itxt(key, value)
        options["pnginfo"] = info
    return options


def _write_bytes(file: str | io.BytesIO, data: bytes) -> None:
    """``data`` into a binary file object, or into the file at a path."""
    if hasattr(file, "write"):
        file.write(data)
    else:
        with open(file, "wb") as f:
            f.write(data)


def write_image(file: str | io.BytesIO, fmt: str, image: np.ndarray, *,
                labels: np.ndarray | None = None, palette: np.ndarray | None = None,
                icc_profile: bytes | None = None, metadata: dict | None = None,
                optimize: bool = False, n_threads: int | None = None) -> None:
    """Encode ``image`` into ``file``, a path or a binary file object (no atomicity: see
    :func:`save_image`).

    With ``labels`` and ``palette`` (the palette index of every pixel, and the
    palette colours), an indexed image is written where :func:`indexable` allows
    (a PNG of up to LUMINANCE_ORDER_MAX entries with its palette in
    :func:`luminance_order`); ``metadata`` (:class:`Picture`'s) is written where the
    format holds it; ``optimize`` passes a PNG through :func:`optimized_png`. A PNG's
    data is deflated by zlib-ng, a large one on up to ``n_threads`` threads
    (emcore/_png.py; None: the rule of emcore/_threads.py), the same file for any
    number.
    """
    if optimize and fmt == "PNG":
        buf = io.BytesIO()
        write_image(buf, fmt, image, labels=labels, palette=palette, icc_profile=icc_profile,
                    metadata=metadata, n_threads=n_threads)
        _write_bytes(file, optimized_png(buf.getvalue()))
        return
    if fmt == "NPY":
        if isinstance(file, io.BytesIO):
            np.save(file, image)
            return
        with open(file, "wb") as f:  # a file object keeps numpy from appending ".npy"
            np.save(f, image)
        return
    options: dict[str, object] = dict(WEBP_OPTIONS) if fmt == "WEBP" else {}
    strategy = zlib.Z_DEFAULT_STRATEGY
    unfiltered = None  # a small palette's indices, also tried without row filters
    eight_bit_indices = None  # a larger palette's: _png.indexed writes the image data
    side = FORMAT_MAX_SIDE.get(fmt)
    if side is not None and max(np.shape(image)[:2]) > side:
        raise ValueError(f"{fmt} holds at most {side:,} pixels a side; this image is "
                         f"{np.shape(image)[1]} x {np.shape(image)[0]}: use .png")
    if labels is not None and palette is not None:
        # in their own type: uint8 indices stay a quarter of int32's size
        labels = check_labels(labels, np.shape(image)[:2], len(palette), dtype=None)
    if fmt in NO_ALPHA_FORMATS and np.ndim(image) == 3 and np.shape(image)[2] in (2, 4):
        if palette is not None and _palette_alpha(image, palette) is not None:
            palette = np.asarray(palette)[:, :-1]  # still indexed, on the colours alone
        image = split_alpha(np.asarray(image))[0]
    deep_colour = (fmt == "PNG" and image.dtype == np.uint16 and image.ndim == 3
                   and image.shape[2] in _png.SIXTEEN_BIT_COLOR_TYPES)
    if labels is not None and palette is not None and indexable(image, palette, fmt):
        palette = np.asarray(palette)
        alpha = _palette_alpha(image, palette)
        if fmt == "PNG" and len(palette) <= LUMINANCE_ORDER_MAX:
            order = luminance_order(palette if alpha is None else palette[:, :-1], alpha)
            palette, labels = reordered(palette, labels, order)
            alpha = None if alpha is None else alpha[order]
            strategy = zlib.Z_RLE  # see LUMINANCE_ORDER_MAX
            unfiltered = (labels, UNFILTERED_LEVEL)  # see _png.recompressed
        colors = palette if alpha is None else palette[:, :-1]
        if fmt == "PNG" and len(palette) > LUMINANCE_ORDER_MAX:  # Pillow's 8-bit indices
            eight_bit_indices = np.asarray(labels, dtype=np.uint8)
            labels = eight_bit_indices[:1, :1]  # Pillow writes the rest (_png.indexed)
        im = _as_indexed(labels, colors)
        if alpha is not None:
            if fmt == "GIF":
                _warn_if_translucent_in_gif(alpha)
            transparency = palette_transparency(alpha, fmt)
            if transparency is not None:
                options["transparency"] = transparency
    elif deep_colour:  # Pillow writes the metadata chunks, _png.sixteen_bit the rest
        im = PILImage.new({2: "LA", 3: "RGB", 4: "RGBA"}[image.shape[2]], (1, 1))
    else:
        im = _as_pil(image, fmt)
    if icc_profile and fmt in ("PNG", "TIFF", "JPEG", "WEBP"):
        options["icc_profile"] = icc_profile
    options.update(_metadata_options(fmt, metadata))
    try:
        if fmt == "PNG":
            def stored(pil: PILImage.Image) -> bytes:  # its data deflated again by zlib-ng
                buf = io.BytesIO()
                pil.save(buf, format=fmt, **{**options, "compress_level": 0})
                return buf.getvalue()
            data = stored(im)
            made = None
            if eight_bit_indices is not None:
                made = _png.indexed(data, eight_bit_indices, PNG_LEVEL, strategy,
                                    resolve_n_threads(n_threads, 2 * eight_bit_indices.size))
                if made is None:  # not the carrier expected: Pillow writes the whole image
                    data = stored(_as_indexed(eight_bit_indices, colors))
            if made is not None:
                _write_bytes(file, made)
            elif deep_colour:
                _write_bytes(file, _png.sixteen_bit(
                    data, image, PNG_LEVEL, resolve_n_threads(n_threads, 2 * image.nbytes)))
            else:
                _write_bytes(file, _png.recompressed(
                    data, PNG_LEVEL, strategy, resolve_n_threads(n_threads, 2 * len(data)),
                    unfiltered))
        else:
            im.save(file, format=fmt, **options)
    except (OSError, ValueError, KeyError, OverflowError) as err:
        raise OSError(f"cannot write {fmt}: {err}") from None


def _warn_if_translucent_in_gif(alpha: np.ndarray) -> None:
    """GIF has one transparent index: say when translucent entries will show opaque."""
    translucent = int(((alpha > 0) & (alpha < 255)).sum())
    if translucent:
        warnings.warn(f"GIF has no partial transparency: {translucent} translucent palette "
                      "entries are written opaque; use .png to keep them", UserWarning,
                      stacklevel=4)


def warn_if_lossy(path: str | os.PathLike[str], fmt: str, alpha: bool = False) -> None:
    """A UserWarning when a quantized image is about to be written in a lossy format,
    or (``alpha``: the image has an alpha channel) in one without alpha."""
    no_alpha = (f"{fmt} has no alpha channel, so transparent pixels show their colour"
                if alpha and fmt in NO_ALPHA_FORMATS else "")
    if fmt in LOSSY_FORMATS:
        warnings.warn(f"{os.fspath(path)}: {fmt} is lossy and puts back colours the "
                      f"quantized image does not have{'; ' + no_alpha if no_alpha else ''}; "
                      "use .png for an exact result", UserWarning, stacklevel=3)
    elif no_alpha:
        warnings.warn(f"{os.fspath(path)}: {no_alpha}; use .png to keep it", UserWarning,
                      stacklevel=3)


def save_image(image: Image | ArrayLike, path: str | os.PathLike[str], *,
               labels: np.ndarray | None = None, palette: np.ndarray | None = None,
               icc_profile: bytes | None = None, metadata: dict | None = None,
               optimize: bool = False, n_threads: int | None = None) -> None:
    """Write an image array (or :class:`Image`) atomically; the format follows the extension.

    Parameters
    ----------
    image : ndarray or Image
        ``.npy`` writes the array itself (for 16-bit colour images, which
        Pillow cannot encode).
    path : str or path
    labels, palette : ndarray, optional
        A quantized image's palette index per pixel and its palette (uint8):
        written as an indexed image (PNG, GIF, TIFF, BMP), a third of the size
        of RGB. A lossy format (JPEG, WebP) warns that it adds colours back.
    icc_profile : bytes, optional
        Embedded where the format allows (PNG, TIFF, JPEG, WebP).
    metadata : dict, optional
        :class:`Picture`'s metadata (resolution, PNG text, EXIF), written where
        the format holds it.
    optimize : bool, default False
        Make a PNG smaller by oxipng without changing its pixels or metadata
        (0-21% on 7 photographs, 0.05-1.2 s each; needs the ``optimize`` extra,
        pyoxipng).
    n_threads : int or None
        Threads that deflate a PNG whose data is longer than 256 KiB (None: emcore's
        rule, emcore/_threads.py); the file is the same for any number.
    """
    arr = image.rgb_matrix if isinstance(image, Image) else np.asarray(image)
    fmt = image_format(path)
    if labels is not None:
        warn_if_lossy(path, fmt, alpha=split_alpha(arr)[1] is not None)
    with atomic_output(path) as tmp:
        try:
            write_image(tmp, fmt, arr, labels=labels, palette=palette, icc_profile=icc_profile,
                        metadata=metadata, optimize=optimize, n_threads=n_threads)
        except OSError as err:
            raise OSError(f"cannot write {os.fspath(path)}: {err}") from None
