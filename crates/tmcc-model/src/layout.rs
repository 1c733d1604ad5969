//! The flat parameter buffer of one instance and its layout table (llm.c style): every
//! trainable tensor is a named, row-major slice of one `Vec`, so optimizers, checkpoints,
//! device upload and gradient checks are plain loops. `K` instances are `K` consecutive
//! copies: instance `k`'s tensor `t` starts at `k·len + t.offset`.
//!
//! Per block `l = 0 … L−1` of width `H_l`, block after block:
//!
//! | name | shape | present when |
//! |---|---|---|
//! | `W1` | `H_l×D` | always |
//! | `b1` | `H_l` | `bias1` |
//! | `W2` | `D×H_l` | not `tied` (tied: `W2 = W1ᵀ`) |
//! | `b2` | `D` | `bias2` |
//!
//! Block 0's tensors are named as in the table (so a one-block model reads as before);
//! block `l ≥ 1`'s carry the suffix `.l` (`W1.1`, `b2.2`, …). A `mix` model with
//! `learn_sigma` ends with one more tensor, `sigma` (shape `[1]`, in block 0's table):
//! its trained mixing magnitude.

use serde::Serialize;

/// The trainable tensors of an instance (the table above); [`Param::name`] is the name a
/// checkpoint stores it under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Param {
    W1,
    B1,
    W2,
    B2,
    /// The learned mixing magnitude `σ` (`learn_sigma`).
    Sigma,
}

impl Param {
    /// Every parameter, in layout order.
    pub const ALL: [Param; 5] = [Param::W1, Param::B1, Param::W2, Param::B2, Param::Sigma];

    /// The tensor's name in checkpoints (`W1`, `b1`, `W2`, `b2`, `sigma`).
    pub fn name(self) -> &'static str {
        match self {
            Param::W1 => "W1",
            Param::B1 => "b1",
            Param::W2 => "W2",
            Param::B2 => "b2",
            Param::Sigma => "sigma",
        }
    }
}

/// One named tensor inside the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub param: Param,
    /// The residual block the tensor belongs to.
    #[serde(skip_serializing_if = "is_first_block")]
    pub block: usize,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

fn is_first_block(block: &usize) -> bool {
    *block == 0
}

impl Slot {
    /// The tensor's name in checkpoints: `W1` for block 0, `W1.2` for block 2.
    pub fn name(&self) -> String {
        match self.block {
            0 => self.param.name().to_string(),
            l => format!("{}.{l}", self.param.name()),
        }
    }
}

/// Where each parameter tensor of an instance lives in its flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub slots: Vec<Slot>,
    /// Elements per instance.
    pub len: usize,
}

impl Layout {
    /// The layout of `cfg`'s model: its blocks, then `sigma` when it is learned.
    pub fn of(cfg: &crate::config::Config) -> Self {
        let mut layout = Self::blocks(&cfg.widths(), cfg.d_in(), cfg.bias1, cfg.tied, cfg.bias2);
        if cfg.learn_sigma {
            layout.slots.push(Slot {
                param: Param::Sigma,
                block: 0,
                shape: vec![1],
                offset: layout.len,
                len: 1,
            });
            layout.len += 1;
        }
        layout
    }

    /// One block of width `n_hidden`.
    pub fn new(n_hidden: usize, d_in: usize, bias1: bool, tied: bool, bias2: bool) -> Self {
        Self::blocks(&[n_hidden], d_in, bias1, tied, bias2)
    }

    /// One block per entry of `widths`, in order.
    pub fn blocks(widths: &[usize], d_in: usize, bias1: bool, tied: bool, bias2: bool) -> Self {
        let mut slots = Vec::new();
        let mut len = 0;
        for (block, &h) in widths.iter().enumerate() {
            let mut push = |param, shape: Vec<usize>| {
                let n = shape.iter().product();
                slots.push(Slot {
                    param,
                    block,
                    shape,
                    offset: len,
                    len: n,
                });
                len += n;
            };
            push(Param::W1, vec![h, d_in]);
            if bias1 {
                push(Param::B1, vec![h]);
            }
            if !tied {
                push(Param::W2, vec![d_in, h]);
            }
            if bias2 {
                push(Param::B2, vec![d_in]);
            }
        }
        Self { slots, len }
    }

    /// Number of residual blocks.
    pub fn n_blocks(&self) -> usize {
        self.slots.iter().map(|s| s.block + 1).max().unwrap_or(0)
    }

    /// The slot of `param` in block `block`, or `None` when there is no such tensor.
    pub fn get_in(&self, block: usize, param: Param) -> Option<&Slot> {
        self.slots
            .iter()
            .find(|s| s.block == block && s.param == param)
    }

    /// The slot of `param` in block 0, or `None` when this model has no such tensor.
    pub fn get(&self, param: Param) -> Option<&Slot> {
        self.get_in(0, param)
    }

    /// Offset of block 0's tensor this model must have (a missing one is a bug in the caller).
    pub fn offset(&self, param: Param) -> usize {
        self.get(param)
            .unwrap_or_else(|| panic!("this model has no tensor `{}`", param.name()))
            .offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_tile_the_buffer() {
        for (b1, tied, b2) in [
            (false, false, false),
            (true, true, true),
            (true, false, true),
        ] {
            let l = Layout::new(5, 7, b1, tied, b2);
            let mut at = 0;
            for s in &l.slots {
                assert_eq!(s.offset, at);
                assert_eq!(s.len, s.shape.iter().product::<usize>());
                at += s.len;
            }
            assert_eq!(at, l.len);
            assert_eq!(l.get(Param::W2).is_none(), tied);
            assert_eq!(l.get(Param::B1).is_some(), b1);
        }
        let deep = Layout::blocks(&[3, 5], 7, true, false, false);
        assert_eq!(deep.n_blocks(), 2);
        let w1 = deep.get_in(1, Param::W1).unwrap();
        assert_eq!(
            (w1.shape.clone(), w1.offset, w1.name()),
            (vec![5, 7], 3 * 7 + 3 + 7 * 3, "W1.1".to_string())
        );
        assert_eq!(deep.len, 3 * 7 + 3 + 7 * 3 + 5 * 7 + 5 + 7 * 5);
    }
}
