//! What the int8 kernel test files share: the tiers to compare, and a convolution or a
//! depthwise case run through one tier's kernel table.

use outpost_kernels::{
    Conv2dParams, DepthwiseParams, KernelTable, PackedConv, PackedDepthwise, Tier,
};

pub fn simd_tiers() -> Vec<KernelTable> {
    Tier::supported()
        .filter(|&t| t != Tier::Generic)
        .map(|t| KernelTable::for_tier(t).unwrap())
        .collect()
}

pub fn generic() -> KernelTable {
    KernelTable::for_tier(Tier::Generic).unwrap()
}

#[derive(Debug, Clone)]
pub struct ConvCase {
    pub p: Conv2dParams,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub scales: Vec<f32>,
    pub input: Vec<i8>,
}

impl ConvCase {
    /// The case packed for `table`'s tier.
    pub fn pack(&self, table: &KernelTable) -> PackedConv {
        let c = self;
        PackedConv::new(
            table.tier(),
            &c.p,
            &c.weights,
            Some(&c.bias),
            1.0,
            &c.scales,
            1.0,
        )
    }
}

pub fn run_conv(table: &KernelTable, c: &ConvCase) -> Vec<i8> {
    let packed = c.pack(table);
    let len = c.p.output_len();
    // Bytes after the output, which the kernel must leave as they are.
    let mut out = vec![0x5Ai8; len + 64];
    let mut scratch = vec![0u8; packed.scratch_bytes()];
    table.conv2d_i8(&packed, &c.input, &mut out[..len], &mut scratch);
    assert!(
        out[len..].iter().all(|&b| b == 0x5A),
        "{}: written past the output",
        table.tier()
    );
    out.truncate(len);
    out
}

#[derive(Debug, Clone)]
pub struct DwCase {
    pub p: DepthwiseParams,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub scales: Vec<f32>,
    pub input: Vec<i8>,
    /// Ties of the output shift upward (TFLite's optimized depthwise) or away from zero.
    pub upward: bool,
}

impl DwCase {
    /// The case packed for `table`'s tier, with its rounding of ties.
    pub fn pack(&self, table: &KernelTable) -> PackedDepthwise {
        let c = self;
        PackedDepthwise::new(
            table.tier(),
            &c.p,
            &c.weights,
            Some(&c.bias),
            1.0,
            &c.scales,
            1.0,
        )
        .ties_upward(c.upward)
    }
}

pub fn run_dw(table: &KernelTable, c: &DwCase) -> Vec<i8> {
    let packed = c.pack(table);
    let mut out = vec![0i8; c.p.output_len()];
    let mut scratch = vec![0u8; packed.scratch_bytes()];
    table.depthwise_i8(&packed, &c.input, &mut out, &mut scratch);
    out
}
