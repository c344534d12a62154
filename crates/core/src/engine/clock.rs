//! The event clock: the largest event time seen; it never moves back.
use crate::model::EventTime;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventClock {
    now: Option<EventTime>,
}

impl EventClock {
    pub fn now(&self) -> Option<EventTime> {
        self.now
    }

    /// Advances to `t` when it is later; returns whether the clock moved.
    pub fn advance(&mut self, t: EventTime) -> bool {
        match self.now {
            Some(now) if t <= now => false,
            _ => {
                self.now = Some(t);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_moves_back() {
        let mut c = EventClock::default();
        assert_eq!(c.now(), None);
        assert!(c.advance(EventTime::from_ms(10)));
        assert!(!c.advance(EventTime::from_ms(5)));
        assert!(!c.advance(EventTime::from_ms(10)));
        assert_eq!(c.now(), Some(EventTime::from_ms(10)));
        assert!(c.advance(EventTime::from_ms(11)));
    }
}
