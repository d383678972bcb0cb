//! What classifying costs: this machine's time at a stated price, plus any
//! API's price. One place for the assumption, read by the studies and the
//! report alike.

use crate::results::RunRecord;

/// The price put on this machine's time: an assumption (about an on-demand
/// 2-vCPU cloud machine), stated wherever a cost is shown.
pub const MACHINE_USD_PER_HOUR: f64 = 0.10;

/// This machine's time for `seconds` of work, in US dollars.
pub fn machine_usd(seconds: f64) -> f64 {
    seconds / 3600.0 * MACHINE_USD_PER_HOUR
}

/// What 1,000 classifications cost at `items_per_second` on this machine
/// plus `api_per_1000` charged by an API.
pub fn per_1000(items_per_second: f64, api_per_1000: f64) -> f64 {
    api_per_1000 + machine_usd(1000.0 / items_per_second)
}

/// What 1,000 of `record`'s classifications cost: its API's price plus
/// this machine's time at its measured rate.
pub fn total_per_1000(record: &RunRecord) -> f64 {
    per_1000(record.items_per_second(), record.api_cost_per_1000())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_costs_the_hourly_price() {
        assert!((machine_usd(3600.0) - MACHINE_USD_PER_HOUR).abs() < 1e-12);
        assert!((per_1000(1000.0, 0.5) - (machine_usd(1.0) + 0.5)).abs() < 1e-15);
    }
}
