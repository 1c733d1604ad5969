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

/// One named tensor inside the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub name: &'static str,
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
        let mut push = |name, shape: Vec<usize>| {
            let n = shape.iter().product();
            slots.push(Slot {
                name,
                shape,
                offset: len,
                len: n,
            });
            len += n;
        };
        push("W1", vec![n_hidden, d_in]);
        if bias1 {
            push("b1", vec![n_hidden]);
        }
        if !tied {
            push("W2", vec![d_in, n_hidden]);
        }
        if bias2 {
            push("b2", vec![d_in]);
        }
        Self { slots, len }
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// Offset of a tensor that must exist (a missing one is a bug in the caller).
    pub fn offset(&self, name: &str) -> usize {
        self.get(name)
            .unwrap_or_else(|| panic!("layout has no tensor `{name}`"))
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
            assert_eq!(l.get("W2").is_none(), tied);
            assert_eq!(l.get("b1").is_some(), b1);
        }
    }
}
