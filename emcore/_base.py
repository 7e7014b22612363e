"""What the estimators share: scikit-learn style parameters and npz persistence."""
import inspect
import os

import numpy as np

FORMAT_VERSION = 1


class EstimatorMixin:
    """get_params / set_params from the __init__ signature, as scikit-learn does."""

    #: fitted attributes written by save() and restored by load()
    _fitted_attributes = ()

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid ones are {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name)
            same = value is default or (not isinstance(value, np.ndarray)
                                        and not isinstance(default, np.ndarray)
                                        and value == default)
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self):
        if not hasattr(self, self._fitted_attributes[0]):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def save(self, path):
        """Write the parameters and the fitted model to an .npz file (atomically).

        Load it back with :func:`emcore.load`.
        """
        from emcore._files import atomic_output
        with atomic_output(os.fspath(path)) as tmp:
            self.write(tmp)

    def write(self, file):
        """Write the model's .npz to ``file`` (a path or a binary file), not atomically."""
        self._check_fitted()
        arrays = {"format_version": np.array(FORMAT_VERSION),
                  "estimator": np.array(type(self).__name__)}
        for name, value in self.get_params().items():
            if isinstance(value, (int, float, str, bool, type(None), np.ndarray, np.integer,
                                  np.floating)):
                arrays[f"param:{name}"] = np.asarray(value if value is not None else "__None__")
        for name in self._fitted_attributes:
            arrays[f"fit:{name}"] = np.asarray(getattr(self, name))
        if isinstance(file, (str, bytes, os.PathLike)):
            with open(file, "wb") as f:  # a file object keeps numpy from appending ".npz"
                np.savez(f, **arrays)
        else:
            np.savez(file, **arrays)


def load(path):
    """Load a model written by ``save`` (a GaussianMixture or a KMeans)."""
    from emcore.kmeans import KMeans
    from emcore.mixture import GaussianMixture
    classes = {"GaussianMixture": GaussianMixture, "KMeans": KMeans}
    try:
        data = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot read a model from {path}: {err}") from None
    with data:
        if "format_version" not in data or "estimator" not in data:
            raise ValueError(f"{path} is not an emcore model file")
        version = int(data["format_version"])
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has model format {version}; this emcore reads up to "
                             f"{FORMAT_VERSION}: upgrade emcore")
        name = str(data["estimator"])
        if name not in classes:
            raise ValueError(f"{path} holds an unknown estimator {name!r}")
        params = {}
        for key in data.files:
            if key.startswith("param:"):
                value = data[key]
                value = value.item() if value.ndim == 0 else value
                params[key[6:]] = None if isinstance(value, str) and value == "__None__" else value
        model = classes[name](**params)
        for key in data.files:
            if key.startswith("fit:"):
                value = data[key]
                setattr(model, key[4:], value.item() if value.ndim == 0 else value)
    return model
