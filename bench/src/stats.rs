//! Honest statistics over a metric's samples: median, mean, percentiles, min/max, the
//! median absolute deviation (MAD) and MAD-based outlier warnings a reader can act on.
//!
//! Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7,
//! the default of NumPy, R and spreadsheets): for `p` in 0..=100 over `n` sorted
//! samples, the rank is `h = (n - 1) * p / 100` and the value is
//! `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`.
//!
//! Outliers follow Iglewicz & Hoaglin: a sample is an outlier when its modified
//! z-score `0.6745 * |x - median| / MAD` exceeds [`OUTLIER_Z`].

use crate::results::Summary;

/// Modified z-score above which a sample is called an outlier.
pub const OUTLIER_Z: f64 = 3.5;

/// Fewer samples than this make percentiles rough; the summary says so.
pub const FEW_SAMPLES: usize = 5;

/// Spread `(p95 - p5) / median` above which the summary warns of a noisy host.
pub const WIDE_SPREAD: f64 = 0.5;

/// Summarises `values` (in `unit`); `None` when there are no samples or any value is
/// not finite.
pub fn summarize(values: &[f64], unit: &str) -> Option<Summary> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = percentile_sorted(&sorted, 50.0);
    let mad = mad_around(&sorted, median);
    let outliers = count_outliers(&sorted, median, mad);
    let mut summary = Summary {
        unit: unit.to_owned(),
        n: sorted.len(),
        median,
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        p5: percentile_sorted(&sorted, 5.0),
        p95: percentile_sorted(&sorted, 95.0),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        mad,
        outliers,
        warning: None,
    };
    summary.warning = warning(&summary);
    Some(summary)
}

/// The `p`th percentile (0..=100) of ascending `sorted`, by type-7 interpolation.
/// `sorted` must be non-empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 100.0) / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The median of `values` (any order); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, 50.0))
}

/// Median absolute deviation around `center` (unscaled).
fn mad_around(values: &[f64], center: f64) -> f64 {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    median(&deviations).unwrap_or(0.0)
}

/// Samples whose modified z-score exceeds [`OUTLIER_Z`]. With a MAD of zero (half the
/// samples identical) no score is defined and nothing is called an outlier.
fn count_outliers(values: &[f64], median: f64, mad: f64) -> usize {
    if mad == 0.0 {
        return 0;
    }
    values
        .iter()
        .filter(|v| 0.6745 * (*v - median).abs() / mad > OUTLIER_Z)
        .count()
}

/// A warning that tells the reader what to do, when the figure is doubtful.
fn warning(s: &Summary) -> Option<String> {
    if s.n < 2 {
        // One measurement (density) is not a distribution: nothing to warn about.
        return None;
    }
    if s.n < FEW_SAMPLES {
        return Some(format!(
            "only {} samples: percentiles and outliers are rough; use --iterations {FEW_SAMPLES} or more",
            s.n
        ));
    }
    if s.outliers > 0 {
        return Some(format!(
            "{} of {} samples are outliers (more than {OUTLIER_Z} MADs from the median): \
             something else was using the host; close other programs and rerun, or raise \
             --iterations so the median is robust",
            s.outliers, s.n
        ));
    }
    if s.median != 0.0 && (s.p95 - s.p5) / s.median.abs() > WIDE_SPREAD {
        return Some(format!(
            "wide spread: p5..p95 covers {:.0}% of the median; the host is noisy, \
             rerun on an idle machine or with more --iterations",
            100.0 * (s.p95 - s.p5) / s.median.abs()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn known_sample_one_to_ten() {
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let s = summarize(&v, "ms").unwrap();
        assert!(close(s.median, 5.5));
        assert!(close(s.mean, 5.5));
        // h = 9 * 0.05 = 0.45 -> 1 + 0.45; h = 9 * 0.95 = 8.55 -> 9 + 0.55.
        assert!(close(s.p5, 1.45), "{}", s.p5);
        assert!(close(s.p95, 9.55), "{}", s.p95);
        assert_eq!((s.min, s.max, s.n), (1.0, 10.0, 10));
        // |x - 5.5| = 4.5, 3.5, ..., 0.5 twice each: median 2.5.
        assert!(close(s.mad, 2.5));
        assert_eq!(s.outliers, 0);
        assert_eq!(s.unit, "ms");
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([15, 20, 35, 40, 50], [40, 90]) == [29.0, 46.0]
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert!(close(percentile_sorted(&v, 40.0), 29.0));
        assert!(close(percentile_sorted(&v, 90.0), 46.0));
        assert!(close(percentile_sorted(&[7.0], 95.0), 7.0));
    }

    #[test]
    fn one_far_sample_is_an_outlier_with_an_actionable_warning() {
        let v = [10.0, 11.0, 10.5, 9.5, 10.2, 9.8, 10.1, 100.0];
        let s = summarize(&v, "ms").unwrap();
        assert_eq!(s.outliers, 1);
        let w = s.warning.unwrap();
        assert!(w.contains("1 of 8"), "{w}");
        assert!(w.contains("rerun"), "{w}");
    }

    #[test]
    fn identical_samples_have_no_outliers_or_warning() {
        let s = summarize(&[3.0; 6], "x").unwrap();
        assert_eq!((s.mad, s.outliers), (0.0, 0));
        assert_eq!(s.warning, None);
    }

    #[test]
    fn few_samples_are_flagged() {
        let s = summarize(&[1.0, 1.01], "x").unwrap();
        assert!(s.warning.unwrap().contains("only 2 samples"));
        assert_eq!(summarize(&[5.0], "x").unwrap().warning, None);
    }

    #[test]
    fn wide_spread_is_flagged() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "x").unwrap();
        assert!(s.warning.unwrap().contains("wide spread"));
    }

    #[test]
    fn empty_or_nan_gives_none() {
        assert!(summarize(&[], "x").is_none());
        assert!(summarize(&[1.0, f64::NAN], "x").is_none());
        assert_eq!(median(&[]), None);
    }
}
