/* The spatial transformer (Jaderberg et al. 2015) as PyTorch's two functions: checks and dispatch.
 *   affine_grid:  theta [N,2,3] -> grid [N,H,W,2], grid(i, j) = theta (x_j, y_i, 1), the pixel centres in -1..1
 *                 (align_corners = false); backward: gtheta = sum over (i, j) of ggrid(i, j) (x_j, y_i, 1)^T
 *   grid_sample:  x [N,C,H,W] read bilinearly at grid [N,OH,OW,2] (zero outside) -> y [N,C,OH,OW]; backward:
 *                 gx (each read's weights, scattered) and ggrid (the bilinear patch's slopes)
 * kernels/pointwise.h has the per-point math both backends share. */
#include "internal.h"

static int check_grid(const char *what, const ts_tensor *theta, const ts_tensor *grid)
{
    char a[96], b[96];
    if (ts_check_f32(what, theta) || ts_check_f32(what, grid)) return -1;
    if (theta->ndim != 3 || theta->shape[1] != 2 || theta->shape[2] != 3 || grid->ndim != 4 || grid->shape[3] != 2 ||
        grid->shape[0] != theta->shape[0] || grid->shape[1] > INT32_MAX || grid->shape[2] > INT32_MAX)
        return ts_error("%s: expected theta [N,2,3] and a grid [N,H,W,2], got %s and %s", what,
                        ts_shape_str(theta, a, sizeof a), ts_shape_str(grid, b, sizeof b));
    return ts_check_same_device(what, theta, grid, NULL, NULL);
}

int ts_affine_grid_forward(ts_tensor *grid, const ts_tensor *theta)
{
    if (check_grid("affine_grid", theta, grid)) return -1;
    const tsk_backend *k = ts_kernels(theta);
    k->affine_grid_forward(theta->shape[0], (int)grid->shape[1], (int)grid->shape[2], ts_f32(theta), ts_f32(grid));
    return ts_kernel_status(k, "affine_grid");
}

int ts_affine_grid_backward(ts_tensor *grad_theta, const ts_tensor *grad_grid)
{
    if (check_grid("affine_grid backward", grad_theta, grad_grid)) return -1;
    const tsk_backend *k = ts_kernels(grad_theta);
    k->affine_grid_backward(grad_theta->shape[0], (int)grad_grid->shape[1], (int)grad_grid->shape[2],
                            ts_f32(grad_grid), ts_f32(grad_theta));
    return ts_kernel_status(k, "affine_grid backward");
}

/* x [N,C,H,W], grid [N,OH,OW,2], y [N,C,OH,OW] */
static int check_sample(const char *what, const ts_tensor *x, const ts_tensor *grid, const ts_tensor *y)
{
    char a[96], b[96];
    if (ts_check_f32(what, x) || ts_check_f32(what, grid) || ts_check_f32(what, y)) return -1;
    if (x->ndim != 4 || grid->ndim != 4 || grid->shape[3] != 2 || grid->shape[0] != x->shape[0] ||
        x->shape[2] > INT32_MAX || x->shape[3] > INT32_MAX || x->shape[1] > INT32_MAX ||
        grid->shape[1] > INT32_MAX || grid->shape[2] > INT32_MAX)
        return ts_error("%s: expected an input [N,C,H,W] and a grid [N,OH,OW,2], got %s and %s", what,
                        ts_shape_str(x, a, sizeof a), ts_shape_str(grid, b, sizeof b));
    int64_t out[4] = {x->shape[0], x->shape[1], grid->shape[1], grid->shape[2]};
    return ts_check_shape(what, y, 4, out) || ts_check_same_device(what, x, grid, y, NULL) ? -1 : 0;
}

int ts_grid_sample_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *grid)
{
    if (check_sample("grid_sample", x, grid, y)) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->grid_sample_forward(x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)grid->shape[1],
                           (int)grid->shape[2], ts_f32(x), ts_f32(grid), ts_f32(y));
    return ts_kernel_status(k, "grid_sample");
}

int ts_grid_sample_backward(ts_tensor *grad_x, ts_tensor *grad_grid, const ts_tensor *x, const ts_tensor *grid,
                            const ts_tensor *grad_y)
{
    const char *what = "grid_sample backward";
    if (check_sample(what, x, grid, grad_y)) return -1;
    if (grad_x && (ts_check_shape(what, grad_x, 4, x->shape) || ts_check_f32(what, grad_x) ||
                   ts_check_same_device(what, x, grad_x, NULL, NULL)))
        return -1;
    if (grad_grid && (ts_check_shape(what, grad_grid, 4, grid->shape) || ts_check_f32(what, grad_grid) ||
                      ts_check_same_device(what, grid, grad_grid, NULL, NULL)))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->grid_sample_backward(x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3], (int)grid->shape[1],
                            (int)grid->shape[2], ts_f32(x), ts_f32(grid), ts_f32(grad_y),
                            grad_x ? ts_f32(grad_x) : NULL, grad_grid ? ts_f32(grad_grid) : NULL);
    return ts_kernel_status(k, "grid_sample backward");
}
