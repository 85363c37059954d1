//! Choosing a target of a version for one request.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How requests spread over a version's targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each healthy target in turn.
    #[default]
    RoundRobin,
    /// The healthy target with the fewest requests in flight (ties in turn).
    LeastInFlight,
}

/// What the balancer needs to know of a target.
pub trait Candidate {
    /// Whether it may receive requests.
    fn is_available(&self) -> bool;
    /// Requests in flight to it.
    fn load(&self) -> u64;
}

/// Picks targets by the balance rule; the turn counter is its only state.
#[derive(Debug, Default)]
pub struct LoadBalancer {
    balance: Balance,
    turn: AtomicUsize,
}

impl LoadBalancer {
    /// A balancer following `balance`.
    pub fn new(balance: Balance) -> Self {
        LoadBalancer {
            balance,
            turn: AtomicUsize::new(0),
        }
    }

    /// The balance rule.
    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// The index of the target to use, skipping `exclude`; `None` when no
    /// available target is left.
    pub fn pick<C: Candidate>(&self, candidates: &[C], exclude: Option<usize>) -> Option<usize> {
        let count = candidates.len();
        if count == 0 {
            return None;
        }
        let usable = |index: usize| Some(index) != exclude && candidates[index].is_available();
        match self.balance {
            // Each turn names one target; an unusable one passes its turn on
            // by taking the next turn, so usable targets share evenly.
            Balance::RoundRobin => (0..count)
                .map(|_| self.turn.fetch_add(1, Ordering::Relaxed) % count)
                .find(|&index| usable(index)),
            Balance::LeastInFlight => {
                let start = self.turn.fetch_add(1, Ordering::Relaxed) % count;
                (0..count)
                    .map(|offset| (start + offset) % count)
                    .filter(|&index| usable(index))
                    .min_by_key(|&index| candidates[index].load())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        available: bool,
        load: u64,
    }

    impl Candidate for Fake {
        fn is_available(&self) -> bool {
            self.available
        }
        fn load(&self) -> u64 {
            self.load
        }
    }

    fn fake(available: bool, load: u64) -> Fake {
        Fake { available, load }
    }

    #[test]
    fn round_robin_takes_turns_and_skips_unavailable() {
        let balancer = LoadBalancer::new(Balance::RoundRobin);
        let targets = [fake(true, 0), fake(false, 0), fake(true, 0)];
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(&targets, None).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&index| index == 0).count(), 3);
        assert_eq!(picks.iter().filter(|&&index| index == 2).count(), 3);
        assert!(!picks.contains(&1));
    }

    #[test]
    fn least_in_flight_prefers_the_idle_target() {
        let balancer = LoadBalancer::new(Balance::LeastInFlight);
        let targets = [fake(true, 5), fake(true, 1), fake(true, 3)];
        for _ in 0..5 {
            assert_eq!(balancer.pick(&targets, None), Some(1));
        }
    }

    #[test]
    fn exclusion_and_empty() {
        let balancer = LoadBalancer::new(Balance::RoundRobin);
        let targets = [fake(true, 0), fake(true, 0)];
        for _ in 0..4 {
            assert_eq!(balancer.pick(&targets, Some(0)), Some(1));
        }
        let lone = [fake(true, 0)];
        assert_eq!(balancer.pick(&lone, Some(0)), None);
        assert_eq!(balancer.pick::<Fake>(&[], None), None);
        assert_eq!(balancer.pick(&[fake(false, 0)], None), None);
    }
}
