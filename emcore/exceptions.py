"""Warnings and errors emcore raises, without importing scikit-learn.

emcore's :class:`NotFittedError` and :class:`ConvergenceWarning` derive from the
same builtins as scikit-learn's. When the caller has imported scikit-learn, emcore
raises (and warns with) a class that derives from both emcore's and scikit-learn's,
so ``except sklearn.exceptions.NotFittedError`` and scikit-learn's warning filters
work as they do for scikit-learn's own estimators. Importing emcore never imports
scikit-learn.
"""
import sys


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class ConvergenceWarning(UserWarning):
    """A fit stopped without converging, or found fewer distinct clusters than asked for."""


#: our class -> the name of scikit-learn's counterpart in sklearn.exceptions
_COUNTERPARTS = {NotFittedError: "NotFittedError", ConvergenceWarning: "ConvergenceWarning"}
_combined: dict[type, type] = {}


def _both(ours):
    """``ours``, or a subclass of it and scikit-learn's counterpart if scikit-learn is loaded."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return ours
    if ours not in _combined:
        theirs = getattr(sklearn_exceptions, _COUNTERPARTS[ours])
        name = f"Sklearn{ours.__name__}"
        # named after a module attribute (see __getattr__) so that pickling finds it
        _combined[ours] = type(name, (ours, theirs), {"__module__": __name__,
                                                     "__qualname__": name,
                                                     "__doc__": ours.__doc__})
        _combined[ours].__name__ = ours.__name__  # how warnings and tracebacks show it
    return _combined[ours]


def not_fitted_error(estimator):
    """The exception to raise when ``estimator`` is used before it is fitted."""
    name = type(estimator).__name__
    return _both(NotFittedError)(
        f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments "
        "before using this estimator.")


def convergence_warning():
    """The category for a ConvergenceWarning (see the module docstring)."""
    return _both(ConvergenceWarning)


def __getattr__(name):
    # unpickling a combined class in a process that has not made it yet
    for ours in _COUNTERPARTS:
        if name == f"Sklearn{ours.__name__}":
            import sklearn.exceptions  # noqa: F401  (only reached when unpickling one)
            return _both(ours)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
