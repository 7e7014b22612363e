"""Per-iteration timings of emcore and its peers, with equal thread counts.

Each runner fits from one shared start for exactly ``n_iter`` iterations on
``n_threads`` threads and returns what it computed. :func:`per_iteration` times
n and n + 10 iterations and divides the difference by ten, which removes every
fixed cost (start-up, input conversion, the final E-step) from the comparison.
:func:`reference_lloyd` and :func:`reference_em` are textbook float64
recomputations that each result is checked against, so that the work compared
is the same work.

Peers: faiss (``faiss-cpu``) and oneDAL (``daal4py`` from ``scikit-learn-intelex``)
for k-means and EM, and scikit-learn for both. Thread counts: emcore ``n_threads``, faiss
``omp_set_num_threads``, oneDAL ``daalinit``, scikit-learn ``threadpoolctl``.
"""
import time
from contextlib import contextmanager

import numpy as np

from emcore import GaussianMixture, KMeans

CHUNK = 1 << 16


def per_iteration(run, n=1, extra=10, repeat=3):
    """(seconds per iteration, result of the longer run): min over ``repeat`` runs."""
    def best(n_iter):
        times, result = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            result = run(n_iter)
            times.append(time.perf_counter() - start)
        return min(times), result
    short, _ = best(n)
    long, result = best(n + extra)
    return (long - short) / extra, result


@contextmanager
def threads(n_threads):
    """Limit scikit-learn's OpenMP and BLAS pools (threadpoolctl) to n_threads."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=n_threads):
        yield


# ------------------------------------------------------------------- k-means
def lloyd_emcore(X, init, n_iter, n_threads):
    km = KMeans(len(init), init=init, max_iter=n_iter, tol=0, n_threads=n_threads).fit(X)
    if km.n_iter_ != n_iter:
        raise RuntimeError(f"emcore converged after {km.n_iter_} of {n_iter} iterations: "
                           "start farther from the solution")
    return km.cluster_centers_


def lloyd_faiss(X, init, n_iter, n_threads):
    import faiss
    faiss.omp_set_num_threads(n_threads)
    # every point in every iteration (faiss subsamples above 256 points per centroid)
    km = faiss.Kmeans(X.shape[1], len(init), niter=n_iter, nredo=1,
                      max_points_per_centroid=1 << 30, seed=1)
    km.train(X, init_centroids=init)
    return km.centroids


def lloyd_onedal(X, init, n_iter, n_threads):
    import daal4py
    daal4py.daalinit(n_threads)
    result = daal4py.kmeans(nClusters=len(init), maxIterations=n_iter, accuracyThreshold=0.0,
                            fptype="float" if X.dtype == np.float32 else "double"
                            ).compute(X, init)
    return result.centroids


def lloyd_sklearn(X, init, n_iter, n_threads):
    from sklearn.cluster import KMeans as SkKMeans
    with threads(n_threads):
        return SkKMeans(len(init), init=init, n_init=1, max_iter=n_iter, tol=0,
                        algorithm="lloyd").fit(X).cluster_centers_


def reference_lloyd(X, init, n_iter):
    """Lloyd's algorithm in float64 numpy, a chunk of samples at a time."""
    X = X.astype(np.float64)
    centers = np.asarray(init, dtype=np.float64)
    for _ in range(n_iter):
        sums = np.zeros_like(centers)
        counts = np.zeros(len(centers))
        for start in range(0, len(X), CHUNK):
            chunk = X[start:start + CHUNK]
            d = ((chunk[:, None, :] - centers[None]) ** 2).sum(axis=2)
            labels = d.argmin(axis=1)
            counts += np.bincount(labels, minlength=len(centers))
            for j in range(X.shape[1]):
                sums[:, j] += np.bincount(labels, chunk[:, j], minlength=len(centers))
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers


# ------------------------------------------------------------------------ EM
def em_start(X, k, seed=0):
    """Means at k random samples, equal weights, a 20-level spread in every channel."""
    means = X[np.random.RandomState(seed).choice(len(X), k, replace=False)].astype(np.float64)
    return means, np.full(k, 1.0 / k), 400.0


def em_emcore(X, start, n_iter, n_threads, cov_type, sample_weight=None):
    means, weights, var = start
    k, d = means.shape
    prec = (np.full((k, d), 1 / var) if cov_type == "diag"
            else np.repeat(np.eye(d)[None] / var, k, axis=0))
    gm = GaussianMixture(k, covariance_type=cov_type, max_iter=n_iter, tol=0,
                         means_init=means, weights_init=weights, precisions_init=prec,
                         n_threads=n_threads)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never converges: by design here
        gm.fit(X, sample_weight=sample_weight)
    return gm.means_


def em_onedal(X, start, n_iter, n_threads, cov_type):
    import daal4py
    daal4py.daalinit(n_threads)
    means, weights, var = start
    k, d = means.shape
    dtype = X.dtype
    covs = ([np.full((1, d), var, dtype=dtype) for _ in range(k)] if cov_type == "diag"
            else [np.eye(d, dtype=dtype) * var for _ in range(k)])
    result = daal4py.em_gmm(
        nComponents=k, maxIterations=n_iter, accuracyThreshold=0.0,
        regularizationFactor=1e-6, fptype="float" if dtype == np.float32 else "double",
        covarianceStorage="diagonal" if cov_type == "diag" else "full",
    ).compute(X, weights.reshape(1, -1).astype(dtype), means.astype(dtype), covs)
    return result.means


def em_sklearn(X, start, n_iter, n_threads, cov_type):
    from sklearn.mixture import GaussianMixture as SkGM
    import warnings
    means, weights, var = start
    k, d = means.shape
    prec = (np.full((k, d), 1 / var) if cov_type == "diag"
            else np.repeat(np.eye(d)[None] / var, k, axis=0))
    with threads(n_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SkGM(k, covariance_type=cov_type, max_iter=n_iter, tol=0, means_init=means,
                    weights_init=weights, precisions_init=prec).fit(X).means_


def reference_em(X, start, n_iter, cov_type, reg_covar=1e-6):
    """EM for a Gaussian mixture in float64 numpy (log-sum-exp), a chunk at a time."""
    X = X.astype(np.float64)
    means, weights, var = start
    k, d = means.shape
    cov = (np.full((k, d), var) if cov_type == "diag"
           else np.repeat(np.eye(d)[None] * var, k, axis=0))
    for _ in range(n_iter):
        if cov_type == "diag":
            chol = np.stack([np.diag(1 / np.sqrt(c)) for c in cov])
        else:  # upper factor U with U U^T = inverse covariance
            chol = np.linalg.inv(np.linalg.cholesky(cov)).transpose(0, 2, 1)
        log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        nk = np.zeros(k)
        s1 = np.zeros((k, d))
        s2 = np.zeros((k, d, d))
        for start_ in range(0, len(X), CHUNK):
            x = X[start_:start_ + CHUNK]
            y = np.einsum("nd,kde->nke", x, chol) - np.einsum("kd,kde->ke", means, chol)
            logp = (np.log(weights) + log_det - 0.5 * d * np.log(2 * np.pi)
                    - 0.5 * (y**2).sum(axis=2))
            top = logp.max(axis=1, keepdims=True)
            r = np.exp(logp - top)
            r /= r.sum(axis=1, keepdims=True)
            nk += r.sum(axis=0)
            s1 += r.T @ x
            s2 += np.einsum("nk,nd,ne->kde", r, x, x)
        nk_eps = nk + 10 * np.finfo(np.float64).eps
        means = s1 / nk_eps[:, None]
        full = s2 / nk_eps[:, None, None] - means[:, :, None] * means[:, None, :]
        weights = nk_eps / nk_eps.sum()
        if cov_type == "diag":
            cov = np.diagonal(full, axis1=1, axis2=2) + reg_covar
        else:
            cov = full + reg_covar * np.eye(d)
    return means
