//! `tmcc`: train, evaluate, sweep, plot and intervene on toy models of compressed
//! computation. One file per subcommand; errors print as one line (`error: …`) and exit 2;
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
mod plot;
mod presets;
mod reproduce;
mod response;
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
    /// Reproduce every claim of the seed and the follow-up paper: REPORT.md, claims.json, figures.
    Reproduce(reproduce::Args),
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        eprintln!("error: internal error (a bug in tmcc, please report it): {msg}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Presets(a) => presets::run(a),
        Command::Transplant(a) => transplant::run(a),
        Command::Response(a) => response::run(a),
        Command::Reproduce(a) => reproduce::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            std::process::exit(2);
        }
    }
}
