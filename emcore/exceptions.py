"""Warnings and errors emcore raises, without importing scikit-learn."""


class ConvergenceWarning(UserWarning):
    """A fit stopped without converging, or found fewer distinct clusters than asked for."""
