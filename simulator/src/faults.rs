//! Deterministic fault injection: latency, random 500s and dropped connections.

/// SplitMix64: tiny, seedable and good enough to spread faults evenly.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `rate`; consumes one draw only when the knob is on, so turning
    /// one fault on doesn't shift the sequence of another that is off.
    pub fn chance(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.next_f64() < rate
    }
}

/// Marker put in a response's extensions: the connection must be closed instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_sequence_and_rate_roughly_holds() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<bool> = (0..1000).map(|_| a.chance(0.3)).collect();
        let ys: Vec<bool> = (0..1000).map(|_| b.chance(0.3)).collect();
        assert_eq!(xs, ys);
        let hits = xs.iter().filter(|x| **x).count();
        assert!((200..400).contains(&hits), "hits = {hits}");
        assert!(!Rng::new(1).chance(0.0));
    }
}
