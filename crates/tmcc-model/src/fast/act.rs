//! The activations on backend buffers, forward `post = act(pre)` and backward
//! `grad ← grad ⊙ act'(pre)` (crate::act): ReLU by the backend's kernels (its mask reads
//! `post`, which is `> 0` exactly where `pre` is); GELU, exact erf form, elementwise on the
//! host through `read`/`write` (the kernel backend has no GELU operation: on the CPU this
//! is two copies of a `B×H` buffer, on a device a transfer each way); identity, `post ← 0`
//! then `post += 1·pre` (exact), and a backward pass that leaves `grad` as it is.

use tmcc_kernels::Backend;

use crate::act::Act;
use crate::model::Float;
use crate::Error;

/// `post ← act(pre)` (whole buffers).
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    bk: &Bk,
    act: Act,
    pre: &Bk::Buf,
    post: &mut Bk::Buf,
) -> Result<(), Error> {
    match act {
        Act::Relu => bk.relu(pre, post)?,
        Act::Gelu => {
            let values: Vec<T> = bk.read(pre)?.into_iter().map(|v| act.apply(v)).collect();
            bk.write(post, &values)?;
        }
        Act::Identity => {
            bk.fill(post, T::zero())?;
            bk.axpy(T::one(), pre, post)?;
        }
    }
    Ok(())
}

/// `grad ← grad ⊙ act'(pre)` (whole buffers); `post = act(pre)`.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    bk: &Bk,
    act: Act,
    pre: &Bk::Buf,
    post: &Bk::Buf,
    grad: &mut Bk::Buf,
) -> Result<(), Error> {
    match act {
        Act::Relu => bk.relu_mask(post, grad)?,
        Act::Gelu => {
            let pre = bk.read(pre)?;
            let mut g = bk.read(grad)?;
            for (g, &p) in g.iter_mut().zip(&pre) {
                *g = *g * act.derivative(p);
            }
            bk.write(grad, &g)?;
        }
        Act::Identity => {}
    }
    Ok(())
}
