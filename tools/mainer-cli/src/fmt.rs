//! Human-readable output: tables, times, sizes, cycles.

use std::io::Write;

/// A plain-text table with left-aligned columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn write(&self, out: &mut dyn Write) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(cell);
                    s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&self.header));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
    }
}

/// `2025-01-01 00:00:12 UTC` from nanoseconds since the epoch.
pub fn time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `1.55 MB` (decimal units, like dfx).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.2} {}", UNITS[unit]) }
}

/// `2.000 T` cycles.
pub fn cycles(n: u128) -> String {
    if n >= 1_000_000_000_000 {
        format!("{:.3} T", n as f64 / 1e12)
    } else if n >= 1_000_000_000 {
        format!("{:.3} B", n as f64 / 1e9)
    } else {
        n.to_string()
    }
}

/// Parses cycles: `2000000000000`, `2_000_000_000_000`, `2T`, `1.5T`, `500B`, `20M`.
pub fn parse_cycles(s: &str) -> Result<u128, String> {
    let t = s.trim().replace('_', "");
    let (num, factor) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('T') => (&t[..t.len() - 1], 1e12),
        Some('B') => (&t[..t.len() - 1], 1e9),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('K') => (&t[..t.len() - 1], 1e3),
        _ => (t.as_str(), 1.0),
    };
    if factor == 1.0 {
        return num.parse::<u128>().map_err(|_| format!("not a number of cycles: {s}"));
    }
    let v: f64 = num.parse().map_err(|_| format!("not a number of cycles: {s}"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("not a number of cycles: {s}"));
    }
    Ok((v * factor).round() as u128)
}

/// The first `max` characters of `s` on one line, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".to_string(), |x| x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sizes_cycles() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_735_689_612_000_000_000), "2025-01-01 00:00:12 UTC");
        assert_eq!(time(1_709_251_199_000_000_000), "2024-02-29 23:59:59 UTC");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_548_690), "1.55 MB");
        assert_eq!(cycles(2_000_000_000_000), "2.000 T");
        assert_eq!(parse_cycles("2T"), Ok(2_000_000_000_000));
        assert_eq!(parse_cycles("1.5t"), Ok(1_500_000_000_000));
        assert_eq!(parse_cycles("500_000"), Ok(500_000));
        assert!(parse_cycles("lots").is_err());
        assert_eq!(clip("a\nbcdef", 4), "a b…");
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["id", "name"]);
        t.row(vec!["1".into(), "x".into()]);
        t.row(vec!["22".into(), "yy".into()]);
        let mut out = Vec::new();
        t.write(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "id  name\n1   x\n22  yy\n");
    }
}
