"""emcore/_base.py and emcore/exceptions.py: the estimators as scikit-learn drop-ins.

scikit-learn's own estimator checks, its meta-estimators (pipelines, grid search,
cross-validation, clone), pickling, set_output, feature names, and agreement
with scikit-learn from the same start for the parameters added for it.
"""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sklearn.cluster
import sklearn.mixture
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from emcore import GaussianMixture, KMeans, exceptions


def _expected_failures(estimator):
    # exactly what scikit-learn marks for its own KMeans, with its reason
    # (sklearn/utils/_test_common/instance_generator.py, PER_ESTIMATOR_XFAIL_CHECKS)
    if isinstance(estimator, KMeans):
        return {"check_sample_weight_equivalence_on_dense_data":
                "sample_weight is not equivalent to removing/repeating samples."}
    return {}


@parametrize_with_checks([GaussianMixture(), KMeans()],
                         expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(600, n_features=3, centers=3, cluster_std=0.6, random_state=0)
    return X, y


def test_pipeline_grid_search_and_cross_validation(blobs):
    X, _ = blobs
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    scaled = StandardScaler().fit_transform(X)
    np.testing.assert_array_equal(pipe.predict(X),
                                  GaussianMixture(3, random_state=0).fit(scaled).predict(scaled))
    search = GridSearchCV(make_pipeline(StandardScaler(), GaussianMixture(random_state=0)),
                          {"gaussianmixture__n_components": [1, 2, 3]}, cv=3).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_params_ == {"gaussianmixture__n_components": 3}
    np.testing.assert_array_less(scores[:-1], scores[-1])
    km_scores = cross_val_score(KMeans(3, random_state=0), X, cv=3)
    assert np.isfinite(km_scores).all() and (km_scores < 0).all()


def test_clone_pickle_and_fitted_state(blobs):
    X, _ = blobs
    for est in (GaussianMixture(3, covariance_type="tied", random_state=1),
                KMeans(3, random_state=1, n_init=2)):
        copy = clone(est)
        assert copy.get_params() == est.get_params() and copy is not est
        with pytest.raises(SkNotFittedError):
            check_is_fitted(est)
        with pytest.raises(exceptions.NotFittedError, match="not fitted yet"):
            est.predict(X)
        est.fit(X)
        check_is_fitted(est)
        back = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert "n_clusters=3" in repr(KMeans(3)) and repr(KMeans()) == "KMeans()"
    assert "KMeans" in KMeans(3)._repr_html_()


def test_set_output_pandas_and_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, _ = blobs
    df = pd.DataFrame(X, columns=["r", "g", "b"], index=np.arange(len(X)) + 100)
    init = X[:3]
    ours = KMeans(3, init=init).set_output(transform="pandas")
    out = ours.fit_transform(df)
    theirs = sklearn.cluster.KMeans(3, init=init, n_init=1).fit(X)
    assert list(out.columns) == list(theirs.get_feature_names_out()) == [
        "kmeans0", "kmeans1", "kmeans2"]
    np.testing.assert_array_equal(out.index, df.index)
    np.testing.assert_allclose(out.to_numpy(), theirs.transform(X), rtol=1e-9)
    np.testing.assert_array_equal(ours.feature_names_in_, ["r", "g", "b"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        ours.predict(X)
    with pytest.raises(ValueError, match="feature names should match"):
        ours.predict(df.rename(columns={"b": "blue"}))
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="fitted without feature names"):
        gm.predict(df)


def test_float32_input_gives_a_float32_model_and_integers_float64(blobs):
    X, _ = blobs
    for dtype, expected in ((np.float32, np.float32), (np.int64, np.float64),
                            (np.float64, np.float64)):
        Xd = (X * 10).astype(dtype)
        gm = GaussianMixture(3, random_state=0).fit(Xd)
        ref = sklearn.mixture.GaussianMixture(3, random_state=0).fit(Xd)
        for name in ("weights_", "means_", "covariances_", "precisions_",
                     "precisions_cholesky_"):
            assert getattr(gm, name).dtype == getattr(ref, name).dtype == expected, name
        assert gm.score_samples(Xd).dtype == ref.score_samples(Xd).dtype
        km = KMeans(3, random_state=0).fit(Xd)
        sk = sklearn.cluster.KMeans(3, random_state=0).fit(Xd)
        assert km.cluster_centers_.dtype == sk.cluster_centers_.dtype == expected
        assert km.transform(Xd).dtype == sk.transform(Xd).dtype


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-6), (np.float32, 1e-4)])
def test_tied_covariance_matches_scikit_learn(blobs, dtype, rtol):
    X = blobs[0].astype(dtype)
    start = dict(means_init=X[[0, 1, 2]].astype(np.float64), weights_init=[0.3, 0.3, 0.4],
                 precisions_init=np.eye(3) * 0.5)
    ours = GaussianMixture(3, covariance_type="tied", max_iter=30, tol=1e-10, **start).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        ref = sklearn.mixture.GaussianMixture(3, covariance_type="tied", max_iter=30,
                                              tol=1e-10, **start).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=rtol,
                                   atol=rtol * 1e-2, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=rtol)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=rtol)


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_random_init_matches_scikit_learn(blobs, cov_type):
    X = blobs[0]
    kw = dict(covariance_type=cov_type, init_params="random", random_state=7, max_iter=40,
              tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        ours = GaussianMixture(3, **kw).fit(X)
        ref = sklearn.mixture.GaussianMixture(3, **kw).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-6)


def test_warm_start_continues_the_lower_bound(blobs):
    X = blobs[0]
    start = dict(means_init=X[[0, 1, 2]], weights_init=[0.3, 0.3, 0.4],
                 precisions_init=np.repeat(np.eye(3)[None], 3, axis=0))
    ours = GaussianMixture(3, warm_start=True, max_iter=1, tol=1e-4, **start)
    ref = sklearn.mixture.GaussianMixture(3, warm_start=True, max_iter=1, tol=1e-4,
                                          **start)
    ours_conv, ref_conv = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        for _ in range(60):
            ours_conv.append(ours.fit(X).converged_)
            ref_conv.append(ref.fit(X).converged_)
    assert ours_conv == ref_conv and ours_conv[-1]
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6)


def test_kmeans_parameters_added_for_scikit_learn(blobs, capsys):
    X = blobs[0]
    calls = []

    def first_rows(data, k, random_state):
        calls.append(random_state.randint(1000))
        return data[random_state.choice(len(data), k, replace=False)]
    ours = KMeans(3, init=first_rows, random_state=0, algorithm="elkan", copy_x=False).fit(X)
    assert len(calls) == 10  # n_init='auto' is 10 runs for a callable, as scikit-learn
    ref = sklearn.cluster.KMeans(3, init=first_rows, random_state=0, algorithm="elkan").fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-9)
    assert X.flags.writeable and np.isfinite(X).all()
    lloyd = KMeans(3, init=X[:3], algorithm="lloyd").fit(X)
    elkan = KMeans(3, init=X[:3], algorithm="elkan").fit(X)
    np.testing.assert_array_equal(lloyd.cluster_centers_, elkan.cluster_centers_)
    KMeans(3, init=X[:3], verbose=1).fit(X)
    assert "Iteration 1, inertia" in capsys.readouterr().out
    with pytest.raises(ValueError, match="algorithm"):
        KMeans(3, algorithm="bogus").fit(X)


def test_exceptions_are_scikit_learns_when_it_is_loaded(blobs):
    X = blobs[0]
    with pytest.raises(SkNotFittedError):
        GaussianMixture().score(X)
    with pytest.warns(SkConvergenceWarning):
        GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    err = exceptions.not_fitted_error(KMeans())
    assert isinstance(err, exceptions.NotFittedError) and isinstance(err, AttributeError)
    assert type(pickle.loads(pickle.dumps(err))) is type(err)


def test_importing_emcore_imports_neither_scikit_learn_nor_scipy(tmp_path):
    code = ("import sys, numpy as np, emcore\n"
            "try:\n"
            "    emcore.KMeans().predict(np.zeros((2, 2)))\n"
            "except emcore.exceptions.NotFittedError as err:\n"
            "    assert type(err) is emcore.exceptions.NotFittedError\n"
            "loaded = [m for m in ('sklearn', 'scipy', 'dask', 'pandas') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # not the source folder
    assert proc.returncode == 0, proc.stderr


_PEERS = {GaussianMixture: sklearn.mixture.GaussianMixture, KMeans: sklearn.cluster.KMeans}
_BAD_VALUES = [object(), "nonsense", -1, 2.5, np.nan, None]


@pytest.mark.parametrize("cls, name", [(cls, name) for cls in _PEERS
                                       for name in cls._param_checks])
def test_declared_parameter_checks_refuse_what_scikit_learn_refuses(cls, name):
    """Each parameter in an estimator's check table is an __init__ parameter, and every
    value scikit-learn's own estimator refuses for it at fit is refused here too, by a
    TypeError or ValueError naming the parameter (emcore-only parameters: every value
    of the wrong kind)."""
    X = make_blobs(60, centers=3, random_state=0)[0]
    assert name in cls._get_param_names()
    peer = _PEERS[cls]
    refused = 0
    for bad in _BAD_VALUES:
        if name in peer._get_param_names():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    peer(**{name: bad}).fit(X)
                continue  # scikit-learn takes it: no claim
            except (TypeError, ValueError):
                pass
        elif bad is None and name == "callback":
            continue  # None is callback's default
        with pytest.raises((TypeError, ValueError), match=name):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(**{name: bad}).fit(X)
        refused += 1
    assert refused >= 3
