//! Holds the criterion benchmarks in `benches/benches/`; no library code.
