//! Which instruction set the engine's kernels run on: the widest the CPU has,
//! unless lowered to measure a narrower path on a machine that has a wider one.
//! Every path gives the same bits (see `simulate.rs`), so the choice only ever
//! changes the speed.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum InstructionSet {
    /// Plain Rust, vectorised by the compiler for the build's baseline.
    Portable = 0,
    /// AVX2 and FMA.
    Avx2 = 1,
    /// AVX-512F.
    Avx512 = 2,
}

impl InstructionSet {
    pub fn name(self) -> &'static str {
        match self {
            InstructionSet::Portable => "portable",
            InstructionSet::Avx2 => "avx2",
            InstructionSet::Avx512 => "avx512",
        }
    }

    /// The widest set this CPU runs.
    pub fn detected() -> InstructionSet {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return InstructionSet::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return InstructionSet::Avx2;
            }
        }
        InstructionSet::Portable
    }

    fn from_u8(value: u8) -> InstructionSet {
        match value {
            2 => InstructionSet::Avx512,
            1 => InstructionSet::Avx2,
            _ => InstructionSet::Portable,
        }
    }
}

/// The widest set allowed; the process's own, set once by its entry point.
static CEILING: AtomicU8 = AtomicU8::new(InstructionSet::Avx512 as u8);

/// Lets the kernels use no set wider than `ceiling` from now on.
pub fn limit_instruction_set(ceiling: InstructionSet) {
    CEILING.store(ceiling as u8, Ordering::Relaxed);
}

/// The set the kernels run on: the detected one, or the ceiling if lower.
pub fn instruction_set() -> InstructionSet {
    InstructionSet::detected().min(InstructionSet::from_u8(CEILING.load(Ordering::Relaxed)))
}
