//! Where and when a benchmark ran: UTC date, architecture, CPU model, core count.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DD HH:MM UTC` for a point in time (the epoch for times before it).
pub(crate) fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_from_days(secs / 86_400);
    let minute_of_day = secs % 86_400 / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Year, month (1-12) and day (1-31) of the `days`-th day after 1970-01-01.
///
/// Counts in 400-year eras of 146,097 days that start on March 1st, so that the
/// leap day is the last day of a "year" and month lengths follow a fixed pattern.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    // 1970-01-01 is day 719,468 counted from 0000-03-01.
    let since_0000_03_01 = days + 719_468;
    let era = since_0000_03_01 / DAYS_PER_ERA;
    let day_of_era = since_0000_03_01 % DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// The CPU model named in the text of `/proc/cpuinfo`, if any.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    // x86 says "model name"; some ARM kernels only say "Hardware" or "Model".
    ["model name", "Model", "Hardware", "cpu model"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == *key && !value.trim().is_empty()).then(|| value.trim().to_string())
            })
        })
}

/// `x86_64, Intel(R) Xeon(R) Processor @ 2.50GHz, 2 cores` for this machine.
pub(crate) fn describe() -> String {
    let arch = Command::new("uname")
        .arg("-m")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|arch| arch.trim().to_string())
        .filter(|arch| !arch.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model(&text))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{arch}, {cpu}, {cores} cores")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34:56, a leap day in a year divisible by 400.
        assert_eq!(at(951_827_696), "2000-02-29 12:34 UTC");
        // 2024-12-31 23:59:59, the last second of a leap year.
        assert_eq!(at(1_735_689_599), "2024-12-31 23:59 UTC");
        assert_eq!(at(1_735_689_600), "2025-01-01 00:00 UTC");
        // 2100-03-01, after a century year that is not a leap year.
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00 UTC");
    }

    #[test]
    fn consecutive_days_advance_the_date_by_one() {
        let mut previous = civil_from_days(0);
        for days in 1..200_000 {
            let current = civil_from_days(days);
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                current == next_day || current == next_month || current == next_year,
                "{previous:?} -> {current:?}"
            );
            previous = current;
        }
    }

    #[test]
    fn reads_the_model_name_from_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.50GHz\n";
        assert_eq!(
            cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) Processor @ 2.50GHz")
        );
        let arm =
            "processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            cpu_model(arm).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }
}
