//! Small statistics and formatting helpers shared by the report sections.

use std::time::Duration;

/// The `q`-quantile (0..=1) of `values` by nearest rank; `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Durations as milliseconds.
pub fn ms(values: impl IntoIterator<Item = Duration>) -> Vec<f64> {
    values.into_iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// `12.3` (one decimal) or `n/a`.
pub fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.1}"))
}

/// Bytes as `1 234 567` plus MiB.
pub fn fmt_bytes(b: u64) -> String {
    format!("{} ({:.1} MiB)", b, b as f64 / 1_048_576.0)
}

/// A dollar figure with enough precision for per-million amounts.
pub fn usd(v: f64) -> String {
    format!("${v:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.9), Some(5.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
