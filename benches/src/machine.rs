//! The machine a measurement ran on, for the report's header: the CPU model (first
//! `model name` of `/proc/cpuinfo`), the CPUs online and rayon's thread count, the
//! 1-minute load average (`/proc/loadavg`: how busy other processes kept the machine) and
//! the time of the run in UTC (from the system clock, civil-from-days, proleptic
//! Gregorian, so no date crate is needed).

use std::time::{SystemTime, UNIX_EPOCH};

/// What the report says about the machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The CPU model, or `unknown CPU`.
    pub cpu: String,
    /// CPUs online (`available_parallelism`; 0 if unknown).
    pub nproc: usize,
    /// Threads of rayon's global pool (what the CPU backend uses).
    pub rayon_threads: usize,
}

impl Machine {
    pub fn now() -> Machine {
        Machine {
            cpu: cpu_model(),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            rayon_threads: rayon::current_num_threads(),
        }
    }

    /// The CPU backend as a device name: `cpu (N rayon threads)`.
    pub fn cpu_backend(&self) -> String {
        format!("cpu ({} rayon threads)", self.rayon_threads)
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-minute load average (other processes on the machine), or `?`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `YYYY-MM-DD HH:MM UTC` of now.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    utc(secs)
}

/// `YYYY-MM-DD HH:MM UTC` of `secs` seconds after the Unix epoch.
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 UTC (a leap day of a century leap year).
        assert_eq!(super::utc(951_827_640), "2000-02-29 12:34 UTC");
        assert_eq!(super::utc(-1), "1969-12-31 23:59 UTC");
    }
}
