//! Outpost benchmarks live in `benches/`; this library holds shared fixtures.
