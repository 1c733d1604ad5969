//! `--device auto|cpu|cuda`, shared by the commands that train or evaluate.

use tmcc_lab::runner::{Device, DeviceChoice};

#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArg {
    /// Where to train and evaluate: `auto` (CUDA if a device can be used, else the CPU,
    /// with one line saying why), `cpu`, or `cuda` (an error without a usable device).
    #[arg(
        long,
        env = "TMCC_DEVICE",
        default_value = "auto",
        value_name = "auto|cpu|cuda"
    )]
    pub device: DeviceChoice,
}

impl DeviceArg {
    /// The resolved device; logs the fall-back line of `auto` on stderr.
    pub fn select(&self) -> anyhow::Result<Device> {
        let (device, note) = Device::select(self.device).map_err(anyhow::Error::msg)?;
        if let Some(note) = note {
            eprintln!("note: {note}");
        }
        Ok(device)
    }
}
