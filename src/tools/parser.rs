//! Finds tool calls in a choice's answer text as it streams (the thinking never reaches
//! it, so call-like text there stays thinking). A pure state machine: text in, pieces
//! out. Text that could be the start of a call is held back until it is known; a call
//! is given out once whole and well-formed (its name, then its arguments as one piece),
//! so that what was streamed always joins to the non-streamed answer. A call the model
//! leaves malformed or unfinished is returned as text.

use super::{ToolFormat, DS_CALLS_BEGIN, DS_CALLS_END, DS_CALL_BEGIN, DS_CALL_END, DS_SEP};
use serde_json::Value;

/// A piece of a choice's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolDelta {
    /// Answer text outside any call.
    Text(String),
    /// A whole call: its index among the choice's calls, name and arguments (JSON text).
    Call {
        index: usize,
        name: String,
        arguments: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain answer text.
    Text,
    /// Inside a call (after its start marker).
    Call,
    /// After the last call the format allows (or the one `parallel_tool_calls: false`
    /// allows): the rest is text.
    Done,
}

pub struct ToolCallParser {
    format: ToolFormat,
    /// At most one call.
    single: bool,
    state: State,
    /// Text not given out yet.
    buf: String,
    /// Calls given out so far.
    calls: usize,
    /// Whether any answer text was seen (Llama 3 calls are the whole answer).
    seen_text: bool,
}

impl ToolCallParser {
    pub fn new(format: ToolFormat, parallel: bool) -> Self {
        Self {
            format,
            single: !parallel,
            state: State::Text,
            buf: String::new(),
            calls: 0,
            seen_text: false,
        }
    }

    /// Calls found so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Takes the next piece of answer text.
    pub fn push(&mut self, text: &str) -> Vec<ToolDelta> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        loop {
            let progressed = match self.state {
                State::Text => self.scan_text(&mut out),
                State::Call => self.scan_call(&mut out),
                State::Done => {
                    emit_text(&mut out, std::mem::take(&mut self.buf));
                    false
                }
            };
            if !progressed {
                return out;
            }
        }
    }

    /// The answer is over: what is held back is given out.
    pub fn finish(&mut self) -> Vec<ToolDelta> {
        let mut out = Vec::new();
        if self.state == State::Call {
            match self.format {
                // These formats run to the end of the answer.
                ToolFormat::Mistral | ToolFormat::Llama3Json => {
                    let body = std::mem::take(&mut self.buf);
                    match self.parse_body(&body) {
                        Some(calls) => self.give(calls, &mut out),
                        None => emit_text(&mut out, self.unparsed(&body)),
                    }
                }
                // Cut before its end marker: the call is text.
                ToolFormat::Hermes | ToolFormat::DeepSeek => {
                    let body = std::mem::take(&mut self.buf);
                    emit_text(&mut out, self.unparsed(&body));
                }
            }
        } else {
            let rest = std::mem::take(&mut self.buf);
            if self.calls == 0 || !rest.trim().is_empty() {
                emit_text(&mut out, rest);
            }
        }
        self.state = State::Done;
        out
    }

    /// The markers looked for in text: the first opens a call; DeepSeek's list markers
    /// around its calls are dropped.
    fn starts(&self) -> &'static [&'static str] {
        match self.format {
            ToolFormat::Hermes => &["<tool_call>"],
            ToolFormat::Mistral => &["[TOOL_CALLS]"],
            ToolFormat::Llama3Json => &["<|python_tag|>"],
            ToolFormat::DeepSeek => &[DS_CALL_BEGIN, DS_CALLS_BEGIN, DS_CALLS_END],
        }
    }

    /// In text: gives out what cannot start a call and enters a call at its marker.
    fn scan_text(&mut self, out: &mut Vec<ToolDelta>) -> bool {
        // Llama 3 without its tag: an answer that is a JSON object is a call.
        if self.format == ToolFormat::Llama3Json && !self.seen_text {
            let t = self.buf.trim_start();
            if t.is_empty() {
                return false;
            }
            self.seen_text = true;
            if t.starts_with('{') {
                self.buf = t.to_string();
                self.state = State::Call;
                return true;
            }
        }
        self.seen_text |= !self.buf.trim().is_empty();
        let found = self
            .starts()
            .iter()
            .filter_map(|m| self.buf.find(m).map(|at| (at, *m)))
            .min();
        match found {
            Some((at, marker)) => {
                let before = self.buf[..at].to_string();
                let after = self.buf[at + marker.len()..].to_string();
                // Whitespace between calls and around them is markup, not answer.
                if self.calls == 0 || !before.trim().is_empty() {
                    emit_text(out, before);
                }
                self.buf = after;
                // DeepSeek's list markers only wrap the calls; each opens with its own.
                if marker != DS_CALLS_BEGIN && marker != DS_CALLS_END {
                    self.state = State::Call;
                }
                true
            }
            None => {
                let keep = self.held_back();
                let ready = &self.buf[..self.buf.len() - keep];
                // After a call, whitespace may only separate it from the next one.
                if self.calls > 0 && ready.trim().is_empty() {
                    return false;
                }
                let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                emit_text(out, text);
                false
            }
        }
    }

    /// Bytes at the end of the buffer that may be the beginning of a start marker.
    fn held_back(&self) -> usize {
        let mut keep = 0;
        for m in self.starts() {
            for len in (1..m.len()).rev() {
                if len > keep
                    && self.buf.len() >= len
                    && self.buf.is_char_boundary(self.buf.len() - len)
                    && m.starts_with(&self.buf[self.buf.len() - len..])
                {
                    keep = len;
                }
            }
        }
        keep
    }

    /// In a call: waits for its end marker, then parses it.
    fn scan_call(&mut self, out: &mut Vec<ToolDelta>) -> bool {
        let end = match self.format {
            ToolFormat::Hermes => "</tool_call>",
            ToolFormat::DeepSeek => DS_CALL_END,
            // To the end of the answer: [`Self::finish`] parses them.
            ToolFormat::Mistral | ToolFormat::Llama3Json => return false,
        };
        let Some(at) = self.buf.find(end) else {
            return false;
        };
        let body = self.buf[..at].to_string();
        self.buf = self.buf[at + end.len()..].to_string();
        match self.parse_body(&body) {
            Some(calls) => {
                self.give(calls, out);
                self.state = if self.single && self.calls > 0 {
                    State::Done
                } else {
                    State::Text
                };
            }
            None => {
                let raw = format!("{}{end}", self.unparsed(&body));
                emit_text(out, raw);
                self.state = State::Text;
            }
        }
        true
    }

    /// The text of a call that did not parse, with the marker that opened it.
    fn unparsed(&self, body: &str) -> String {
        match self.format {
            ToolFormat::Llama3Json if !body.trim_start().starts_with('{') => {
                format!("<|python_tag|>{body}")
            }
            ToolFormat::Llama3Json => body.to_string(),
            _ => format!("{}{body}", self.starts()[0]),
        }
    }

    fn give(&mut self, calls: Vec<(String, String)>, out: &mut Vec<ToolDelta>) {
        for (name, arguments) in calls {
            if self.single && self.calls > 0 {
                break;
            }
            out.push(ToolDelta::Call {
                index: self.calls,
                name,
                arguments,
            });
            self.calls += 1;
        }
    }

    /// The calls in a call's text, or None when it is malformed.
    fn parse_body(&self, body: &str) -> Option<Vec<(String, String)>> {
        match self.format {
            ToolFormat::Hermes => Some(vec![named_call(
                &serde_json::from_str(body.trim()).ok()?,
                "arguments",
            )?]),
            ToolFormat::Mistral => {
                let v: Value = serde_json::from_str(body.trim()).ok()?;
                let items = match v {
                    Value::Array(items) => items,
                    one @ Value::Object(_) => vec![one],
                    _ => return None,
                };
                items.iter().map(|c| named_call(c, "arguments")).collect()
            }
            ToolFormat::Llama3Json => {
                // One call, or several separated by `;`.
                let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
                let v = stream.next()?.ok()?;
                let key = if v.get("parameters").is_some() {
                    "parameters"
                } else {
                    "arguments"
                };
                let first = named_call(&v, key)?;
                let rest = body[stream.byte_offset()..].trim();
                match rest.strip_prefix(';') {
                    None if rest.is_empty() => Some(vec![first]),
                    None => None,
                    Some(more) => {
                        let more = self.parse_body(more)?;
                        Some(std::iter::once(first).chain(more).collect())
                    }
                }
            }
            ToolFormat::DeepSeek => {
                let rest = body.trim_start().strip_prefix("function")?;
                let rest = rest.strip_prefix(DS_SEP)?;
                let (name, rest) = rest.split_once('\n')?;
                let json = rest
                    .trim()
                    .strip_prefix("```json")?
                    .trim_end()
                    .strip_suffix("```")?
                    .trim();
                let args: Value = serde_json::from_str(json).ok()?;
                args.is_object()
                    .then(|| vec![(name.trim().to_string(), json.to_string())])
            }
        }
    }
}

/// `{"name": ..., key: {...}}` as a call: the name, and the arguments as JSON text (as
/// written when they are a JSON string, else serialized).
fn named_call(v: &Value, key: &str) -> Option<(String, String)> {
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get(key) {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) if serde_json::from_str::<Value>(s).is_ok_and(|a| a.is_object()) => {
            s.clone()
        }
        Some(a @ Value::Object(_)) => a.to_string(),
        Some(_) => return None,
    };
    Some((name, arguments))
}

fn emit_text(out: &mut Vec<ToolDelta>, text: String) {
    if text.is_empty() {
        return;
    }
    if let Some(ToolDelta::Text(t)) = out.last_mut() {
        t.push_str(&text);
    } else {
        out.push(ToolDelta::Text(text));
    }
}

#[cfg(test)]
mod tests;
