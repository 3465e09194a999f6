//! `OUTPOST_KERNELS` selects the tier; unknown or unsupported values are clear errors.

use outpost_kernels::{KernelTable, TIER_ENV_VAR, Tier, TierError};
use std::process::Command;

const EXPECT_VAR: &str = "OUTPOST_KERNELS_TEST_EXPECT";

/// Runs in a child process with `OUTPOST_KERNELS` set (a no-op when run directly).
#[test]
fn child_reports_tier() {
    let Ok(expect) = std::env::var(EXPECT_VAR) else {
        return;
    };
    match KernelTable::from_env() {
        Ok(t) => assert_eq!(t.tier().name(), expect),
        Err(e) => assert_eq!(format!("error: {e}"), expect),
    }
}

fn child(value: &str, expect: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_reports_tier", "--test-threads=1"])
        .env(TIER_ENV_VAR, value)
        .env(EXPECT_VAR, expect)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{TIER_ENV_VAR}={value} did not give {expect}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child test did not run"
    );
}

#[test]
fn env_var_is_honoured() {
    for t in Tier::supported() {
        child(t.name(), t.name());
    }
    child("GENERIC", "generic");
    child("", Tier::best().name());
    child(
        "sse9",
        &format!("error: {}", TierError::Unknown("sse9".into())),
    );
    for t in Tier::ALL.into_iter().filter(|t| !t.is_supported()) {
        child(t.name(), &format!("error: {}", TierError::Unsupported(t)));
    }
}

#[test]
fn select_parses_and_checks() {
    assert_eq!(Tier::select(None).unwrap(), Tier::best());
    assert_eq!(Tier::select(Some("generic")).unwrap(), Tier::Generic);
    assert_eq!(
        Tier::select(Some(" AVX512VNNI ")).map_err(|e| e.to_string()),
        if Tier::Avx512Vnni.is_supported() {
            Ok(Tier::Avx512Vnni)
        } else {
            Err(TierError::Unsupported(Tier::Avx512Vnni).to_string())
        }
    );
    let err = Tier::select(Some("neon9")).unwrap_err();
    assert_eq!(err, TierError::Unknown("neon9".into()));
    assert!(
        err.to_string()
            .contains("expected generic, avx2 or avx512vnni")
    );
    for t in Tier::supported() {
        assert_eq!(KernelTable::for_tier(t).unwrap().tier(), t);
    }
    assert_eq!(
        Tier::best_for(outpost_kernels::cpu_features()),
        Tier::best()
    );
}
