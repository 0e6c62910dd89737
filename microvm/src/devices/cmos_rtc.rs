//! The PC's CMOS real-time clock (an MC146818 at ports 0x70/0x71), reduced to what a
//! Linux guest reads at boot: the date and time (UTC, from the host's clock), status
//! registers that say "no update in progress, time valid", and the battery-backed RAM.
//!
//! Without it every read answers 0xFF, "update in progress" never clears, and the
//! kernel's `rtc_cmos` driver and its wall-clock read poll the chip until they give up:
//! 7 of the 27 seconds of a nested-virtualization boot went there. No interrupts, no
//! alarms, no periodic ticks: the guest keeps time with kvm-clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::bus::{BusDevice, DeviceEvent};

/// The number of ports: index (0x70) and data (0x71).
pub const PORT_COUNT: u64 = 2;

const SECONDS: usize = 0x00;
const MINUTES: usize = 0x02;
const HOURS: usize = 0x04;
const DAY_OF_WEEK: usize = 0x06;
const DAY_OF_MONTH: usize = 0x07;
const MONTH: usize = 0x08;
const YEAR: usize = 0x09;
const STATUS_A: usize = 0x0a;
const STATUS_B: usize = 0x0b;
const STATUS_C: usize = 0x0c;
const STATUS_D: usize = 0x0d;
const CENTURY: usize = 0x32;
/// The registers that read the clock (and ignore writes: it follows the host).
const CLOCK_REGISTERS: [usize; 8] = [
    SECONDS,
    MINUTES,
    HOURS,
    DAY_OF_WEEK,
    DAY_OF_MONTH,
    MONTH,
    YEAR,
    CENTURY,
];
/// Register A at power-on: 32.768 kHz time base, 1024 Hz rate, update-in-progress clear.
const STATUS_A_DEFAULT: u8 = 0x26;
/// Register B at power-on: 24-hour mode, BCD values, no interrupts.
const STATUS_B_DEFAULT: u8 = 0x02;
/// Register B: values in binary rather than BCD.
const STATUS_B_BINARY: u8 = 0x04;
/// Register B: 24-hour mode.
const STATUS_B_24_HOUR: u8 = 0x02;
/// Register D: the battery is good and the time valid.
const STATUS_D_VALID: u8 = 0x80;
/// Bit 7 of the index port masks NMIs; it is not part of the register number.
const INDEX_MASK: u8 = 0x7f;

/// A civil date and time in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The year, e.g. 2026.
    pub year: u32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
    /// 0 (Sunday) to 6.
    pub weekday: u32,
}

impl DateTime {
    /// The UTC date and time `secs` seconds after the Unix epoch (days to civil date
    /// as in Howard Hinnant's `civil_from_days`).
    pub fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // 1970-01-01 was a Thursday.
        let weekday = ((days + 4) % 7) as u32;
        // Shift the epoch to 0000-03-01 so leap days end each 400-year era.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        } as u32;
        let year = (year_of_era + era * 400 + i64::from(month <= 2)) as u32;
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            weekday,
        }
    }
}

/// The clock chip.
#[derive(Debug)]
pub struct CmosRtc {
    index: usize,
    ram: [u8; 128],
    now: fn() -> DateTime,
}

impl Default for CmosRtc {
    fn default() -> Self {
        Self::with_clock(host_utc)
    }
}

impl CmosRtc {
    /// A chip that reads the host's clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chip that reads `now` (tests give a fixed time).
    pub fn with_clock(now: fn() -> DateTime) -> Self {
        let mut ram = [0; 128];
        ram[STATUS_A] = STATUS_A_DEFAULT;
        ram[STATUS_B] = STATUS_B_DEFAULT;
        ram[STATUS_D] = STATUS_D_VALID;
        Self { index: 0, ram, now }
    }

    /// Register `index`, with the clock registers read now in the guest's chosen format.
    fn register(&self, index: usize) -> u8 {
        let status_b = self.ram[STATUS_B];
        let encode = |value: u32| -> u8 {
            let value = value as u8;
            if status_b & STATUS_B_BINARY != 0 {
                value
            } else {
                ((value / 10) << 4) | (value % 10)
            }
        };
        if !CLOCK_REGISTERS.contains(&index) {
            return self.ram[index];
        }
        let now = (self.now)();
        match index {
            SECONDS => encode(now.second),
            MINUTES => encode(now.minute),
            HOURS if status_b & STATUS_B_24_HOUR != 0 => encode(now.hour),
            HOURS => {
                // 12-hour mode: 12, 1, ..., 11 with bit 7 set after noon.
                let pm = if now.hour >= 12 { 0x80 } else { 0 };
                encode((now.hour + 11) % 12 + 1) | pm
            }
            DAY_OF_WEEK => encode(now.weekday + 1),
            DAY_OF_MONTH => encode(now.day),
            MONTH => encode(now.month),
            YEAR => encode(now.year % 100),
            _ => encode(now.year / 100),
        }
    }
}

/// The host's clock as a UTC date (the epoch if the host clock is before it).
fn host_utc() -> DateTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DateTime::from_unix(secs)
}

impl BusDevice for CmosRtc {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            0 => self.index as u8,
            _ => self.register(self.index),
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> DeviceEvent {
        let Some(&value) = data.first() else {
            return DeviceEvent::None;
        };
        match (offset, self.index) {
            (0, _) => self.index = usize::from(value & INDEX_MASK),
            // The clock follows the host: setting it, or the read-only status bits
            // (A's update-in-progress, C's flags, D's validity), changes nothing.
            (_, index) if CLOCK_REGISTERS.contains(&index) => {}
            (_, STATUS_C | STATUS_D) => {}
            (_, STATUS_A) => self.ram[STATUS_A] = value & INDEX_MASK,
            (_, index) => self.ram[index] = value,
        }
        DeviceEvent::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 15:04:05 UTC, a Tuesday.
    fn fixed() -> DateTime {
        DateTime::from_unix(1_795_532_645)
    }

    fn read(rtc: &mut CmosRtc, index: u8) -> u8 {
        rtc.write(0, &[index | 0x80]);
        let mut value = [0];
        rtc.read(1, &mut value);
        value[0]
    }

    #[test]
    fn unix_time_converts_to_civil_dates() {
        let epoch = DateTime::from_unix(0);
        assert_eq!(
            (epoch.year, epoch.month, epoch.day, epoch.weekday),
            (1970, 1, 1, 4)
        );
        let leap_day = DateTime::from_unix(951_782_400); // 2000-02-29 00:00:00
        assert_eq!((leap_day.year, leap_day.month, leap_day.day), (2000, 2, 29));
        let new_year = DateTime::from_unix(1_798_761_599); // 2026-12-31 23:59:59
        assert_eq!(
            (
                new_year.year,
                new_year.month,
                new_year.day,
                new_year.hour,
                new_year.minute,
                new_year.second
            ),
            (2026, 12, 31, 23, 59, 59)
        );
        let t = fixed();
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday),
            (2026, 11, 24, 15, 4, 5, 2)
        );
    }

    #[test]
    fn clock_reads_bcd_by_default_and_binary_when_asked() {
        let mut rtc = CmosRtc::with_clock(fixed);
        let bcd: Vec<u8> = CLOCK_REGISTERS
            .iter()
            .map(|&r| read(&mut rtc, r as u8))
            .collect();
        assert_eq!(bcd, [0x05, 0x04, 0x15, 0x03, 0x24, 0x11, 0x26, 0x20]);
        rtc.write(0, &[STATUS_B as u8]);
        rtc.write(1, &[STATUS_B_BINARY | STATUS_B_24_HOUR]);
        assert_eq!(read(&mut rtc, HOURS as u8), 15);
        assert_eq!(read(&mut rtc, YEAR as u8), 26);
        // 12-hour mode: 3 pm.
        rtc.write(0, &[STATUS_B as u8]);
        rtc.write(1, &[STATUS_B_BINARY]);
        assert_eq!(read(&mut rtc, HOURS as u8), 0x80 | 3);
    }

    #[test]
    fn status_says_valid_and_never_updating() {
        let mut rtc = CmosRtc::with_clock(fixed);
        assert_eq!(
            read(&mut rtc, STATUS_A as u8) & 0x80,
            0,
            "update in progress"
        );
        assert_eq!(read(&mut rtc, STATUS_D as u8), STATUS_D_VALID);
        rtc.write(0, &[STATUS_A as u8]);
        rtc.write(1, &[0xa6]);
        assert_eq!(read(&mut rtc, STATUS_A as u8), 0x26, "UIP is read-only");
        rtc.write(0, &[STATUS_D as u8]);
        rtc.write(1, &[0]);
        assert_eq!(read(&mut rtc, STATUS_D as u8), STATUS_D_VALID);
    }

    #[test]
    fn ram_keeps_what_the_guest_wrote_and_the_clock_ignores_writes() {
        let mut rtc = CmosRtc::with_clock(fixed);
        rtc.write(0, &[0x40]);
        rtc.write(1, &[0x5a]);
        assert_eq!(read(&mut rtc, 0x40), 0x5a);
        rtc.write(0, &[SECONDS as u8]);
        rtc.write(1, &[0x59]);
        assert_eq!(read(&mut rtc, SECONDS as u8), 0x05);
        let mut index = [0];
        rtc.read(0, &mut index);
        assert_eq!(
            index,
            [SECONDS as u8],
            "index reads back without the NMI bit"
        );
    }
}
