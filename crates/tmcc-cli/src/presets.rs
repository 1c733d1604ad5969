//! `tmcc presets`: the named configs (`tmcc_model::presets`), one line each; with a name,
//! the preset's documented TOML file.

#[derive(clap::Args)]
pub struct Args {
    /// Print this preset's TOML file (with its comments) instead of the list.
    pub name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.name {
        Some(name) => {
            tmcc_model::presets::load(&name)?;
            let preset = tmcc_model::presets::all()
                .iter()
                .find(|p| p.name == name)
                .expect("load found it");
            outln!("{}", preset.toml.trim_end());
        }
        None => {
            let width = tmcc_model::presets::all()
                .iter()
                .map(|p| p.name.len())
                .max()
                .unwrap_or(0);
            for p in tmcc_model::presets::all() {
                outln!("{:width$}  {}", p.name, p.summary);
            }
        }
    }
    Ok(0)
}
