//! Plain-text tables for the terminal: a header, rows, columns padded to their widest cell
//! (numbers right-aligned), and the JSON report file.

use std::path::Path;

use anyhow::Context;

/// A table being filled row by row.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Every cell left-aligned, for tables whose cells are sentences with figures in them.
    text_only: bool,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            text_only: false,
        }
    }

    /// No right alignment of numbers.
    pub fn text_only(mut self) -> Self {
        self.text_only = true;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// The table as text, one line per row, with a rule under the header.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in self.rows.iter().chain([&self.header]) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |row: &[String]| -> String {
            let cells: Vec<String> = (0..columns)
                .map(|i| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    if !self.text_only && looks_numeric(cell) {
                        format!("{cell:>width$}", width = widths[i])
                    } else {
                        format!("{cell:<width$}", width = widths[i])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

fn looks_numeric(cell: &str) -> bool {
    let trimmed = cell.trim_end_matches(|c: char| c.is_alphabetic() || c == '%' || c == '/');
    !trimmed.is_empty()
        && trimmed
            .trim()
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | ' ' | 'x'))
        && trimmed.chars().any(|c| c.is_ascii_digit())
}

/// A number with `digits` decimals, or "-" when it is not finite.
pub fn num(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{value:.digits$}")
    } else {
        "-".to_string()
    }
}

/// Writes `report` as pretty JSON to `path`, when a path was given.
pub fn write_json(path: Option<&Path>, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_numbers_right_aligned() {
        let mut table = Table::new(&["what", "p50 ms"]);
        table.row(vec!["health".into(), "0.12".into()]);
        table.row(vec!["agent list".into(), "12.50".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "what        p50 ms");
        assert_eq!(lines[1], "----------  ------");
        assert_eq!(lines[2], "health        0.12");
        assert_eq!(lines[3], "agent list   12.50");
    }

    #[test]
    fn short_rows_and_units() {
        let mut table = Table::new(&["a"]);
        table.row(vec!["x".into(), "10 KiB".into()]);
        let text = table.render();
        assert_eq!(text.lines().nth(2), Some("x  10 KiB"));
        assert!(looks_numeric("1,234"));
        assert!(looks_numeric("3.5x"));
        assert!(!looks_numeric("-"));
        assert!(!looks_numeric("full motion"));
        assert_eq!(num(f64::NAN, 1), "-");
        assert_eq!(num(1.26, 1), "1.3");
        let mut text = Table::new(&["what", "value"]).text_only();
        text.row(vec!["connect all".into(), "4.6 s".into()]);
        text.row(vec!["round trip".into(), "p50 2.2 / p99 9.4 ms".into()]);
        assert_eq!(text.render().lines().nth(2), Some("connect all  4.6 s"));
    }
}
