//! The few statistics the report computes itself: a summary recomputed from samples
//! when a results file lacks one (an interrupted run), and the box-plot figures, whose
//! whiskers are real samples. Private to the report; `crate::stats` (bench-core) holds
//! the harness's own, and the two can be merged once both are on main.

use crate::results::Summary;

/// The p-th percentile (0..=100) of sorted values, by linear interpolation between
/// the closest ranks (the usual "type 7" definition).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Sorts finite values, dropping NaN and infinities, which no statistic can use.
pub(crate) fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A summary of `values`, or `None` when there is none to summarise.
pub(crate) fn summarize(values: &[f64], unit: &str) -> Option<Summary> {
    let v = sorted_finite(values);
    if v.is_empty() {
        return None;
    }
    let median = percentile(&v, 50.0);
    let deviations = sorted_finite(&v.iter().map(|x| (x - median).abs()).collect::<Vec<_>>());
    let mad = percentile(&deviations, 50.0);
    let outliers = v
        .iter()
        .filter(|x| mad > 0.0 && (*x - median).abs() > 5.0 * mad)
        .count();
    Some(Summary {
        unit: unit.to_owned(),
        n: v.len(),
        median,
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p5: percentile(&v, 5.0),
        p95: percentile(&v, 95.0),
        min: v[0],
        max: v[v.len() - 1],
        mad,
        outliers,
        warning: None,
    })
}

/// What a box plot draws: quartiles, whiskers at real samples, and the samples beyond.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoxStats {
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// The smallest sample within 1.5 IQR below q1 (a real sample, never a fence).
    pub low: f64,
    /// The largest sample within 1.5 IQR above q3.
    pub high: f64,
    /// Samples beyond the whiskers, drawn as points.
    pub outliers: Vec<f64>,
    /// Number of samples.
    pub n: usize,
}

/// Tukey box-plot figures of `values`; whiskers end at the last sample inside the
/// 1.5 IQR fences, so every drawn end is a measured value.
pub(crate) fn box_stats(values: &[f64]) -> Option<BoxStats> {
    let v = sorted_finite(values);
    let (first, last) = (*v.first()?, *v.last()?);
    let (q1, q3) = (percentile(&v, 25.0), percentile(&v, 75.0));
    let (lo_fence, hi_fence) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    let inside = |x: &&f64| **x >= lo_fence && **x <= hi_fence;
    Some(BoxStats {
        q1,
        median: percentile(&v, 50.0),
        q3,
        low: v.iter().find(inside).copied().unwrap_or(first),
        high: v.iter().rev().find(inside).copied().unwrap_or(last),
        outliers: v.iter().filter(|x| !inside(x)).copied().collect(),
        n: v.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert!((percentile(&v, 5.0) - 1.15).abs() < 1e-12);
    }

    #[test]
    fn summary_of_known_samples() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0, f64::NAN], "ms").unwrap();
        assert_eq!(
            (s.n, s.median, s.min, s.max, s.mean),
            (5, 3.0, 1.0, 5.0, 3.0)
        );
        assert_eq!(s.mad, 1.0);
        assert_eq!(s.unit, "ms");
        assert!(summarize(&[], "ms").is_none());
    }

    #[test]
    fn whiskers_end_at_real_samples_and_outliers_are_kept() {
        let b = box_stats(&[10.0, 11.0, 12.0, 13.0, 14.0, 100.0]).unwrap();
        assert_eq!(b.low, 10.0);
        assert_eq!(
            b.high, 14.0,
            "the whisker stops at the last sample inside the fence"
        );
        assert_eq!(b.outliers, vec![100.0]);
        let single = box_stats(&[7.0]).unwrap();
        assert_eq!((single.low, single.median, single.high), (7.0, 7.0, 7.0));
    }
}
