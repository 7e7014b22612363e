"""SpatialGaussianMixture on a Dask volume, chunk by chunk.

The same steps as the in-memory fit (emcore/spatial.py), each run on the chunks:

- the start's box average, each chunk with a halo of the box radius (the sums are
  added in the same order as in memory: ``_box_sum``);
- the per-voxel mixture of the averaged volume, by GaussianMixture on Dask rows;
- every E-step: the data term per chunk, then the sweep a colour at a time, each
  chunk with a halo of one voxel (``dask.array.map_overlap``). A voxel of one
  colour reads only voxels of other colours, which that phase leaves alone, so a
  chunk updates its voxels exactly as the whole volume would (the kernel takes the
  chunk's origin, for the colours);
- every M-step: the posterior sums per chunk, added in chunk order.

Posteriors and labels stay Dask arrays (persisted between phases); only
model-sized arrays come back.
"""
from __future__ import annotations

import functools

import numpy as np

from emcore import _kernels, summaries
from emcore._params import precision_cholesky


def _at_least(chunks, size):
    """Chunk sizes along an axis with every chunk at least ``size`` (small ones merged
    into their neighbour), so that no halo is wider than a chunk."""
    merged = []
    for n in chunks:
        if merged and (n < size or merged[-1] < size):
            merged[-1] += n
        else:
            merged.append(n)
    return tuple(merged)


def _chunk_origin(chunks, index, depth):
    """Where a chunk with its halo starts along an axis (no halo at the volume's edge)."""
    start = int(sum(chunks[:index]))
    return start - (depth if index > 0 else 0)


def fit(model, image, mask):
    """Fit ``model`` (a SpatialGaussianMixture) to a Dask volume; returns it."""
    import dask
    import dask.array as da

    from emcore.spatial import box_mean

    dims = model.spatial_dims
    if image.ndim not in (dims, dims + 1):
        raise ValueError(f"image must have {dims} spatial axes and optionally one of "
                         f"channels, got shape {image.shape}")
    shape = tuple(image.shape[:dims])
    channels = 1 if image.ndim == dims else int(image.shape[-1])
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    grid = (1,) * (3 - dims) + shape
    vol = image.reshape(grid + (channels,)).astype(dtype)
    vol = vol.rechunk(tuple(_at_least(vol.chunks[a], 2) for a in range(3)) + (-1,))
    if mask is None:
        inside = da.ones(grid, dtype=dtype, chunks=vol.chunks[:3])
    else:
        m = da.asarray(mask)
        if m.shape != shape or m.dtype != bool:
            raise ValueError(f"mask must be a boolean array of the image's spatial shape "
                             f"{shape}, got {m.dtype} {m.shape}")
        inside = m.reshape(grid).astype(dtype).rechunk(vol.chunks[:3])
    finite = (da.isfinite(vol).all(axis=-1) | (inside == 0)).all()
    n_inside, finite = dask.compute(inside.sum(), finite)
    if not finite:
        raise ValueError("image contains NaN or infinite values inside the mask")
    n_inside = int(n_inside)
    if n_inside < model.n_components:
        raise ValueError(f"n_components={model.n_components} is more than the {n_inside} "
                         "voxels to segment")
    vol = da.where(inside[..., None] > 0, vol, 0).astype(dtype)  # any finite value outside
    packed = da.concatenate([vol, inside[..., None]], axis=-1).rechunk({3: -1}).persist()
    k, c = model.n_components, channels
    full = model.covariance_type in ("full", "tied")
    offsets, coupling = model._neighbourhood()
    hard = model.e_step == "icm"
    depth1 = {0: 0 if dims == 2 else 1, 1: 1, 2: 1, 3: 0}

    def blocks(array):
        return array.to_delayed().ravel()

    block_size = summaries.block_size_for(int(np.prod(grid)))  # one for every chunk

    def chunk_sums(p, q, centre, labels=None):
        """summaries.posterior_sums of a chunk of ``packed`` (values, then inside) with
        q, the chunk's (..., K) responsibilities, or with its voxels' labels."""
        values = np.ascontiguousarray(p[..., :c].reshape(-1, c))
        w = np.ascontiguousarray(p[..., c].reshape(-1), dtype=np.float64)
        if q is not None:
            q = np.ascontiguousarray(q.reshape(-1, k))
        return summaries.posterior_sums(values, q, centre, full, w, block_size=block_size,
                                        check_weights=False, labels=labels)

    def merged(parts):
        return summaries.merge(parts)[0]  # in chunk order

    # the start: a per-voxel mixture of the box-averaged volume
    radius = 2 if dims == 2 else 1
    depth = {0: 0 if dims == 2 else radius, 1: radius, 2: radius, 3: 0}

    def averaged_block(b):
        out = b.copy()
        out[..., :c] = box_mean(b[..., :c], b[..., c] > 0, radius)
        return out
    averaged = packed.map_overlap(averaged_block, depth=depth, boundary="none",
                                  dtype=dtype)[..., :c].astype(dtype)
    rows = averaged.reshape(-1, c)
    weight = inside.reshape(-1).astype(np.float64)
    start = model._per_voxel_mixture(rows, None, weight)
    centre = start.means_.astype(dtype)

    def start_sums(p, a):
        labels = start.predict(np.ascontiguousarray(a.reshape(-1, c)))
        return chunk_sums(p, None, centre, labels=labels.astype(np.int32))
    total = merged(dask.compute(*[dask.delayed(start_sums)(p, a)
                                  for p, a in zip(blocks(packed), blocks(averaged))]))
    eps = np.finfo(dtype).eps
    weights, means, cov = model._start_parameters(total, centre, start)
    prec_chol = precision_cholesky(cov, model.covariance_type)

    def data_block(p, means, prec_chol):
        values = np.ascontiguousarray(p[..., :c].reshape(-1, c))
        return model._data_term(values, means, prec_chol, 1).reshape(p.shape[:3] + (k,))

    def data_term(means, prec_chol):
        """The lazy (Z, Y, X, K) data term under the current Gaussians."""
        return packed.map_blocks(data_block, means.astype(dtype), prec_chol.astype(dtype),
                                 chunks=vol.chunks[:3] + ((k,),), dtype=dtype)

    def sweep_block(b, colour, block_info=None):
        location = block_info[0]["chunk-location"]
        origin = [_chunk_origin(vol.chunks[a], location[a], depth1[a]) for a in range(3)]
        q = np.ascontiguousarray(b[..., :k].reshape(-1, k))
        data = np.ascontiguousarray(b[..., k:2 * k].reshape(-1, k))
        here = np.ascontiguousarray(b[..., 2 * k].reshape(-1) > 0, dtype=np.uint8)
        _kernels.mrf_sweeps(data, q, here, b.shape[:3], offsets, coupling, hard, 1, 1,
                            colour=colour, origin=origin)
        out = b.copy()
        out[..., :k] = q.reshape(b.shape[:3] + (k,))
        return out

    q = None
    converged, n_iter = False, 0
    for n_iter in range(1, model.max_iter + 1):
        data = data_term(means, prec_chol)
        if q is None:
            q = da.exp(data) * inside[..., None]
        before = q.argmax(axis=-1)
        state = da.concatenate([q, data, inside[..., None]], axis=-1).rechunk({3: -1})
        state = state.persist()
        for colour in range(_kernels.mrf_colours(offsets)):
            state = state.map_overlap(functools.partial(sweep_block, colour=colour),
                                      depth=depth1, boundary="none", dtype=dtype).persist()
        q = state[..., :k].rechunk(vol.chunks[:3] + ((k,),))
        changed = ((q.argmax(axis=-1) != before) & (inside > 0)).sum()
        centre = means.astype(dtype)
        changed, *parts = dask.compute(changed, *[
            dask.delayed(chunk_sums)(p, qb, centre)
            for p, qb in zip(blocks(packed), blocks(q))])
        total = merged(parts)
        weights, means, cov = model._finish_m_step(total, centre, means, cov, eps)
        prec_chol = precision_cholesky(cov, model.covariance_type)
        if n_iter > 1 and int(changed) <= model.tol * n_inside:
            converged = True
            break
    model._store(weights, means, cov, prec_chol, dtype)
    if q is None:
        q = data_term(means, prec_chol)
    labels = da.where(inside > 0, q.argmax(axis=-1), -1).reshape(shape)
    model.labels_ = labels
    model.offsets_, model.coupling_ = offsets, coupling
    model.n_iter_, model.converged_ = n_iter, converged
    model._fitted_covariance_type = model.covariance_type
    model.n_features_in_ = channels
    return model
