//! Plain request counters, shared by time slices, window merges and totals.

use crate::outcome::Class;

/// Requests seen and how they ended. `requests` is kept apart from the class
/// counters because some outcomes (odd status codes) belong to no class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) by_class: [u64; Class::COUNT],
}

impl Counts {
    pub(crate) fn add(&mut self, class: Option<Class>) {
        // Wrapping would turn a huge count into a tiny one; saturating keeps
        // rates sane should a counter ever get there.
        self.requests = self.requests.saturating_add(1);
        if let Some(class) = class {
            let slot = &mut self.by_class[class.index()];
            *slot = slot.saturating_add(1);
        }
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        for (mine, theirs) in self.by_class.iter_mut().zip(other.by_class) {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub(crate) fn get(&self, class: Class) -> u64 {
        self.by_class[class.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_counts_the_request_and_its_class() {
        let mut counts = Counts::default();
        counts.add(Some(Class::Status2xx));
        counts.add(Some(Class::Status2xx));
        counts.add(Some(Class::Timeout));
        counts.add(None);
        assert_eq!(counts.requests, 4);
        assert_eq!(counts.get(Class::Status2xx), 2);
        assert_eq!(counts.get(Class::Timeout), 1);
        assert_eq!(counts.by_class.iter().sum::<u64>(), 3);
    }

    #[test]
    fn merge_adds_field_by_field() {
        let mut a = Counts::default();
        a.add(Some(Class::Status5xx));
        let mut b = Counts::default();
        b.add(Some(Class::Status5xx));
        b.add(Some(Class::Status4xx));
        a.merge(&b);
        assert_eq!(a.requests, 3);
        assert_eq!(a.get(Class::Status5xx), 2);
        assert_eq!(a.get(Class::Status4xx), 1);
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let mut a = Counts {
            requests: u64::MAX,
            by_class: [u64::MAX; Class::COUNT],
        };
        a.add(Some(Class::Status2xx));
        a.merge(&a.clone());
        assert_eq!(a.requests, u64::MAX);
        assert_eq!(a.get(Class::Status2xx), u64::MAX);
    }
}
