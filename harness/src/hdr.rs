//! HDR histograms as the statistics keep them: three significant digits
//! (quantiles within 0.1 %), growing to fit what they record.

use hdrhistogram::Histogram;

/// An empty histogram of three significant digits that resizes to fit.
pub fn new() -> Histogram<u64> {
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits are valid"))
}

/// Records `v` in `h`. The histogram resizes to fit; only a value past
/// what any size can hold is clamped (saturating_record alone would clamp
/// to the size it has, which starts tiny).
pub fn record(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}
