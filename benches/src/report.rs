//! The benchmark report: figures measured over repeats, summarised as min / median / max, laid
//! out as Markdown tables with the machine and commit they were measured on, so two runs can be
//! compared line by line.

use std::fmt::Write as _;
use std::time::Duration;

/// Several measurements of one figure, one per repeat.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// Adds one measurement.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.0.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The smallest measurement (NaN when there is none).
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The median measurement (the lower middle one of an even count; NaN when there is none).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        v[(v.len() - 1) / 2]
    }

    /// The largest measurement (NaN when there is none).
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// The `p`-th quantile (0..=1) of durations, in milliseconds; NaN for none.
pub fn quantile_ms(values: &[Duration], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
    v[i].as_secs_f64() * 1000.0
}

/// Formats a figure with a precision that suits its size.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        group_thousands(x.round() as i64)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `min / median / max` of samples, or the single value when there is one.
pub fn spread(s: &Samples) -> String {
    if s.0.len() <= 1 {
        return num(s.median());
    }
    format!("{} / {} / {}", num(s.min()), num(s.median()), num(s.max()))
}

/// Whether a figure meets its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At least this much is wanted.
    AtLeast(f64),
    /// At most this much is allowed.
    AtMost(f64),
}

impl Target {
    /// The verdict for a measured value, with by how much it misses.
    pub fn verdict(self, value: f64) -> String {
        match self {
            Target::AtLeast(t) if value >= t => format!("≥ {} ✓", num(t)),
            Target::AtMost(t) if value <= t => format!("≤ {} ✓", num(t)),
            Target::AtLeast(t) => {
                format!("≥ {} ✗ ({:.0}% short)", num(t), (1.0 - value / t) * 100.0)
            }
            Target::AtMost(t) => format!("≤ {} ✗ ({:.0}% over)", num(t), (value / t - 1.0) * 100.0),
        }
    }
}

/// One Markdown table of a report.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headings.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a row for a figure measured over repeats: name, unit, min / median / max, target.
    pub fn figure(&mut self, name: &str, unit: &str, s: &Samples, target: Option<Target>) {
        self.row(vec![
            name.to_owned(),
            unit.to_owned(),
            spread(s),
            target.map_or_else(String::new, |t| t.verdict(s.median())),
        ]);
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let escape = |c: &String| c.replace('|', "\\|");
        let mut out = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(self.header.iter().map(escape).collect()));
        out.push_str(&line(
            self.header.iter().map(|_| "---".to_owned()).collect(),
        ));
        for row in &self.rows {
            out.push_str(&line(row.iter().map(escape).collect()));
        }
        out
    }
}

/// The headings of a figures table.
pub const FIGURE_HEADER: &[&str] = &["figure", "unit", "min / median / max", "target"];

/// One part of a report: a heading, what was measured, and its tables.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Sizes and settings, in a sentence or two.
    pub setup: String,
    /// The tables, in order.
    pub tables: Vec<Table>,
    /// Remarks printed after the tables.
    pub notes: Vec<String>,
}

impl Section {
    /// The section as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        if !self.setup.is_empty() {
            let _ = writeln!(out, "{}\n", self.setup);
        }
        for table in &self.tables {
            let _ = writeln!(out, "{}", table.markdown());
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        out
    }
}

/// Where and when a report was measured.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The commit measured, short hash, `+dirty` when the tree had changes.
    pub commit: String,
    /// CPU model, cores and memory.
    pub machine: String,
    /// The command that reproduces the report.
    pub command: String,
}

impl Provenance {
    /// Reads the machine, the date and the commit of the working tree.
    pub fn detect(command: String) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kb| kb / (1 << 20) as f64);
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let mut commit =
            git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
        if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
            commit.push_str("+dirty");
        }
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
            commit,
            machine: format!("{cpu}, {cores} cores, {mem_gib:.0} GiB"),
            command,
        }
    }
}

/// A whole report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Where and when.
    pub provenance: Provenance,
    /// The parts, in order.
    pub sections: Vec<Section>,
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let p = &self.provenance;
        let mut out = format!(
            "# Strata benchmarks, {} at {}\n\n\
             - machine: {}\n- command: `{}`\n- figures are min / median / max over repeats; \
             a target is judged on the median\n\n",
            p.date, p.commit, p.machine, p.command
        );
        for section in &self.sections {
            out.push_str(&section.markdown());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_summarise_over_repeats() {
        let s = Samples(vec![3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.min(), s.median(), s.max()), (1.0, 2.0, 3.0));
        assert_eq!(Samples(vec![4.0, 1.0]).median(), 1.0);
        assert!(Samples::default().median().is_nan());
        assert_eq!(spread(&s), "1.00 / 2.00 / 3.00");
    }

    #[test]
    fn numbers_and_verdicts_read_well() {
        assert_eq!(num(152_017.4), "152,017");
        assert_eq!(num(-1234.0), "-1,234");
        assert_eq!(num(38.71), "38.7");
        assert_eq!(num(0.047), "0.047");
        assert_eq!(
            Target::AtLeast(150_000.0).verdict(120_000.0),
            "≥ 150,000 ✗ (20% short)"
        );
        assert_eq!(Target::AtMost(40.0).verdict(38.7), "≤ 40.0 ✓");
        assert_eq!(Target::AtMost(20.0).verdict(30.0), "≤ 20.0 ✗ (50% over)");
    }

    #[test]
    fn tables_escape_pipes() {
        let mut t = Table::new(&["query", "ms"]);
        t.row(vec!["{ a } || { b }".into(), "1".into()]);
        assert_eq!(
            t.markdown(),
            "| query | ms |\n| --- | --- |\n| { a } \\|\\| { b } | 1 |\n"
        );
    }
}
