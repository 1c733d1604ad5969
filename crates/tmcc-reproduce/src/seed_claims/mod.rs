//! The seed notebook's claims 1–4 (docs/science.md#the-seeds-claims), each tested with
//! statistics over seeds, at the seed's setting (`r = 0`) and APD's (`r = 1`):
//!
//! 1. `variants.rs`: only `emb_res` (embedding and residual) beats the naive loss;
//! 2. `transplant.rs`: a transplant of `emb_res` into `res_mlp` never beats it (APD's
//!    setting); `transplant_r0.rs`: the same in the seed's (`emb_mlp`, r = 0, claim "2b"),
//!    with the definitions that could explain the seed's numbers;
//! 3. `l1.rs`: under L1 loss the model computes exactly `n_hidden` features; `l1_grid.rs`:
//!    the count over learning rate, initial scale, batch size and steps;
//! 4. `noise.rs`: the gain comes from the residual noise and vanishes without it.
//!
//! Beside claim 1: `naive_reach.rs` (why `mlp` sits above naive) and `protocol.rs` (the
//! seed's own initialisation and evaluation).

mod l1;
mod l1_grid;
mod naive_reach;
mod noise;
mod protocol;
mod transplant;
mod transplant_r0;
mod variants;

use tmcc_lab::Error;
pub use variants::MARGIN_PERCENT;

use crate::ctx::{ClaimResult, Ctx};

/// Runs claims 1–4 and returns their results in order (claims 2 and 3 in two settings:
/// 2, 2b, 3, 3b).
pub fn run(ctx: &mut Ctx) -> Result<Vec<ClaimResult>, Error> {
    let (c1, runs) = variants::run(ctx)?;
    let c1 = logged(ctx, c1);
    let c2 = transplant::run(ctx)?;
    let c2 = logged(ctx, c2);
    ctx.stage = "[claim 2b/4: transplant at r = 0]".into();
    let c2b = logged(
        ctx,
        transplant_r0::run(ctx, runs.get(tmcc_model::Variant::EmbMlp))?,
    );
    let c3: Vec<ClaimResult> = l1::run(ctx, &runs)?
        .into_iter()
        .map(|c| logged(ctx, c))
        .collect();
    let c4 = noise::run(ctx)?;
    let c4 = logged(ctx, c4);
    let mut claims = vec![c1, c2, c2b];
    claims.extend(c3);
    claims.push(c4);
    Ok(claims)
}

/// Logs a finished claim with its section of the report, so that a long run shows its
/// results as they come.
fn logged(ctx: &Ctx, claim: ClaimResult) -> ClaimResult {
    ctx.log(&format!(
        "claim {} done in {:.0} s: {}\n{}",
        claim.id, claim.seconds, claim.verdict, claim.markdown
    ));
    claim
}
