//! The reasoning trace: splits a chat completion's text into the model's thinking (between
//! the reasoning markers, `<think>` and `</think>` for most open models) and its answer.
//!
//! One [`ReasoningSplitter`] follows one sequence token by token. It starts in the phase the
//! rendered prompt leaves the model in ([`Phase::from_prompt`]): inside a block that the
//! template opened (DeepSeek-R1 distills), after a block the template closed (Qwen3 with
//! thinking off), or undecided, where the model may open a block with its first token.
//! Markers that are single tokens are recognised by id, so that text merely spelling
//! `</think>` inside the thoughts does not end them; markers that are not single tokens are
//! found in the text, holding back only the few characters that could still become one.
//! Only one block is recognised, at the start of the answer: a `<think>` the answer
//! mentions later stays in the answer.
//!
//! The whitespace around the markers is not part of either field: the thinking is trimmed
//! at both ends and the answer at its start. Trailing whitespace of the thinking is held
//! until the next text shows whether the block goes on, so the concatenated stream equals
//! the non-streamed fields exactly.

use std::sync::Arc;

/// The two strings around the thinking and, where the tokenizer has them as single
/// tokens, their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub start: String,
    pub end: String,
    pub start_id: Option<u32>,
    pub end_id: Option<u32>,
}

impl Markers {
    /// `<think>` / `</think>`, the markers of DeepSeek-R1 distills, Qwen3 and QwQ.
    pub const DEFAULT: (&'static str, &'static str) = ("<think>", "</think>");

    /// Markers with their ids looked up by `token_to_id`; None when neither marker is a
    /// token of this vocabulary and `required` is false (a model that does not reason).
    pub fn find(
        start: &str,
        end: &str,
        token_to_id: impl Fn(&str) -> Option<u32>,
        required: bool,
    ) -> Option<Self> {
        let (start_id, end_id) = (token_to_id(start), token_to_id(end));
        if !required && (start_id.is_none() || end_id.is_none()) {
            return None;
        }
        Some(Self {
            start: start.to_string(),
            end: end.to_string(),
            start_id,
            end_id,
        })
    }

    /// Parses `START,END` (the `--reasoning-markers` flag).
    pub fn parse_pair(s: &str) -> Result<(String, String), String> {
        match s.split_once(',') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                Ok((a.trim().to_string(), b.trim().to_string()))
            }
            _ => Err(format!(
                "expected START,END (e.g. `<think>,</think>`), got `{s}`"
            )),
        }
    }

    /// The text candor appends to end a block whose budget is spent: an optional lead-in,
    /// then the end marker with the newline convention of the templates that use these
    /// markers (`\n</think>\n\n`).
    pub fn closing_text(&self, message: Option<&str>) -> String {
        let (before, after) = Self::closing_parts(message);
        format!("{before}{}{after}", self.end)
    }

    /// The closing text around the end marker: (lead-in, after), so that a caller can put
    /// the marker's own token id between them.
    pub fn closing_parts(message: Option<&str>) -> (String, &'static str) {
        match message.map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => (format!("\n{m}\n"), "\n\n"),
            None => ("\n".to_string(), "\n\n"),
        }
    }
}

/// Where a sequence is relative to the thinking block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing generated yet decides it: the model may open a block.
    Undecided,
    Thinking,
    /// After the block, or without one: everything is the answer.
    Answer,
}

impl Phase {
    /// The phase a rendered prompt leaves the model in: a prompt ending with the start
    /// marker (DeepSeek-R1's `<think>\n`) has opened the block; one ending with the end
    /// marker (Qwen3's `<think>\n\n</think>\n\n` with thinking off) has closed it.
    pub fn from_prompt(prompt: &str, markers: &Markers) -> Phase {
        let tail = prompt.trim_end();
        if tail.ends_with(&markers.end) {
            Phase::Answer
        } else if tail.ends_with(&markers.start) {
            Phase::Thinking
        } else {
            Phase::Undecided
        }
    }
}

/// One token's text, split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub reasoning: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    markers: Arc<Markers>,
    phase: Phase,
    /// `raw`: every character goes to the content, markers included; the phase is still
    /// followed, for counting and budgets.
    raw: bool,
    /// Text not released yet: the start of a possible marker, or whitespace that may turn
    /// out to precede the end marker.
    pending: String,
    /// Whether any thinking / answer text has been released (leading whitespace is not).
    reasoning_started: bool,
    content_started: bool,
    /// Model-generated tokens inside the block, markers and inserted tokens excluded.
    reasoning_tokens: usize,
}

impl ReasoningSplitter {
    pub fn new(markers: Arc<Markers>, phase: Phase, raw: bool) -> Self {
        Self {
            markers,
            phase,
            raw,
            pending: String::new(),
            reasoning_started: false,
            content_started: false,
            reasoning_tokens: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn markers(&self) -> &Markers {
        &self.markers
    }

    /// Tokens the model generated inside the thinking block.
    pub fn reasoning_tokens(&self) -> usize {
        self.reasoning_tokens
    }

    /// Takes one generated token (`forced`: inserted by candor, not sampled) and the text
    /// the detokenizer released for it; returns the text that can be shown now.
    pub fn push(&mut self, token: Option<u32>, text: &str, forced: bool) -> Split {
        let mut out = Split::default();
        if self.raw {
            out.content.push_str(text);
        }
        let m = self.markers.clone();
        match (self.phase, token) {
            (Phase::Undecided, Some(id)) if Some(id) == m.start_id => {
                // The model opened the block; the text before it (whitespace) is dropped.
                let after = text
                    .rfind(&m.start)
                    .map_or("", |i| &text[i + m.start.len()..]);
                self.pending.clear();
                self.phase = Phase::Thinking;
                if !self.raw {
                    self.thinking_text(after, &mut out);
                }
                return out;
            }
            (Phase::Thinking, Some(id)) if Some(id) == m.end_id => {
                let (before, after) = match text.rfind(&m.end) {
                    Some(i) => (&text[..i], &text[i + m.end.len()..]),
                    None => (text, ""),
                };
                if !self.raw {
                    self.pending.push_str(before);
                    self.end_block(&mut out);
                    self.answer_text(after, &mut out);
                } else {
                    self.phase = Phase::Answer;
                }
                return out;
            }
            (Phase::Thinking, _) if !forced => self.reasoning_tokens += 1,
            _ => {}
        }
        if self.raw {
            self.scan_raw(text);
            return out;
        }
        match self.phase {
            Phase::Undecided => self.undecided_text(text, &mut out),
            Phase::Thinking => self.thinking_text(text, &mut out),
            Phase::Answer => self.answer_text(text, &mut out),
        }
        out
    }

    /// Releases what is held at the end of the sequence.
    pub fn finish(&mut self) -> Split {
        let mut out = Split::default();
        let rest = std::mem::take(&mut self.pending);
        if self.raw || rest.is_empty() {
            return out;
        }
        match self.phase {
            // A possible start marker that never completed is answer text.
            Phase::Undecided | Phase::Answer => {
                self.phase = Phase::Answer;
                self.answer_text(&rest, &mut out);
            }
            // Thinking cut off (length): the held text is thinking, minus trailing blanks.
            Phase::Thinking => {
                let t = rest.trim_end();
                if self.reasoning_started {
                    out.reasoning.push_str(t);
                } else {
                    out.reasoning.push_str(t.trim_start());
                }
            }
        }
        out
    }

    fn undecided_text(&mut self, text: &str, out: &mut Split) {
        self.pending.push_str(text);
        let start = &self.markers.start;
        let t = self.pending.trim_start();
        if self.markers.start_id.is_none() && t.starts_with(start.as_str()) {
            let after = t[start.len()..].to_string();
            self.pending.clear();
            self.phase = Phase::Thinking;
            self.thinking_text(&after, out);
        } else if t.is_empty()
            || (self.markers.start_id.is_none() && start.starts_with(t) && !t.is_empty())
        {
            // Only whitespace, or a start marker still forming: wait.
        } else {
            let rest = std::mem::take(&mut self.pending);
            self.phase = Phase::Answer;
            self.answer_text(&rest, out);
        }
    }

    fn thinking_text(&mut self, text: &str, out: &mut Split) {
        self.pending.push_str(text);
        if self.markers.end_id.is_none() {
            if let Some(i) = self.pending.find(self.markers.end.as_str()) {
                let after = self.pending[i + self.markers.end.len()..].to_string();
                self.pending.truncate(i);
                self.end_block(out);
                self.answer_text(&after, out);
                return;
            }
        }
        // Hold a possible start of the end marker, and trailing whitespace.
        let mut keep_from = self.pending.len();
        if self.markers.end_id.is_none() {
            keep_from -= partial_suffix(&self.pending, &self.markers.end);
        }
        let releasable = self.pending[..keep_from].trim_end_matches(char::is_whitespace);
        let mut release = releasable.to_string();
        let cut = releasable.len();
        if !self.reasoning_started {
            release = release.trim_start().to_string();
        }
        if !release.is_empty() {
            self.reasoning_started = true;
            out.reasoning.push_str(&release);
        }
        self.pending.drain(..cut);
    }

    /// The end marker arrived: what is pending is the last of the thinking (without its
    /// trailing blanks); the answer follows.
    fn end_block(&mut self, out: &mut Split) {
        let rest = std::mem::take(&mut self.pending);
        let mut t = rest.trim_end();
        if !self.reasoning_started {
            t = t.trim_start();
        }
        if !t.is_empty() {
            self.reasoning_started = true;
            out.reasoning.push_str(t);
        }
        self.phase = Phase::Answer;
    }

    fn answer_text(&mut self, text: &str, out: &mut Split) {
        let t = if self.content_started {
            text
        } else {
            text.trim_start()
        };
        if !t.is_empty() {
            self.content_started = true;
            out.content.push_str(t);
        }
    }

    /// Follows the phase over raw text (for counting), without changing the output.
    fn scan_raw(&mut self, text: &str) {
        let m = self.markers.clone();
        match self.phase {
            Phase::Undecided if m.start_id.is_none() => {
                self.pending.push_str(text);
                let t = self.pending.trim_start();
                if t.starts_with(m.start.as_str()) {
                    let after = t[m.start.len()..].to_string();
                    self.pending = after;
                    self.phase = Phase::Thinking;
                    self.scan_raw("");
                } else if !(t.is_empty() || m.start.starts_with(t)) {
                    self.pending.clear();
                    self.phase = Phase::Answer;
                }
            }
            Phase::Undecided if !text.trim().is_empty() => self.phase = Phase::Answer,
            Phase::Thinking if m.end_id.is_none() => {
                self.pending.push_str(text);
                if self.pending.contains(m.end.as_str()) {
                    self.pending.clear();
                    self.phase = Phase::Answer;
                } else {
                    let keep = partial_suffix(&self.pending, &m.end);
                    self.pending.drain(..self.pending.len() - keep);
                }
            }
            _ => {}
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `marker`.
fn partial_suffix(text: &str, marker: &str) -> usize {
    (1..marker.len().min(text.len() + 1))
        .rev()
        .find(|&k| {
            text.is_char_boundary(text.len() - k)
                && marker.is_char_boundary(k)
                && marker.starts_with(&text[text.len() - k..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(ids: bool) -> Arc<Markers> {
        Arc::new(Markers {
            start: "<think>".into(),
            end: "</think>".into(),
            start_id: ids.then_some(1),
            end_id: ids.then_some(2),
        })
    }

    /// Feeds (id, text) pieces; returns (reasoning, content, reasoning tokens) and checks
    /// that no piece released text out of order.
    fn run(ids: bool, phase: Phase, pieces: &[(u32, &str)]) -> (String, String, usize) {
        let mut s = ReasoningSplitter::new(markers(ids), phase, false);
        let (mut r, mut c) = (String::new(), String::new());
        for &(id, text) in pieces {
            let out = s.push(Some(id), text, false);
            if !out.reasoning.is_empty() {
                assert!(c.is_empty(), "reasoning after content: {pieces:?}");
            }
            r.push_str(&out.reasoning);
            c.push_str(&out.content);
        }
        let out = s.finish();
        r.push_str(&out.reasoning);
        c.push_str(&out.content);
        (r, c, s.reasoning_tokens())
    }

    #[test]
    fn block_opened_by_the_model_with_marker_tokens() {
        let p = [
            (1, "<think>"),
            (5, "\n"),
            (6, "Hmm"),
            (7, "."),
            (5, "\n"),
            (2, "</think>"),
            (5, "\n\n"),
            (8, "Hi"),
        ];
        assert_eq!(
            run(true, Phase::Undecided, &p),
            ("Hmm.".into(), "Hi".into(), 4)
        );
    }

    #[test]
    fn block_opened_by_the_prompt() {
        let p = [(6, "Hmm"), (2, "</think>"), (8, "\n\nHi"), (9, " there")];
        assert_eq!(
            run(true, Phase::Thinking, &p),
            ("Hmm".into(), "Hi there".into(), 1)
        );
    }

    #[test]
    fn cut_off_before_the_end_marker_is_all_reasoning() {
        let p = [(6, "\nA"), (7, " b"), (5, "\n\n")];
        assert_eq!(run(true, Phase::Thinking, &p), ("A b".into(), "".into(), 3));
        assert_eq!(
            run(false, Phase::Thinking, &[(6, "A </th")]),
            ("A </th".into(), "".into(), 1)
        );
    }

    #[test]
    fn empty_reasoning() {
        let p = [
            (1, "<think>"),
            (5, "\n\n"),
            (2, "</think>"),
            (5, "\n\n"),
            (8, "Hi"),
        ];
        assert_eq!(run(true, Phase::Undecided, &p), ("".into(), "Hi".into(), 1));
    }

    #[test]
    fn no_reasoning_at_all() {
        let p = [(8, "Hello"), (9, " world")];
        assert_eq!(
            run(true, Phase::Undecided, &p),
            ("".into(), "Hello world".into(), 0)
        );
        assert_eq!(
            run(true, Phase::Answer, &p),
            ("".into(), "Hello world".into(), 0)
        );
    }

    #[test]
    fn markers_split_over_several_tokens() {
        let p = [
            (3, "<th"),
            (4, "ink"),
            (5, ">\nDeep "),
            (6, "thought</"),
            (7, "thi"),
            (8, "nk>\n\nAnswer"),
        ];
        assert_eq!(
            run(false, Phase::Undecided, &p),
            ("Deep thought".into(), "Answer".into(), 3)
        );
    }

    #[test]
    fn several_markers_in_one_chunk() {
        let p = [(3, "<think>x</think>y"), (4, " z")];
        assert_eq!(
            run(false, Phase::Undecided, &p),
            ("x".into(), "y z".into(), 0)
        );
    }

    #[test]
    fn a_marker_mentioned_in_the_answer_stays_there() {
        let p = [
            (6, "a"),
            (2, "</think>"),
            (8, "Use "),
            (1, "<think>"),
            (9, " and "),
            (2, "</think>"),
        ];
        assert_eq!(
            run(true, Phase::Thinking, &p),
            ("a".into(), "Use <think> and </think>".into(), 1)
        );
        let p = [(8, "Say <think>"), (9, "</think>")];
        assert_eq!(
            run(false, Phase::Undecided, &p),
            ("".into(), "Say <think></think>".into(), 0)
        );
    }

    #[test]
    fn end_marker_spelled_in_text_does_not_end_a_block_with_marker_tokens() {
        let p = [
            (6, "the tag </think>"),
            (7, " is"),
            (2, "</think>"),
            (8, "ok"),
        ];
        assert_eq!(
            run(true, Phase::Thinking, &p),
            ("the tag </think> is".into(), "ok".into(), 2)
        );
    }

    #[test]
    fn a_partial_marker_that_does_not_complete_is_released() {
        let p = [(3, "<th"), (4, "under")];
        assert_eq!(
            run(false, Phase::Undecided, &p),
            ("".into(), "<thunder".into(), 0)
        );
        let p = [(6, "a </"), (7, "b>")];
        assert_eq!(
            run(false, Phase::Thinking, &p),
            ("a </b>".into(), "".into(), 2)
        );
    }

    #[test]
    fn inner_whitespace_is_kept_and_released_when_text_follows() {
        let mut s = ReasoningSplitter::new(markers(true), Phase::Thinking, false);
        assert_eq!(s.push(Some(6), "one", false).reasoning, "one");
        assert_eq!(s.push(Some(5), "\n\n", false).reasoning, "");
        assert_eq!(s.push(Some(7), "two", false).reasoning, "\n\ntwo");
    }

    #[test]
    fn forced_tokens_are_not_counted() {
        let mut s = ReasoningSplitter::new(markers(true), Phase::Thinking, false);
        s.push(Some(6), "a", false);
        assert_eq!(s.push(Some(9), "\nDone.", true).reasoning, "\nDone.");
        let out = s.push(Some(2), "</think>", true);
        assert_eq!(out, Split::default());
        assert_eq!(s.reasoning_tokens(), 1);
        assert_eq!(s.phase(), Phase::Answer);
    }

    #[test]
    fn raw_mode_keeps_everything_in_the_content_and_still_counts() {
        let mut s = ReasoningSplitter::new(markers(true), Phase::Undecided, true);
        let mut c = String::new();
        for (id, t) in [(1, "<think>"), (6, "x"), (2, "</think>"), (8, "y")] {
            let out = s.push(Some(id), t, false);
            assert!(out.reasoning.is_empty());
            c.push_str(&out.content);
        }
        assert_eq!(c, "<think>x</think>y");
        assert_eq!(s.reasoning_tokens(), 1);
        let mut s = ReasoningSplitter::new(markers(false), Phase::Undecided, true);
        for t in ["<th", "ink>", "x", "</thi", "nk>y"] {
            s.push(Some(9), t, false);
        }
        assert_eq!(s.phase(), Phase::Answer);
    }

    #[test]
    fn phase_from_the_rendered_prompt() {
        let m = markers(true);
        assert_eq!(
            Phase::from_prompt("<|Assistant|><think>\n", &m),
            Phase::Thinking
        );
        assert_eq!(
            Phase::from_prompt("<|im_start|>assistant\n<think>\n\n</think>\n\n", &m),
            Phase::Answer
        );
        assert_eq!(
            Phase::from_prompt("<|im_start|>assistant\n", &m),
            Phase::Undecided
        );
    }

    #[test]
    fn closing_text_and_marker_pairs() {
        let m = markers(true);
        assert_eq!(m.closing_text(None), "\n</think>\n\n");
        assert_eq!(
            m.closing_text(Some(" Time to answer. ")),
            "\nTime to answer.\n</think>\n\n"
        );
        assert_eq!(
            Markers::parse_pair("<r>, </r>").unwrap(),
            ("<r>".to_string(), "</r>".to_string())
        );
        assert!(Markers::parse_pair("<r>").is_err());
        assert_eq!(partial_suffix("abc</th", "</think>"), 4);
        assert_eq!(partial_suffix("abc", "</think>"), 0);
        assert_eq!(partial_suffix("é<", "</think>"), 1);
    }
}
