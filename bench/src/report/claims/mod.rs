//! The claims check: each claim of `CLAIMS.md` with the numbers behind it and a verdict
//! derived from them by a stated threshold, or "not measured here" with the reason.
//! Cost claims (C1-C4) live in `cost.rs`, kernel and isolation claims (C5, C6, C12)
//! in `kernel.rs`, container-only claims (C7-C11) in `container.rs`.

mod container;
mod cost;
mod kernel;

use std::fmt;

pub(crate) use cost::phase_median;

use super::view::{num, Figure, Run};

/// What the data says about a claim on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The measurements agree with the claim, past its threshold.
    Holds,
    /// The measurements agree in part; the explanation says which part does not.
    HoldsWithNuance,
    /// The measurements contradict the claim on this host.
    DoesNotHold,
    /// Nothing measured here can decide it; the explanation says why.
    NotMeasured,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::HoldsWithNuance => "holds with a nuance",
            Verdict::DoesNotHold => "does not hold on this host",
            Verdict::NotMeasured => "not measured here",
        })
    }
}

/// A figure behind a verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number with its unit.
    Num {
        /// The number.
        value: f64,
        /// Its unit.
        unit: String,
    },
    /// A textual observation (a kernel release, a checksum).
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num { value, .. } => f.write_str(&num(*value)),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// One number or fact behind a verdict, and where in the results it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// What it is, for a reader.
    pub what: String,
    /// The figure.
    pub value: Value,
    /// Its path in the results: `model/scenario/metric.stat`, `host.field`, or
    /// `ratio(A;B)` for A divided by B.
    pub source: String,
}

impl Evidence {
    /// A statistic of a figure.
    pub(crate) fn stat(what: impl Into<String>, f: &Figure, stat: &str) -> Self {
        let s = &f.summary;
        let value = match stat {
            "min" => s.min,
            "max" => s.max,
            "p5" => s.p5,
            "p95" => s.p95,
            "n" => s.n as f64,
            _ => s.median,
        };
        let unit = s.unit.clone();
        Self {
            what: what.into(),
            value: Value::Num { value, unit },
            source: f.src(stat),
        }
    }

    /// The ratio of two evidence numbers, `a / b`.
    pub(crate) fn ratio(what: impl Into<String>, a: &Evidence, b: &Evidence) -> Self {
        let value = a.number() / b.number();
        let source = format!("ratio({};{})", a.source, b.source);
        Self {
            what: what.into(),
            value: Value::Num {
                value,
                unit: "x".into(),
            },
            source,
        }
    }

    /// A textual fact.
    pub(crate) fn text(what: impl Into<String>, text: &str, source: String) -> Self {
        Self {
            what: what.into(),
            value: Value::Text(text.to_owned()),
            source,
        }
    }

    /// The number, or NaN for a text.
    pub fn number(&self) -> f64 {
        match self.value {
            Value::Num { value, .. } => value,
            Value::Text(_) => f64::NAN,
        }
    }
}

/// The check of one claim on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCheck {
    /// `C1` .. `C12`.
    pub id: &'static str,
    /// The claim, paraphrased from `CLAIMS.md`.
    pub claim: &'static str,
    /// How the verdict is decided.
    pub threshold: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: the nuance, the contradiction, or why it was not measured.
    pub why: String,
    /// The figures behind the verdict.
    pub evidence: Vec<Evidence>,
}

/// A verdict with its explanation, before the claim's text is attached.
pub(crate) type Outcome = (Verdict, String);

/// Builds a check from a claim's texts, its outcome and its evidence.
fn check(
    (id, claim, threshold): (&'static str, &'static str, &'static str),
    (verdict, why): Outcome,
    evidence: Vec<Evidence>,
) -> ClaimCheck {
    ClaimCheck {
        id,
        claim,
        threshold,
        verdict,
        why,
        evidence,
    }
}

/// Checks every claim against one host's results.
pub(crate) fn check_all(run: &Run) -> Vec<ClaimCheck> {
    vec![
        cost::c1(run),
        cost::c2(run),
        cost::c3(run),
        cost::c4(run),
        kernel::c5(run),
        kernel::c6(run),
        container::c7(run),
        container::c8(run),
        container::c9(run),
        container::c10(run),
        container::c11(run),
        kernel::c12(run),
    ]
}

/// Joins the outcomes of a claim's parts: all hold, all fail, or a nuance naming
/// which part did what. Parts not measured are named in the nuance.
pub(crate) fn combine(parts: &[(&str, Outcome)]) -> Outcome {
    let measured: Vec<&(&str, Outcome)> = parts
        .iter()
        .filter(|(_, o)| o.0 != Verdict::NotMeasured)
        .collect();
    let text = |ps: &[&(&str, Outcome)]| -> String {
        let t: Vec<String> = ps.iter().map(|(n, (_, w))| format!("{n}: {w}")).collect();
        t.join("; ")
    };
    let all_parts: Vec<&(&str, Outcome)> = parts.iter().collect();
    if measured.is_empty() {
        return (Verdict::NotMeasured, text(&all_parts));
    }
    let all = |v: Verdict| measured.iter().all(|(_, o)| o.0 == v);
    let verdict = if all(Verdict::DoesNotHold) {
        Verdict::DoesNotHold
    } else if all(Verdict::Holds) && measured.len() == parts.len() {
        Verdict::Holds
    } else {
        Verdict::HoldsWithNuance
    };
    (verdict, text(&all_parts))
}

#[cfg(test)]
mod tests;
