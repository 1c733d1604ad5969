//! The flat parameter buffer of one instance and its layout table (llm.c style): every
//! trainable tensor is a named, row-major slice of one `Vec`, so optimizers, checkpoints,
//! device upload and gradient checks are plain loops. `K` instances are `K` consecutive
//! copies: instance `k`'s tensor `t` starts at `k·len + t.offset`.
//!
//! | name | shape | present when |
//! |---|---|---|
//! | `W1` | `H×D` | always |
//! | `b1` | `H` | `bias1` |
//! | `W2` | `D×H` | not `tied` (tied: `W2 = W1ᵀ`) |
//! | `b2` | `D` | `bias2` |

use serde::Serialize;

/// The trainable tensors of an instance (the table above); [`Param::name`] is the name a
/// checkpoint stores it under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Param {
    W1,
    B1,
    W2,
    B2,
}

impl Param {
    /// Every parameter, in layout order.
    pub const ALL: [Param; 4] = [Param::W1, Param::B1, Param::W2, Param::B2];

    /// The tensor's name in checkpoints (`W1`, `b1`, `W2`, `b2`).
    pub fn name(self) -> &'static str {
        match self {
            Param::W1 => "W1",
            Param::B1 => "b1",
            Param::W2 => "W2",
            Param::B2 => "b2",
        }
    }
}

/// One named tensor inside the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub param: Param,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// Where each parameter tensor of an instance lives in its flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub slots: Vec<Slot>,
    /// Elements per instance.
    pub len: usize,
}

impl Layout {
    pub fn new(n_hidden: usize, d_in: usize, bias1: bool, tied: bool, bias2: bool) -> Self {
        let mut slots = Vec::new();
        let mut len = 0;
        let mut push = |param, shape: Vec<usize>| {
            let n = shape.iter().product();
            slots.push(Slot {
                param,
                shape,
                offset: len,
                len: n,
            });
            len += n;
        };
        push(Param::W1, vec![n_hidden, d_in]);
        if bias1 {
            push(Param::B1, vec![n_hidden]);
        }
        if !tied {
            push(Param::W2, vec![d_in, n_hidden]);
        }
        if bias2 {
            push(Param::B2, vec![d_in]);
        }
        Self { slots, len }
    }

    /// The slot of `param`, or `None` when this model has no such tensor.
    pub fn get(&self, param: Param) -> Option<&Slot> {
        self.slots.iter().find(|s| s.param == param)
    }

    /// Offset of a tensor this model must have (a missing one is a bug in the caller).
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
    }
}
