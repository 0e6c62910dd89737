//! The `RESULT {json}` line: the one machine-readable format every subcommand prints, so
//! figures survive being mixed with kernel console output and are parsed the same way
//! whichever isolation model ran the workload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The prefix of every machine-readable line the workload prints.
pub const RESULT_PREFIX: &str = "RESULT ";

/// The line printed when the workload is ready to be measured.
pub const READY_LINE: &str = "READY";

/// One measured figure with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// The figure itself.
    pub value: f64,
    /// Its unit, e.g. `ops/s`, `GB/s`, `ns/call`, `ns/page`, `MB/s`, `us`.
    pub unit: String,
}

/// One `RESULT` line: what a subcommand measured or observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The test that produced it: `cpu`, `mem`, `syscall`, `fileio`, `net`, `info`, ...
    pub test: String,
    /// Numeric figures by name (`ops_per_s`, `copy_gb_per_s`, ...).
    #[serde(default)]
    pub values: BTreeMap<String, Measure>,
    /// A checksum of the computation where there is one; identical in every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Textual observations (`kernel_release`, `hostname`, `cgroup`, ...), used by `info`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
}

impl ResultLine {
    /// An empty result for `test`.
    pub fn new(test: &str) -> Self {
        Self {
            test: test.to_owned(),
            values: BTreeMap::new(),
            checksum: None,
            facts: BTreeMap::new(),
        }
    }

    /// Adds a figure; returns `self` so results read as one expression.
    pub fn value(mut self, name: &str, value: f64, unit: &str) -> Self {
        self.values.insert(
            name.to_owned(),
            Measure {
                value,
                unit: unit.to_owned(),
            },
        );
        self
    }

    /// Adds a textual observation.
    pub fn fact(mut self, name: &str, value: impl Into<String>) -> Self {
        self.facts.insert(name.to_owned(), value.into());
        self
    }

    /// The full line, `RESULT {json}`, without a trailing newline.
    pub fn to_line(&self) -> String {
        // Serializing plain maps of strings and finite floats cannot fail; a NaN would
        // become `null`, which the parser below rejects loudly rather than guessing.
        let json = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        format!("{RESULT_PREFIX}{json}")
    }

    /// Parses one line of output. Text before `RESULT ` (a console prefix, a carriage
    /// return) is ignored; lines without the marker give `None`.
    pub fn parse_line(line: &str) -> Option<Result<Self, serde_json::Error>> {
        let start = line.find(RESULT_PREFIX)?;
        let json = line[start + RESULT_PREFIX.len()..].trim();
        Some(serde_json::from_str(json))
    }

    /// All `RESULT` lines of a whole output, in order; malformed ones are errors.
    pub fn parse_output(output: &str) -> Vec<Result<Self, serde_json::Error>> {
        output.lines().filter_map(Self::parse_line).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trips() {
        let line = ResultLine::new("cpu")
            .value("ops_per_s", 1234.5, "ops/s")
            .fact("kernel_release", "6.1.0");
        let text = line.to_line();
        assert!(text.starts_with("RESULT {"));
        let parsed = ResultLine::parse_line(&text).unwrap().unwrap();
        assert_eq!(parsed, line);
    }

    #[test]
    fn console_prefix_is_ignored_and_other_lines_skipped() {
        let out = "[    0.1] booting\n\r[ 0.2] RESULT {\"test\":\"ready\"}\nREADY\n";
        let all = ResultLine::parse_output(out);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].as_ref().unwrap().test, "ready");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_skip() {
        assert!(ResultLine::parse_line("RESULT {\"test\":")
            .unwrap()
            .is_err());
    }
}
