//! Stop strings: ends a generation when its text contains one, without ever emitting the
//! stop string itself, even when it spans several tokens.
//!
//! Text that could still be the beginning of a stop string is held back until the next
//! token shows whether it is; the caller emits only what [`StopStrings::push`] returns.

/// Scans streamed text for any of a request's stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Text received but not yet released: a possible start of a stop string.
    pending: String,
}

/// What a call to [`StopStrings::push`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopScan {
    /// Text that is safe to emit now.
    pub text: String,
    /// A stop string was found; `text` ends right before it.
    pub stopped: bool,
}

impl StopStrings {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    pub fn push(&mut self, text: &str) -> StopScan {
        if self.stops.is_empty() {
            return StopScan {
                text: text.to_string(),
                stopped: false,
            };
        }
        self.pending.push_str(text);
        // The earliest occurrence of any stop string wins.
        let hit = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = hit {
            let text = self.pending[..at].to_string();
            self.pending.clear();
            return StopScan {
                text,
                stopped: true,
            };
        }
        let keep = self.held_back_len();
        let split = self.pending.len() - keep;
        let text = self.pending[..split].to_string();
        self.pending.drain(..split);
        StopScan {
            text,
            stopped: false,
        }
    }

    /// The generation ended for another reason: release what was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of a stop string.
    fn held_back_len(&self) -> usize {
        let p = &self.pending;
        let mut best = 0;
        for (start, _) in p.char_indices() {
            let suffix = &p[start..];
            if suffix.len() <= best {
                break;
            }
            if self.stops.iter().any(|s| s.starts_with(suffix)) {
                best = suffix.len();
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut s = StopStrings::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let r = s.push(p);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&s.finish());
        (out, false)
    }

    #[test]
    fn stop_inside_one_piece() {
        assert_eq!(run(&["END"], &["abcENDdef"]), ("abc".into(), true));
    }

    #[test]
    fn stop_spanning_pieces_is_not_emitted() {
        assert_eq!(
            run(&["</s>"], &["hello <", "/", "s> more"]),
            ("hello ".into(), true)
        );
    }

    #[test]
    fn partial_match_is_released_when_it_fails() {
        let mut s = StopStrings::new(vec!["STOP".into()]);
        assert_eq!(s.push("ab ST").text, "ab ");
        assert_eq!(s.push("ART").text, "START");
    }

    #[test]
    fn held_text_flushes_at_the_end() {
        assert_eq!(run(&["STOP"], &["abc", "ST"]), ("abcST".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["xyz", "b"], &["abcxyz"]), ("a".into(), true));
    }

    #[test]
    fn multibyte_text_is_split_on_char_boundaries() {
        assert_eq!(run(&["é!"], &["caféé", "?"]), ("caféé?".into(), false));
        assert_eq!(run(&["😀😀"], &["a😀", "😀b"]), ("a".into(), true));
    }

    #[test]
    fn no_stops_passes_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }
}
