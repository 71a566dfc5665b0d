//! Runs the fuzz target's checks over files, on stable (no libFuzzer, no nightly flags):
//!
//! ```sh
//! cargo run --release --example replay                      # seeds/, artifacts/arm_ids/, corpus/arm_ids/
//! cargo run --release --example replay -- artifacts/arm_ids/crash-<sha1>   # one crash, full panic message
//! ```
//!
//! Exits 1 if any input breaks a property (each failure is reported with its input).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let paths = if args.is_empty() {
        acr_attach_fuzz::default_inputs()
    } else {
        args
    };
    let report = match acr_attach_fuzz::replay(&paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    for f in &report.failures {
        eprintln!("FAILED {}\n  input: {:?}\n  {}", f.path.display(), f.input, f.message);
    }
    println!("replay: {} inputs, {} failed", report.inputs, report.failures.len());
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
