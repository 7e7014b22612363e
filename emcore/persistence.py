"""Model files: an estimator's parameters and fitted arrays in a pickle-free .npz.

Estimator classes register themselves here (:func:`register`), so this module
imports none of them. A file is checked before it is trusted: the sizes of its
members before reading them, then the fitted arrays by the estimator's own
``_check_fitted_arrays``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from emcore._files import atomic_output, check_readable_file

FORMAT_VERSION = 1

#: Parameters that belong to the machine a model runs on, not to the model: not
#: written, so a file made on 8 cores runs on 2 under the default thread rule.
MACHINE_PARAMS = ("n_threads",)

#: Attributes the image pipeline sets on the models it fits, written when present:
#: ``input_space_``, the space the model's samples were in (emcore/pipeline.py).
RECORDED_ATTRIBUTES = ("input_space_",)

#: estimator class name -> class, filled by register()
ESTIMATORS: dict[str, type] = {}


def register(cls):
    """Make ``cls`` loadable by :func:`load` under its class name."""
    ESTIMATORS[cls.__name__] = cls
    return cls


def _storable(value):
    return isinstance(value, (int, float, str, bool, type(None), np.ndarray, np.integer,
                              np.floating))


def _number_sequence(value):
    """Whether a parameter is a tuple or list of real numbers (a spatial mixture's
    ``spacing``): written as "param-tuple:" and read back as a tuple of floats."""
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in value)


def write_model(model, file):
    """Write ``model``'s .npz to ``file`` (a path or a binary file), not atomically."""
    arrays = {"format_version": np.array(FORMAT_VERSION),
              "estimator": np.array(type(model).__name__)}
    for name, value in model.get_params().items():
        if name in MACHINE_PARAMS:
            continue
        if _storable(value):
            arrays[f"param:{name}"] = np.asarray(value if value is not None else "__None__")
        elif _number_sequence(value):
            arrays[f"param-tuple:{name}"] = np.asarray(value, dtype=np.float64)
    for name in model._fitted_attributes:
        arrays[f"fit:{name}"] = np.asarray(getattr(model, name))
    for name in RECORDED_ATTRIBUTES:
        if hasattr(model, name):
            arrays[f"fit:{name}"] = np.asarray(getattr(model, name))
    if isinstance(file, (str, bytes, os.PathLike)):
        with open(file, "wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez(f, **arrays)
    else:
        np.savez(file, **arrays)


def save_model(model, path):
    """Write ``model``'s .npz to ``path`` atomically (all or nothing)."""
    with atomic_output(os.fspath(path)) as tmp:
        write_model(model, tmp)


#: Members of a model file larger than the model can need are refused unread (a
#: tampered 2 MB file can declare a member of gigabytes).
_HEADER_BYTES = 4096


def _member_sizes(path):
    """{member name without .npy: uncompressed bytes}, from the zip directory alone."""
    import zipfile  # here: the command's start-up does not pay for it (5 ms)
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename[:-4] if info.filename.endswith(".npy") else info.filename:
                    info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise OSError(f"cannot read a model from {path}: not an emcore model file "
                      f"(an .npz archive): {err}") from None


def _read_member(data, key, path):
    import zipfile
    try:
        return data[key]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise OSError(f"cannot read a model from {path}: member {key!r} is damaged: "
                      f"{err}") from None


def load(path: str | os.PathLike[str]) -> Any:
    """Load a model written by ``save`` (a GaussianMixture or a KMeans).

    The file is checked before it is trusted: its members' sizes against what
    the model can need (before reading them), then every fitted array's shape,
    finiteness and (for mixtures) positive definiteness. No pickle is read.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`GaussianMixture.save` or :meth:`KMeans.save`.

    Returns
    -------
    model : GaussianMixture or KMeans
        Fitted, with the saved parameters.

    Raises
    ------
    OSError
        The file is missing or is not a readable model file.
    ValueError
        Its contents are inconsistent (sizes, shapes, non-finite or invalid values).
    """
    import zipfile

    import emcore.kmeans, emcore.mixture, emcore.spatial  # noqa: F401, E401  (they register)
    path = check_readable_file(path, "model file")
    sizes = _member_sizes(path)
    if "format_version" not in sizes or "estimator" not in sizes:
        raise ValueError(f"{path} is not an emcore model file")
    small = [k for k in sizes if k in ("format_version", "estimator", "fit:n_features_in_",
                                       "fit:n_iter_", "param:n_components", "param:n_clusters")]
    for key in small:
        if sizes[key] > _HEADER_BYTES:
            raise ValueError(f"{path}: member {key!r} is {sizes[key]} bytes; a model file's "
                             f"header values take a few")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise OSError(f"cannot read a model from {path}: {err}") from None
    with data:
        header = {key: _read_member(data, key, path) for key in small}
        try:
            version = int(header["format_version"])
            name = str(header["estimator"])
            k = int(header.get("param:n_components", header.get("param:n_clusters", 0)))
            d = int(header.get("fit:n_features_in_", 0))
            n_iter = int(header.get("fit:n_iter_", 0))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{path}: its header values are not numbers") from None
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has model format {version}; this emcore reads up to "
                             f"{FORMAT_VERSION}: upgrade emcore")
        if name not in ESTIMATORS:
            raise ValueError(f"{path} holds an unknown estimator {name!r}")
        if not (1 <= k <= 2**24 and 1 <= d <= 2**16 and 0 <= n_iter <= 2**31):
            raise ValueError(f"{path}: {k} components of {d} features after {n_iter} "
                             "iterations is not a model emcore writes")
        limit = _HEADER_BYTES + 8 * max(k * d * d, k + 1, n_iter + 1)
        for key, size in sizes.items():
            if size > limit:
                raise ValueError(f"{path}: member {key!r} is {size} bytes, more than a model "
                                 f"of {k} x {d} can need ({limit})")
        params: dict[str, Any] = {}
        fitted: dict[str, Any] = {}
        for key in data.files:
            if key.startswith("param-tuple:"):
                value = _read_member(data, key, path)
                if value.dtype.kind != "f" or value.ndim != 1 or len(value) > 16:
                    raise ValueError(f"{path}: member {key!r} is not a short sequence of "
                                     "numbers")
                params[key[12:]] = tuple(float(v) for v in value)
            elif key.startswith("param:") or key.startswith("fit:"):
                value = _read_member(data, key, path)
                if value.dtype.hasobject:
                    raise ValueError(f"{path}: member {key!r} holds Python objects")
                value = value.item() if value.ndim == 0 else value
                if key.startswith("param:"):
                    params[key[6:]] = (None if isinstance(value, str) and value == "__None__"
                                       else value)
                else:
                    fitted[key[4:]] = value
    try:
        model = ESTIMATORS[name](**params)
    except TypeError as err:
        raise ValueError(f"{path}: parameters this {name} does not take: {err}") from None
    for attr, value in fitted.items():
        setattr(model, attr, value)
    try:
        model._check_fitted_arrays()
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a consistent {name}: {err}") from None
    return model
