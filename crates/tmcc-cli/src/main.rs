//! `tmcc`: train, evaluate and intervene on toy models of compressed computation.
//! One file per subcommand; errors print as one line and exit non-zero.

mod config_args;
mod eval;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tmcc", version, about = "A laboratory for toy models of compressed computation")]
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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
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
