//! Summaries for benchmarks that measure in interleaved rounds: a figure
//! taken within each round, reported as the median and the spread over
//! rounds, so load from other work on the machine shows as spread instead
//! of moving one side of a comparison.

/// The median, minimum and maximum of `values`, leaving out `NaN`s (a
/// round whose figure could not be read, such as the CPU time of a process
/// that had already exited); all `NaN` when nothing is left.
pub fn spread(mut values: Vec<f64>) -> Spread {
    values.retain(|v| !v.is_nan());
    values.sort_by(|a, b| a.total_cmp(b));
    match (values.first(), values.last()) {
        (Some(min), Some(max)) => Spread {
            median: values[values.len() / 2],
            min: *min,
            max: *max,
        },
        _ => Spread {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        },
    }
}

/// See [`spread`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `median (min-max)` with `decimals` digits after the point.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}-{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = spread(vec![3.0, 1.0, 2.0, 10.0, 0.5]);
        assert_eq!((s.median, s.min, s.max), (2.0, 0.5, 10.0));
        assert_eq!(s.show(1), "2.0 (0.5-10.0)");
        assert!(spread(Vec::new()).median.is_nan());
        let unread = spread(vec![2.0, f64::NAN, 1.0]);
        assert_eq!((unread.min, unread.max), (1.0, 2.0), "a NaN is left out");
        assert!(spread(vec![f64::NAN]).max.is_nan());
    }
}
