//! Instruction-set tiers and their detection.

use core::fmt;

/// A kernel implementation tier. Every tier computes bit-identical int8 results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Portable scalar reference (TFLite reference arithmetic).
    Generic,
    /// x86-64 AVX2 + FMA (int8 through `vpmaddwd`).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL + VNNI (int8 through `vpdpbusd`).
    Avx512Vnni,
}

/// The environment variable that forces a tier: `generic`, `avx2` or `avx512vnni`.
pub const TIER_ENV_VAR: &str = "OUTPOST_KERNELS";

/// Why a tier could not be selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierError {
    /// The tier name is not one of `generic`, `avx2`, `avx512vnni`.
    Unknown(String),
    /// The CPU lacks the instructions the tier needs.
    Unsupported(Tier),
}

impl fmt::Display for TierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierError::Unknown(s) => write!(
                f,
                "{TIER_ENV_VAR}={s:?} is not a kernel tier (expected generic, avx2 or avx512vnni)"
            ),
            TierError::Unsupported(t) => write!(
                f,
                "{TIER_ENV_VAR} asks for the {} kernel tier but this CPU lacks {}",
                t.name(),
                t.required_features()
            ),
        }
    }
}

impl std::error::Error for TierError {}

impl Tier {
    /// All tiers, slowest first.
    pub const ALL: [Tier; 3] = [Tier::Generic, Tier::Avx2, Tier::Avx512Vnni];

    /// The tier's name as accepted by [`TIER_ENV_VAR`].
    pub fn name(self) -> &'static str {
        match self {
            Tier::Generic => "generic",
            Tier::Avx2 => "avx2",
            Tier::Avx512Vnni => "avx512vnni",
        }
    }

    /// Human-readable list of the CPU features the tier needs.
    pub fn required_features(self) -> &'static str {
        match self {
            Tier::Generic => "nothing",
            Tier::Avx2 => "AVX2 and FMA",
            Tier::Avx512Vnni => "AVX-512 F/BW/VL, AVX-512 VNNI and FMA",
        }
    }

    /// Whether the tier's f32 convolutions and depthwise convolutions round each tap's
    /// multiply-add once (a fused multiply-add, as XNNPACK and most runtimes compute them)
    /// instead of rounding the product and the sum apart as the generic tier does. Their
    /// results then differ from the generic tier's in the last bits, within the same error
    /// budget of an exact sum; [`crate::KernelTable::reference_for`] is the scalar table they
    /// equal bit for bit.
    pub fn fuses_f32_multiply_add(self) -> bool {
        matches!(self, Tier::Avx2 | Tier::Avx512Vnni)
    }

    /// Parses a tier name (case-insensitive).
    pub fn parse(name: &str) -> Result<Tier, TierError> {
        let n = name.trim().to_ascii_lowercase();
        Tier::ALL
            .into_iter()
            .find(|t| t.name() == n)
            .ok_or_else(|| TierError::Unknown(name.to_string()))
    }

    /// Whether this CPU can run the tier.
    pub fn is_supported(self) -> bool {
        match self {
            Tier::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The tier a CPU with `features` runs best (for planning on another machine's report).
    pub fn best_for(features: outpost_hal::CpuFeatures) -> Tier {
        if features.avx512vnni {
            Tier::Avx512Vnni
        } else if features.avx2 {
            Tier::Avx2
        } else {
            Tier::Generic
        }
    }

    /// The fastest tier this CPU supports.
    pub fn best() -> Tier {
        Tier::ALL
            .into_iter()
            .rev()
            .find(|t| t.is_supported())
            .unwrap_or(Tier::Generic)
    }

    /// All tiers this CPU supports, slowest first.
    pub fn supported() -> impl Iterator<Item = Tier> {
        Tier::ALL.into_iter().filter(|t| t.is_supported())
    }

    /// The tier forced by `value` (the content of [`TIER_ENV_VAR`]) or, if `None`, the best one.
    pub fn select(value: Option<&str>) -> Result<Tier, TierError> {
        match value {
            None => Ok(Tier::best()),
            Some(v) => {
                let t = Tier::parse(v)?;
                if t.is_supported() {
                    Ok(t)
                } else {
                    Err(TierError::Unsupported(t))
                }
            }
        }
    }

    /// The tier forced by the [`TIER_ENV_VAR`] environment variable, or the best one if it is
    /// unset or empty.
    pub fn from_env() -> Result<Tier, TierError> {
        let v = std::env::var(TIER_ENV_VAR)
            .ok()
            .filter(|s| !s.trim().is_empty());
        Tier::select(v.as_deref())
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SIMD features of this CPU that kernel selection looks at.
pub fn cpu_features() -> outpost_hal::CpuFeatures {
    outpost_hal::CpuFeatures {
        avx2: Tier::Avx2.is_supported(),
        avx512vnni: Tier::Avx512Vnni.is_supported(),
        #[cfg(target_arch = "aarch64")]
        neon: std::arch::is_aarch64_feature_detected!("neon"),
        #[cfg(not(target_arch = "aarch64"))]
        neon: false,
        #[cfg(target_arch = "aarch64")]
        dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
        #[cfg(not(target_arch = "aarch64"))]
        dotprod: false,
    }
}
