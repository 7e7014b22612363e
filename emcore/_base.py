"""scikit-learn's estimator protocol, implemented without importing scikit-learn.

Parameters from the ``__init__`` signature (get_params / set_params / clone), the
repr, tags, the fitted check, feature names and ``set_output``. Anything that
needs scikit-learn's own classes (its ``Tags``, its config, its HTML repr) is
only reached when scikit-learn itself asks, or when the caller has already
imported it.
"""
from __future__ import annotations

import inspect
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

import numpy as np

from emcore import persistence
from emcore._validation import check_samples, feature_names
from emcore.exceptions import not_fitted_error

if TYPE_CHECKING:
    from typing_extensions import Self

OUTPUT_CONTAINERS = ("default", "pandas", "polars")


class EstimatorMixin:
    """What GaussianMixture and KMeans share; see the module docstring."""

    #: fitted attributes written by save() and restored by load(); the first one
    #: exists exactly when the estimator is fitted
    _fitted_attributes: tuple[str, ...] = ()
    #: scikit-learn's estimator type: 'clusterer' or 'density_estimator'
    _estimator_type: str | None = None
    #: the parameters' checks, {name: check(value, name)}, run at the start of fit
    #: (_validation.check_declared_params); checks that need the data's shape, or
    #: parameters of several forms, follow them in each estimator's _check_params
    _param_checks: dict[str, Callable[[Any, str], Any]] = {}
    #: set by the image pipeline on the models it fits: the space of their samples
    #: ('rgb', 'oklab' or 'composite'; emcore.densities.pixels_in_model_space)
    input_space_: str

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        persistence.register(cls)

    # -------------------------------------------------------------- parameters
    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters, by name.

        Parameters
        ----------
        deep : bool, default True
            Also list nested estimators' parameters, as ``name__sub``.

        Returns
        -------
        params : dict
        """
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
        return params

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name.

        Parameters
        ----------
        **params
            New values by parameter name (``name__sub`` for a nested estimator's).

        Returns
        -------
        self
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}; "
                    f"valid parameters are {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name, value in self.get_params(deep=False).items():
            default = defaults.get(name)
            same = value is default or (not isinstance(value, np.ndarray)
                                        and not isinstance(default, np.ndarray)
                                        and type(value) is type(default) and value == default)
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _repr_html_(self):
        """The notebook view: scikit-learn's diagram when scikit-learn is loaded."""
        if "sklearn" in sys.modules:
            from sklearn.utils import estimator_html_repr
            return estimator_html_repr(self)
        import html
        return f"<pre>{html.escape(repr(self))}</pre>"

    # -------------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags
        transformer = (TransformerTags(preserves_dtype=["float64", "float32"])
                       if hasattr(self, "transform") else None)
        return Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=False),
                    transformer_tags=transformer,
                    input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False))

    # ----------------------------------------------------------- fitted state
    def __sklearn_is_fitted__(self):
        return hasattr(self, self._fitted_attributes[0])

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(self)
        for name, fitted in self._fitted_structure().items():
            if getattr(self, name) != fitted:
                raise ValueError(f"{name}={getattr(self, name)!r} was set after fit (the fitted "
                                 f"model has {name}={fitted!r}): fit again, or set it back")
        for name, shape in self._fitted_shapes().items():
            if np.shape(getattr(self, name, None)) != shape:
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name, None))}, but "
                                 f"the fitted model needs {shape}: fit again, or load a model "
                                 "file")

    def _fitted_shapes(self) -> dict[str, tuple]:
        """The shape each fitted array must have, from the fitted structure (a cheap
        check before every use; _check_fitted_arrays checks values too)."""
        return {}

    def _fitted_structure(self) -> dict[str, Any]:
        """The parameters that shape the fitted arrays, as the fitted arrays say they are;
        set_params may have changed the parameters since."""
        return {}

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, reset, n_threads=1):
        """X checked for the kernels (read by ``n_threads``); fit (reset=True) records
        n_features_in_ and feature_names_in_, later calls compare against them as
        scikit-learn does."""
        names = feature_names(X)
        X = check_samples(X, n_threads=n_threads)
        name = type(self).__name__
        if reset:
            self.n_features_in_ = X.shape[1]
            if names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names
            return X
        self._check_fitted()
        fitted_names = getattr(self, "feature_names_in_", None)
        if names is not None and fitted_names is None:
            warnings.warn(f"X has feature names, but {name} was fitted without feature names",
                          UserWarning, stacklevel=3)
        elif names is None and fitted_names is not None:
            warnings.warn(f"X does not have valid feature names, but {name} was fitted with "
                          "feature names", UserWarning, stacklevel=3)
        elif names is not None and (len(names) != len(fitted_names)
                                    or (names != fitted_names).any()):
            raise ValueError("The feature names should match those that were passed during "
                             f"fit: fitted with {list(fitted_names)}, got {list(names)}")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                             f"{self.n_features_in_} features as input.")
        return X

    # ------------------------------------------------------------------ output
    def set_output(self, *, transform: str | None = None) -> Self:
        """Choose the container ``transform`` returns.

        Parameters
        ----------
        transform : {'default', 'pandas', 'polars'} or None
            'default' is an ndarray; None leaves the choice unchanged.

        Returns
        -------
        self
        """
        if transform is not None:
            if transform not in OUTPUT_CONTAINERS:
                raise ValueError(f"transform must be one of {', '.join(OUTPUT_CONTAINERS)} "
                                 f"or None; got {transform!r}")
            self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap_output(self, out, X):
        """``out`` in the container chosen by set_output (or scikit-learn's global config)."""
        container = getattr(self, "_sklearn_output_config", {}).get("transform")
        if container is None and "sklearn" in sys.modules:
            from sklearn import get_config
            container = get_config().get("transform_output", "default")
        if container in (None, "default"):
            return out
        columns = list(self.get_feature_names_out())
        if container == "pandas":
            import pandas as pd
            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(out, index=index, columns=columns, copy=False)
        import polars as pl
        return pl.DataFrame(out, schema=columns, orient="row")

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters and the fitted model to an .npz file (atomically).

        Load it back with :func:`emcore.load`. No pickle is involved.

        Parameters
        ----------
        path : str or path-like
            The file; it is complete or untouched, never partly written.
        """
        self._check_fitted()
        persistence.save_model(self, path)

    def write(self, file: str | os.PathLike[str] | BinaryIO) -> None:
        """Write the model's .npz to a path or a binary file, not atomically.

        Parameters
        ----------
        file : str, path-like or binary file object
        """
        self._check_fitted()
        persistence.write_model(self, file)
