//! `cargo xtask fuzz [--seconds N] [TARGET]`: runs the `cargo fuzz` targets in `fuzz/` (the
//! inbound body parser, the JSON number scan and the mapping engine of `herald-domain`, the
//! template language of `herald-template`) for a bounded time each, and fails on any crash, printing the libFuzzer
//! report, the artifact's path and its bytes.
//!
//! It is also the last step of `cargo xtask test`, for `HERALD_FUZZ_SECONDS` seconds per
//! target (default 30; 0 skips it).
//!
//! cargo-fuzz needs nightly-only rustc flags (`-Zsanitizer=address`, sanitizer coverage). The
//! project builds with a stable toolchain, so the `cargo fuzz` commands (and only those) run
//! with `RUSTC_BOOTSTRAP=1`, which lets stable rustc accept them; the AddressSanitizer runtime
//! ships with the stable `rust-std` component for x86_64-unknown-linux-gnu. cargo-fuzz itself
//! is installed with `cargo install --locked cargo-fuzz` when missing.
//!
//! The fuzz crate has its own workspace and target directory (`fuzz/target`), so its first
//! build (a few minutes: every dependency is built with coverage instrumentation and ASan) does
//! not disturb the main build. Each target's corpus lives in `fuzz/corpus/<target>` (ignored by
//! git) and is seeded from the committed inputs in `fuzz/seeds/<target>` before every run;
//! crashes go to `fuzz/artifacts/<target>`, libFuzzer's output to `fuzz/logs/<target>.log`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::{SignalWatch, cargo, step, workspace_root};

/// The fuzz targets, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 7] =
    ["inbound_payload", "json_numbers", "mapping", "report", "segment", "template", "unsubscribe_token"];

/// Seconds per target for `cargo xtask test` (and the default of `cargo xtask fuzz`).
const SECONDS_VAR: &str = "HERALD_FUZZ_SECONDS";
const DEFAULT_SECONDS: u64 = 30;

/// libFuzzer's memory limit, in MB.
const RSS_LIMIT_MB: u32 = 2048;
/// libFuzzer's limit for one input, in seconds: a hang is reported like a crash.
const TIMEOUT_SECONDS: u32 = 20;
/// Crashing inputs up to this size are printed in full, so a CI log alone can reproduce them.
const MAX_PRINTED_ARTIFACT: u64 = 4096;

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// How long to fuzz each target, in seconds (0 skips fuzzing).
    #[arg(long, env = SECONDS_VAR, default_value_t = DEFAULT_SECONDS, value_name = "N")]
    seconds: u64,
    /// The target to fuzz; all of them when absent.
    #[arg(value_parser = TARGETS)]
    target: Option<String>,
}

/// `cargo xtask fuzz`.
pub fn fuzz(signals: &SignalWatch, args: &FuzzArgs) -> Result<()> {
    let targets: Vec<&str> = match &args.target {
        Some(target) => TARGETS.into_iter().filter(|t| t == target).collect(),
        None => TARGETS.to_vec(),
    };
    run(signals, &targets, args.seconds)
}

/// The fuzzing step of `cargo xtask test`: every target for `HERALD_FUZZ_SECONDS` seconds.
pub fn fuzz_for_test(signals: &SignalWatch) -> Result<()> {
    let seconds = match std::env::var(SECONDS_VAR) {
        Ok(raw) => raw
            .trim()
            .parse()
            .with_context(|| format!("{SECONDS_VAR}={raw:?} is not a number of seconds (0 skips fuzzing)"))?,
        Err(std::env::VarError::NotPresent) => DEFAULT_SECONDS,
        Err(err) => bail!("cannot read {SECONDS_VAR}: {err}"),
    };
    run(signals, &TARGETS, seconds)
}

fn run(signals: &SignalWatch, targets: &[&str], seconds: u64) -> Result<()> {
    if seconds == 0 {
        step("fuzzing skipped (0 seconds per target)");
        return Ok(());
    }
    let fuzz_dir = workspace_root().join("fuzz");
    ensure_cargo_fuzz(signals)?;

    let which = if targets.len() == 1 { targets.join("") } else { "all targets".to_owned() };
    step(&format!("cargo fuzz build {which} (RUSTC_BOOTSTRAP=1, AddressSanitizer; the first build takes minutes)"));
    let started = Instant::now();
    let mut build = cargo_fuzz();
    build.arg("build");
    if let [target] = targets {
        build.arg(target);
    }
    if !signals.run(&mut build)? {
        signals.bail_if_caught()?;
        bail!("building the fuzz targets failed (see above)");
    }
    signals.bail_if_caught()?;
    eprintln!("xtask: fuzz targets built in {}", human(started.elapsed()));

    let mut crashed = Vec::new();
    for target in targets {
        if !run_target(signals, &fuzz_dir, target, seconds)? {
            crashed.push(*target);
        }
        signals.bail_if_caught()?;
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes in: {} (see above)", crashed.join(", "));
    }
    eprintln!("xtask: fuzzing found no crashes");
    Ok(())
}

/// Installs cargo-fuzz unless `cargo fuzz` already works.
fn ensure_cargo_fuzz(signals: &SignalWatch) -> Result<()> {
    let works = |cmd: &mut Command| {
        cmd.args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if works(&mut cargo()) {
        return Ok(());
    }
    step("cargo install --locked cargo-fuzz (cargo-fuzz is not installed)");
    if !signals.run(cargo().args(["install", "--locked", "cargo-fuzz"]))? {
        signals.bail_if_caught()?;
        bail!("could not install cargo-fuzz");
    }
    signals.bail_if_caught()?;
    if !works(&mut cargo()) {
        bail!("cargo-fuzz was installed but `cargo fuzz --version` still fails: is cargo's bin directory on PATH?");
    }
    Ok(())
}

/// A `cargo fuzz` command: nightly rustc flags allowed on a stable toolchain for this command
/// only.
fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Fuzzes one target for `seconds`; returns whether it found nothing.
fn run_target(signals: &SignalWatch, fuzz_dir: &Path, target: &str, seconds: u64) -> Result<bool> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeded = seed_corpus(&fuzz_dir.join("seeds").join(target), &corpus)?;
    let artifacts_dir = fuzz_dir.join("artifacts").join(target);
    let before = files(&artifacts_dir)?;
    let logs = fuzz_dir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let log_path = logs.join(format!("{target}.log"));
    let log = File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let log_err = log.try_clone().context("cannot duplicate the log file handle")?;

    step(&format!("cargo fuzz run {target} for {seconds} s ({seeded} seed inputs; log: {})", shown(&log_path)));
    let mut cmd = cargo_fuzz();
    cmd.arg("run")
        .arg(target)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let started = Instant::now();
    let ok = signals.run(&mut cmd)?;
    let elapsed = started.elapsed();
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    signals.bail_if_caught()?;

    let new: Vec<PathBuf> = files(&artifacts_dir)?.difference(&before).cloned().collect();
    if ok && new.iter().all(|p| is_benign(p)) {
        eprintln!("xtask: {target}: {}", summary(&output, elapsed));
        return Ok(true);
    }

    eprintln!("xtask: {target}: FAILED after {}; libFuzzer's report:\n", human(elapsed));
    eprintln!("{}", report(&output));
    if new.is_empty() {
        eprintln!("xtask: {target}: no artifact was written; full log: {}", log_path.display());
    }
    for artifact in &new {
        eprintln!("xtask: {target}: artifact: {}", artifact.display());
        print_artifact(artifact);
        eprintln!("xtask: {target}: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {}", shown(artifact));
    }
    Ok(false)
}

/// Copies the committed seed inputs into the corpus directory; returns how many there are.
fn seed_corpus(seeds: &Path, corpus: &Path) -> Result<usize> {
    fs::create_dir_all(corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    let mut count = 0;
    for seed in files(seeds)? {
        let name = seed.file_name().with_context(|| format!("{} has no file name", seed.display()))?;
        fs::copy(&seed, corpus.join(name))
            .with_context(|| format!("cannot copy {} into {}", seed.display(), corpus.display()))?;
        count += 1;
    }
    if count == 0 {
        bail!("no seed inputs in {}", seeds.display());
    }
    Ok(count)
}

/// The regular files in `dir` (none if it does not exist).
fn files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut found = BTreeSet::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            found.insert(entry.path());
        }
    }
    Ok(found)
}

/// libFuzzer writes `slow-unit-*` files for slow inputs without failing the run.
fn is_benign(artifact: &Path) -> bool {
    artifact.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("slow-unit-"))
}

/// One line from libFuzzer's final statistics: runs, speed, coverage, corpus, memory.
fn summary(output: &str, elapsed: Duration) -> String {
    let stat = |name: &str| {
        output.lines().find_map(|line| line.strip_prefix(&format!("stat::{name}:")).map(|v| v.trim().to_owned()))
    };
    let done = output.lines().rev().find(|line| line.split_whitespace().nth(1) == Some("DONE")).unwrap_or_default();
    let field = |name: &str| {
        let mut words = done.split_whitespace();
        words.find(|w| *w == name).and_then(|_| words.next()).map(str::to_owned)
    };
    let or_unknown = |value: Option<String>| value.unwrap_or_else(|| "?".to_owned());
    format!(
        "{} runs in {} ({} exec/s), coverage {} edges / {} features, corpus {} ({} new), peak RSS {} MB",
        or_unknown(stat("number_of_executed_units")),
        human(elapsed),
        or_unknown(stat("average_exec_per_sec")),
        or_unknown(field("cov:")),
        or_unknown(field("ft:")),
        or_unknown(field("corp:")),
        or_unknown(stat("new_units_added")),
        or_unknown(stat("peak_rss_mb")),
    )
}

/// The part of a failed run's output that explains it: from the first error or panic line to
/// the end (the stack, the input's bytes, cargo-fuzz's reproduction hint), at most 150 lines.
fn report(output: &str) -> String {
    const MAX_LINES: usize = 150;
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains("panicked at") || line.contains("==ERROR:") || line.contains("ERROR: libFuzzer"))
        .unwrap_or(lines.len().saturating_sub(60));
    let end = lines.len().min(start + MAX_LINES);
    let mut text = lines[start..end].join("\n");
    if end < lines.len() {
        text.push_str(&format!("\n[… {} more lines in the log]", lines.len() - end));
    }
    text
}

/// Prints a small artifact's bytes as an escaped byte string, so the CI log can reproduce it.
fn print_artifact(artifact: &Path) {
    let size = fs::metadata(artifact).map(|m| m.len()).unwrap_or(u64::MAX);
    if size > MAX_PRINTED_ARTIFACT {
        return;
    }
    if let Ok(bytes) = fs::read(artifact) {
        eprintln!("xtask: input ({} bytes): b\"{}\"", bytes.len(), bytes.escape_ascii());
    }
}

/// `path` relative to the workspace root when it is inside it.
fn shown(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

fn human(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_libfuzzer_stats() {
        let output = "#8\tINITED cov: 1240 ft: 2272 corp: 7/1745b exec/s: 0 rss: 40Mb\n\
                      #62022\tDONE   cov: 2526 ft: 7839 corp: 977/211Kb lim: 644 exec/s: 5638 rss: 483Mb\n\
                      Done 62022 runs in 11 second(s)\n\
                      stat::number_of_executed_units: 62022\n\
                      stat::average_exec_per_sec:     5638\n\
                      stat::new_units_added:          970\n\
                      stat::peak_rss_mb:              483\n";
        assert_eq!(
            summary(output, Duration::from_secs(11)),
            "62022 runs in 11.0s (5638 exec/s), coverage 2526 edges / 7839 features, corpus 977/211Kb (970 new), \
             peak RSS 483 MB"
        );
        assert!(summary("", Duration::from_secs(90)).starts_with("? runs in 1m30s"));
    }

    #[test]
    fn report_starts_at_the_panic() {
        let output = "noise\nmore noise\nthread '<unnamed>' panicked at src/x.rs:1:2:\nboom\n==1== ERROR: libFuzzer: deadly signal\n";
        assert!(report(output).starts_with("thread '<unnamed>' panicked at"));
        assert_eq!(report("a\nb"), "a\nb");
    }

    #[test]
    fn slow_units_are_not_failures() {
        assert!(is_benign(Path::new("fuzz/artifacts/mapping/slow-unit-abc")));
        assert!(!is_benign(Path::new("fuzz/artifacts/mapping/crash-abc")));
    }
}
