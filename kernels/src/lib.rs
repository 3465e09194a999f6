//! Outpost compute kernels.

