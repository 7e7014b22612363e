# Cython declarations of the C helpers in _vecmath.h (vectorisable exp2 and log,
# branch-free min/max/select, bit counts, and float64 lane sums in a fixed order).

from libc.stdint cimport uint64_t

cdef extern from "_vecmath.h":
    const double EMC_LN2
    const int EMC_LANES
    float emc_exp2f_neg(float x) noexcept nogil
    double emc_exp2_neg(double x) noexcept nogil
    double emc_exp2_or_zero(double x) noexcept nogil
    double emc_log(double x) noexcept nogil
    double emc_log_sum(double largest, double total, double floor) noexcept nogil
    double emc_weighted_log_sum(double w, double largest, double total,
                                double floor) noexcept nogil
    float emc_maxf(float a, float b) noexcept nogil
    double emc_maxd(double a, double b) noexcept nogil
    float emc_minf(float a, float b) noexcept nogil
    double emc_mind(double a, double b) noexcept nogil
    int emc_pick(int take_first, int first, int second) noexcept nogil
    # the smallest and largest of x[0..n), n a multiple of 8
    void emc_min_maxf(const float *x, int n, float *low, float *high) noexcept nogil
    void emc_min_maxd(const double *x, int n, double *low, double *high) noexcept nogil
    # the j < k with value[j] <= upper, in order, into index (room for k + 8); their count
    int emc_indices_at_most(const double *value, int k, double upper,
                            int *index) noexcept nogil
    int emc_popcount64(uint64_t x) noexcept nogil
    int emc_lowest_bit64(uint64_t x) noexcept nogil  # x != 0
    # RGB / RGBA float tile (channels at x + c * stride): each sample's nearest centre
    void emc_rgb_nearestf(const float *x, int stride, const float *centers, int k, int n,
                          float *best, int *label) noexcept nogil
    void emc_rgba_nearestf(const float *x, int stride, const float *centers, int k, int n,
                           float *best, int *label) noexcept nogil
    double emc_sum(const double *a, int n) noexcept nogil
    void emc_lanes_sum(const double *r, int n, double *acc) noexcept nogil
    void emc_lanes_moments(const double *r, const double *x, double m, int n, double *acc1,
                           double *acc2) noexcept nogil
    void emc_lanes_cross(const double *r, const double *xi, double mi, const double *xj,
                         double mj, int n, double *acc) noexcept nogil
    void emc_rgb_diagf(const float *e, const double *scale, const double *x0, const double *x1,
                       const double *x2, double m0, double m1, double m2, int n,
                       double *acc) noexcept nogil
    void emc_rgb_fullf(const float *e, const double *scale, const double *x0, const double *x1,
                       const double *x2, double m0, double m1, double m2, int n,
                       double *acc) noexcept nogil
    void emc_rgb_diagd(const double *e, const double *scale, const double *x0,
                       const double *x1, const double *x2, double m0, double m1, double m2,
                       int n, double *acc) noexcept nogil
    void emc_rgb_fulld(const double *e, const double *scale, const double *x0,
                       const double *x1, const double *x2, double m0, double m1, double m2,
                       int n, double *acc) noexcept nogil
    # D = 2: the same sums ('full': the upper triangle) in one pass
    void emc_xy_sumsf(const float *e, const double *scale, const double *x0, const double *x1,
                      double m0, double m1, int n, int full, double *acc) noexcept nogil
    void emc_xy_sumsd(const double *e, const double *scale, const double *x0,
                      const double *x1, double m0, double m1, int n, int full,
                      double *acc) noexcept nogil
    void emc_fold_lanes(const double *acc, int n_stats, double *stats) noexcept nogil
    # Lloyd's per-cluster sums of a tile's rows (2 to 5) by masks on the labels
    # (as doubles; -1 for no cluster); n a multiple of 16
    int emc_label_changes(const int *label, int n) noexcept nogil
    void emc_masked_sums(const double *wx, int stride, int rows, const double *label, int k,
                         int n, double *sums) noexcept nogil
