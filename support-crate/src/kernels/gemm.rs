//! f32 matrix products on strided views, through gemm (candle's own matmul
//! library): a transpose or a head's columns inside a wider row cost no copy.

/// A strided read-only matrix view: element (i, j) at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    pub(crate) fn new(data: &'a [f32], rs: usize, cs: usize) -> Self {
        View { data, rs, cs }
    }
    pub(crate) fn t(self) -> Self {
        View { data: self.data, rs: self.cs, cs: self.rs }
    }
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            assert!((rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len(), "matmul: view out of bounds");
        }
    }
}

/// `dst[m×n]` (row stride `dst_rs`) = `a[m×k] · b[k×n]`, added to `dst` with
/// `accumulate`; on rayon's threads with `parallel`. gemm (candle's own matmul
/// library) on strided views, so transposes are free.
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_rs: usize,
    a: View,
    b: View,
    dims: (usize, usize, usize),
    accumulate: bool,
    parallel: bool,
) {
    // SAFETY: `dst` is initialised and `dst.len()` long.
    unsafe { gemm_into(dst.as_mut_ptr(), dst.len(), dst_rs, a, b, dims, accumulate, parallel) }
}

/// `a[m×k] · b[k×n]` as a new row-major buffer, in parallel. gemm writes
/// every element, so the buffer is not zero-filled first (a memset of each
/// layer's largest activations).
pub(crate) fn product(a: View, b: View, (m, n, k): (usize, usize, usize)) -> Vec<f32> {
    if k == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::with_capacity(m * n);
    // SAFETY: the capacity is m·n; gemm without `accumulate` only writes dst,
    // every element of it (k > 0), before `set_len` exposes them.
    unsafe {
        gemm_into(out.spare_capacity_mut().as_mut_ptr().cast(), m * n, n, a, b, (m, n, k), false, true);
        out.set_len(m * n);
    }
    out
}

/// # Safety
/// `dst` must be valid for reads (with `accumulate`) and writes of `dst_len` floats.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
    dst: *mut f32,
    dst_len: usize,
    dst_rs: usize,
    a: View,
    b: View,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    parallel: bool,
) {
    a.check(m, k);
    b.check(k, n);
    if m > 0 && n > 0 {
        assert!((m - 1) * dst_rs + n <= dst_len, "matmul: product out of bounds");
    }
    // SAFETY: every element gemm reads or writes lies inside the slices (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if parallel { gemm::Parallelism::Rayon(rayon::current_num_threads()) } else { gemm::Parallelism::None },
        )
    }
}
