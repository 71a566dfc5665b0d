//! cargo-fuzz target: every property of `acr_attach_fuzz::check` over arbitrary bytes.
//! Run (from fuzz/, after `mkdir -p corpus/arm_ids`; see docs/security.md, "Fuzzing the id parser"):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run arm_ids corpus/arm_ids seeds -- -dict=arm_ids.dict -max_total_time=600`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    acr_attach_fuzz::check(data);
});
