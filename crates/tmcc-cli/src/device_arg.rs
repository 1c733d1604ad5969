//! `--device auto|cpu|cuda` and `-v`, shared by the commands that train or evaluate.
//!
//! When `auto` falls back to the CPU, the reason (`no CUDA device (…); using the CPU`) is
//! shown only if the user asked for `auto` (the flag or `TMCC_DEVICE`) or passed `-v`;
//! without either `auto` is the silent default. A run keeps the reason in `metrics.json`
//! either way.

use tmcc_lab::runner::{Device, DeviceChoice};

#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArg {
    /// Where to train and evaluate: `auto` (the default: CUDA if a device can be used,
    /// else the CPU), `cpu`, or `cuda` (an error without a usable device).
    #[arg(long, env = "TMCC_DEVICE", value_name = "auto|cpu|cuda")]
    pub device: Option<DeviceChoice>,
    /// Say more on stderr (e.g. why `auto` chose the CPU).
    #[arg(long, short)]
    pub verbose: bool,
}

impl DeviceArg {
    /// The resolved device, and the reason `auto` fell back to the CPU (shown on stderr
    /// when asked for: module documentation).
    pub fn select_noted(&self) -> anyhow::Result<(Device, Option<String>)> {
        let choice = self.device.unwrap_or_default();
        let (device, note) = Device::select(choice).map_err(anyhow::Error::msg)?;
        if let Some(note) = &note {
            if self.device.is_some() || self.verbose {
                eprintln!("note: {note}");
            }
        }
        Ok((device, note))
    }

    /// The resolved device ([`Self::select_noted`] without the note).
    pub fn select(&self) -> anyhow::Result<Device> {
        Ok(self.select_noted()?.0)
    }
}
