//! The seed notebook's claims 1–4 (docs/science.md#the-seeds-claims), each tested with
//! statistics over seeds, at the seed's setting (`r = 0`) and APD's (`r = 1`):
//!
//! 1. `variants.rs`: only `emb_res` (embedding and residual) beats the naive loss;
//! 2. `transplant.rs`: a transplant of `emb_res` into `res_mlp` never beats it;
//! 3. `l1.rs`: under L1 loss the model computes exactly `n_hidden` features;
//! 4. `noise.rs`: the gain comes from the residual noise and vanishes without it.

mod l1;
mod noise;
mod transplant;
mod variants;
use tmcc_lab::Error;

use crate::ctx::{ClaimResult, Ctx};

/// Runs claims 1–4 and returns their results in order (claim 3 in two settings: 3, 3b).
pub fn run(ctx: &mut Ctx) -> Result<Vec<ClaimResult>, Error> {
    let (c1, runs) = variants::run(ctx)?;
    let c2 = transplant::run(ctx)?;
    let c3 = l1::run(ctx, &runs)?;
    let c4 = noise::run(ctx)?;
    let mut claims = vec![c1, c2];
    claims.extend(c3);
    claims.push(c4);
    Ok(claims)
}
