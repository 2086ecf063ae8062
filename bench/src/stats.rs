//! Samples of durations and their order statistics.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
    /// Wall time of the whole loop (throughput = n / wall).
    pub wall: Duration,
}

impl Samples {
    pub fn new(mut values: Vec<Duration>, wall: Duration) -> Self {
        values.sort();
        Self {
            sorted: values,
            wall,
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Nearest-rank percentile (`p` in 0..=1); zero when empty.
    pub fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn min(&self) -> Duration {
        self.sorted.first().copied().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        self.pct(0.5)
    }

    pub fn mean(&self) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        self.sorted.iter().sum::<Duration>() / self.sorted.len() as u32
    }

    /// Operations per second over the loop's wall time.
    pub fn per_second(&self) -> f64 {
        if self.wall.is_zero() {
            return 0.0;
        }
        self.sorted.len() as f64 / self.wall.as_secs_f64()
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A duration in the unit that reads best: µs below 1 ms, else ms.
pub fn fmt_dur(d: Duration) -> String {
    let micros = us(d);
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 100_000.0 {
        format!("{:.1} ms", micros / 1e3)
    } else {
        format!("{:.0} ms", micros / 1e3)
    }
}

pub fn ratio(python: f64, rust: f64) -> String {
    if rust <= 0.0 || python <= 0.0 {
        return "n/a".to_owned();
    }
    let r = python / rust;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}
