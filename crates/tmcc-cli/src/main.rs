//! `tmcc`: train, evaluate, sweep, plot and intervene on toy models of compressed
//! computation. One file per subcommand; errors (a bad flag included) print as one line
//! (`error: …`, each cause once) and exit 2;
//! Ctrl-C during training saves a resumable checkpoint and exits 130.

/// `println!` that ends the process quietly when stdout is a closed pipe (`tmcc … | head`).
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::common::out_line(&format!($($t)*))
    };
}

mod common;
mod config_args;
mod device_arg;
mod eval;
mod merge;
mod one_hot;
mod plot;
mod presets;
mod reproduce;
mod response;
mod snr;
mod sweep;
mod train;
mod transplant;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tmcc",
    version,
    about = "A laboratory for toy models of compressed computation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train K instances of a model; writes config.toml, checkpoint.safetensors, metrics.json.
    Train(train::Args),
    /// Re-evaluate a saved checkpoint (or run directory) on the evaluation stream.
    Eval(eval::Args),
    /// Train a grid of configs (instances side by side where shapes allow); one tidy table.
    Sweep(sweep::Args),
    /// Join the outputs of the shards of one sweep into one table.
    Merge(merge::Args),
    /// Standard figures of a run directory or a sweep directory.
    Plot(plot::Args),
    /// List the named presets (papers' configs), or print one: `tmcc presets NAME`.
    Presets(presets::Args),
    /// Fold the embedding of an emb_* model into its weights (→ res_mlp / mlp) and compare.
    Transplant(transplant::Args),
    /// Classify every feature's input–output response as computed, zero or partial.
    Response(response::Args),
    /// APD's one-hot output out_i at x = e_i, split into the residual path and each block.
    OneHot(one_hot::Args),
    /// APD's signal-to-noise ratio of single features and of pairs at (1, 1) and (1, −1).
    Snr(snr::Args),
    /// Reproduce every claim of the seed and the follow-up paper: REPORT.md, claims.json, figures.
    Reproduce(reproduce::Args),
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        eprintln!("error: internal error (a bug in tmcc, please report it): {msg}");
    }));
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
            || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        {
            e.exit();
        }
        // clap's message, its first line only (the usage follows in `--help`)
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("bad arguments").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        eprintln!("error: {first} (see --help)");
        std::process::exit(2);
    });
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Presets(a) => presets::run(a),
        Command::Transplant(a) => transplant::run(a),
        Command::Response(a) => response::run(a),
        Command::OneHot(a) => one_hot::run(a),
        Command::Snr(a) => snr::run(a),
        Command::Reproduce(a) => reproduce::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::exit(2);
        }
    }
}

/// An error and its causes on one line, `what: cause: cause`, each said once: a cause
/// whose text the line already holds (a wrapper that prints its source, such as
/// `PATH: SOURCE`) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}
