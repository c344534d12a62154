//! The plainest patrol app: a unit accepts its first dispatch and declines any other
//! while it is on that one. The tests of dispatch across instances answer with it
//! (two instances may pick the same unit for two incidents at once; the alert
//! declined must go to another unit), on the in-memory broker and on a real one alike.
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct OneJobAtATime {
    answered: BTreeSet<(String, String, i64)>,
    /// The alert each unit accepted.
    on: BTreeMap<String, String>,
    accepted: u64,
}

impl OneJobAtATime {
    /// The ack status for dispatch `attempt` of `alert_id` to `unit`, or `None` when
    /// that dispatch was answered before (an alert's later copies repeat it).
    pub fn answer(&mut self, alert_id: &str, unit: &str, attempt: i64) -> Option<&'static str> {
        if !self
            .answered
            .insert((alert_id.to_owned(), unit.to_owned(), attempt))
        {
            return None;
        }
        Some(match self.on.get(unit) {
            Some(busy_on) if busy_on != alert_id => "declined",
            _ => {
                self.on.insert(unit.to_owned(), alert_id.to_owned());
                self.accepted += 1;
                "accepted"
            }
        })
    }

    /// How many dispatches were accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_on_a_job_declines_others_and_each_dispatch_is_answered_once() {
        let mut apps = OneJobAtATime::default();
        assert_eq!(apps.answer("a1", "U-1", 1), Some("accepted"));
        assert_eq!(apps.answer("a1", "U-1", 1), None);
        assert_eq!(apps.answer("a2", "U-1", 1), Some("declined"));
        assert_eq!(apps.answer("a1", "U-1", 2), Some("accepted"));
        assert_eq!(apps.answer("a2", "U-2", 2), Some("accepted"));
        assert_eq!(apps.accepted(), 3);
    }
}
