//! The echo doctor: from the echo canceller's own numbers, once a second, whether the peer
//! is probably hearing their own voice come back from our speaker.
//!
//! The canceller's residual echo detector says how likely our cleaned microphone still
//! carries what our speaker played. One bad second is a word that slipped through; the
//! doctor speaks up only when most of the last few seconds were bad, and stands down only
//! after several clean ones, so the advice neither flickers nor lingers.

/// Readings remembered: the last eight seconds.
const WINDOW: usize = 8;
/// Echo in this many of them turns the warning on.
const ON_AFTER: usize = 4;
/// Residual echo likelihood (0 to 1) from which a second counts as echo. (With the
/// canceller working in the echo room test it stays below 0.4; with it off, it climbs past
/// this within about six seconds.)
pub const ECHO_LIKELIHOOD: f64 = 0.45;

#[derive(Debug, Clone, Default)]
pub struct EchoDoctor {
    /// One bit per reading, newest lowest.
    history: u8,
    readings: usize,
    warning: bool,
}

impl EchoDoctor {
    pub fn new() -> EchoDoctor {
        EchoDoctor::default()
    }

    /// Takes one second's reading (`None`: the canceller is not running, nothing played)
    /// and says whether the peer probably hears an echo.
    pub fn observe(&mut self, residual_echo_likelihood: Option<f64>) -> bool {
        let echo = residual_echo_likelihood.is_some_and(|l| l >= ECHO_LIKELIHOOD);
        self.history = self.history << 1 | u8::from(echo);
        self.readings = (self.readings + 1).min(WINDOW);
        let bad = self.history.count_ones() as usize;
        if bad >= ON_AFTER {
            self.warning = true;
        } else if bad == 0 && self.readings == WINDOW {
            self.warning = false;
        }
        self.warning
    }

    pub fn warning(&self) -> bool {
        self.warning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(doctor: &mut EchoDoctor, readings: &[Option<f64>]) -> Vec<bool> {
        readings.iter().map(|r| doctor.observe(*r)).collect()
    }

    #[test]
    fn persistent_echo_raises_the_warning_and_clean_seconds_lower_it() {
        let mut doctor = EchoDoctor::new();
        let said = feed(&mut doctor, &[Some(0.9); 5]);
        assert_eq!(said, [false, false, false, true, true]);
        // Echo going away: the warning holds until eight clean seconds in a row.
        let said = feed(&mut doctor, &[Some(0.1); 8]);
        assert_eq!(said, [true, true, true, true, true, true, true, false]);
    }

    #[test]
    fn a_stray_second_of_echo_says_nothing() {
        let mut doctor = EchoDoctor::new();
        let readings = [
            Some(0.9),
            Some(0.1),
            None,
            Some(0.8),
            Some(0.0),
            Some(0.2),
            Some(0.95),
        ];
        assert!(feed(&mut doctor, &readings).iter().all(|warn| !warn));
        assert!(!doctor.warning());
    }
}
