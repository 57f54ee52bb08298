//! Finds tool calls in a choice's answer text as it streams (the thinking never reaches
//! it, so call-like text there stays thinking). A pure state machine: text in, pieces
//! out. Text that could be the start of a call is held back until it is known.
//!
//! How a call comes out depends on whether a grammar wrote it. A call the grammar
//! constrains (`tool_choice` `required` or a named function, or `auto` with a `strict`
//! tool) cannot be malformed, so it is given out as the model writes it: its name as
//! soon as the name is complete, then its arguments piece by piece. A call no grammar
//! constrains is held until it is whole and checked, so that a malformed or unfinished
//! one comes back as text instead of as a broken call. Either way what was streamed
//! joins to exactly the non-streamed answer.

use super::{ToolFormat, DS_CALLS_BEGIN, DS_CALLS_END, DS_CALL_BEGIN, DS_CALL_END, DS_SEP};
use serde_json::Value;

/// A piece of a choice's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolDelta {
    /// Answer text outside any call.
    Text(String),
    /// A call begins: its index among the choice's calls and its name.
    Start { index: usize, name: String },
    /// The next piece of call `index`'s arguments (JSON text).
    Arguments { index: usize, text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain answer text.
    Text,
    /// Inside a call (after its start marker), its name not read yet.
    Call,
    /// In a streamed call's arguments.
    Arguments(JsonEnd),
    /// After a streamed call's arguments: the markup that closes it.
    Tail,
    /// After the last call the format allows (or the one `parallel_tool_calls: false`
    /// allows): the rest is text.
    Done,
}

pub struct ToolCallParser {
    format: ToolFormat,
    /// At most one call.
    single: bool,
    /// Calls are given out as they are written (a grammar guarantees them).
    streamed: bool,
    state: State,
    /// Text not given out yet.
    buf: String,
    /// Calls begun so far.
    calls: usize,
    /// Whether any answer text was seen (Llama 3 calls are the whole answer).
    seen_text: bool,
}

impl ToolCallParser {
    /// `streamed`: the calls are constrained by a grammar, so they are given out as
    /// they are written.
    pub fn new(format: ToolFormat, parallel: bool, streamed: bool) -> Self {
        Self {
            format,
            single: !parallel,
            streamed,
            state: State::Text,
            buf: String::new(),
            calls: 0,
            seen_text: false,
        }
    }

    /// Calls begun so far.
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
                State::Arguments(scan) => self.scan_arguments(scan, &mut out),
                State::Tail => self.scan_tail(),
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
        match self.state {
            State::Call => match self.format {
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
            },
            // A streamed call cut by the token limit keeps what it had (as OpenAI's
            // calls do when `finish_reason` is "length"); its closing markup is dropped.
            State::Arguments(_) | State::Tail => self.buf.clear(),
            State::Text | State::Done => {
                let rest = std::mem::take(&mut self.buf);
                if self.calls == 0 || !rest.trim().is_empty() {
                    emit_text(&mut out, rest);
                }
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

    /// The marker that closes one call, for the formats that have one.
    fn end(&self) -> Option<&'static str> {
        match self.format {
            ToolFormat::Hermes => Some("</tool_call>"),
            ToolFormat::DeepSeek => Some(DS_CALL_END),
            ToolFormat::Mistral | ToolFormat::Llama3Json => None,
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

    /// In a call: a streamed one begins as soon as its name is read; any other waits
    /// for its end marker and is parsed whole.
    fn scan_call(&mut self, out: &mut Vec<ToolDelta>) -> bool {
        if self.streamed {
            match header(self.format, &self.buf) {
                Header::Incomplete => return false,
                Header::Found { name, len } => {
                    self.buf.drain(..len);
                    out.push(ToolDelta::Start {
                        index: self.calls,
                        name,
                    });
                    self.calls += 1;
                    self.state = State::Arguments(JsonEnd::default());
                    return true;
                }
                // Not written as the grammar writes it: read it whole.
                Header::Other => {}
            }
        }
        let Some(end) = self.end() else {
            // To the end of the answer: [`Self::finish`] parses them.
            return false;
        };
        let Some(at) = self.buf.find(end) else {
            return false;
        };
        let body = self.buf[..at].to_string();
        self.buf = self.buf[at + end.len()..].to_string();
        match self.parse_body(&body) {
            Some(calls) => {
                self.give(calls, out);
                self.state = self.after_call();
            }
            None => {
                let raw = format!("{}{end}", self.unparsed(&body));
                emit_text(out, raw);
                self.state = State::Text;
            }
        }
        true
    }

    fn after_call(&self) -> State {
        if self.single && self.calls > 0 {
            State::Done
        } else {
            State::Text
        }
    }

    /// In a streamed call's arguments: gives out what was written up to the end of the
    /// JSON object.
    fn scan_arguments(&mut self, mut scan: JsonEnd, out: &mut Vec<ToolDelta>) -> bool {
        let index = self.calls - 1;
        match scan.feed(&self.buf) {
            Some(len) => {
                let text: String = self.buf.drain(..len).collect();
                emit_arguments(out, index, text);
                self.state = State::Tail;
                true
            }
            None => {
                let text = std::mem::take(&mut self.buf);
                emit_arguments(out, index, text);
                self.state = State::Arguments(scan);
                false
            }
        }
    }

    /// After a streamed call's arguments: drops the markup that closes the call and
    /// goes on to the next call or to text.
    fn scan_tail(&mut self) -> bool {
        if let Some(end) = self.end() {
            let Some(at) = self.buf.find(end) else {
                return false;
            };
            self.buf.drain(..at + end.len());
            self.state = self.after_call();
            return true;
        }
        // Mistral's list and Llama 3's `;`-separated calls: `}` closes the call, then
        // a separator and the next call, or the end of the list.
        let t = self.buf.trim_start();
        let t = t.strip_prefix('}').unwrap_or(t).trim_start();
        let (next, rest) = match (self.format, t.chars().next()) {
            (_, None) => return false,
            (ToolFormat::Mistral, Some(',')) | (ToolFormat::Llama3Json, Some(';')) => {
                (State::Call, &t[1..])
            }
            (ToolFormat::Mistral, Some(']')) => (State::Done, &t[1..]),
            _ => (State::Done, t),
        };
        self.buf = rest.to_string();
        self.state = if next == State::Call && self.single {
            State::Done
        } else {
            next
        };
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
            out.push(ToolDelta::Start {
                index: self.calls,
                name,
            });
            out.push(ToolDelta::Arguments {
                index: self.calls,
                text: arguments,
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

/// What the start of a streamed call's text says.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// Its name, and the length of the markup before the arguments' opening `{`.
    Found { name: String, len: usize },
    /// Not enough text yet.
    Incomplete,
    /// Not a call as the grammar writes it.
    Other,
}

/// Reads the text before a call's arguments: `{"name": "NAME", "arguments": ` (the
/// key is `parameters` for Llama 3; Mistral's list may open with `[`), or DeepSeek's
/// `function<sep>NAME` and the opening of its JSON block.
fn header(format: ToolFormat, text: &str) -> Header {
    let mut c = Cursor { text, at: 0 };
    let found = (|| -> Result<String, Header> {
        if format == ToolFormat::DeepSeek {
            c.space();
            c.literal("function")?;
            c.literal(DS_SEP)?;
            let line = c.text[c.at..].find('\n').ok_or(Header::Incomplete)?;
            let name = c.text[c.at..c.at + line].trim().to_string();
            c.at += line;
            c.literal("\n```json")?;
            c.space();
            c.peek('{')?;
            return Ok(name);
        }
        c.space();
        if format == ToolFormat::Mistral && c.text[c.at..].starts_with('[') {
            c.at += 1;
            c.space();
        }
        c.literal("{")?;
        c.space();
        c.literal("\"name\"")?;
        c.space();
        c.literal(":")?;
        c.space();
        let name = c.string()?;
        c.space();
        c.literal(",")?;
        c.space();
        let key = match format {
            ToolFormat::Llama3Json => "\"parameters\"",
            _ => "\"arguments\"",
        };
        c.literal(key)?;
        c.space();
        c.literal(":")?;
        c.space();
        c.peek('{')?;
        Ok(name)
    })();
    match found {
        Ok(name) if !name.is_empty() => Header::Found { name, len: c.at },
        Ok(_) => Header::Other,
        Err(h) => h,
    }
}

/// A position in a call's text, read piece by piece.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    /// Moves past `lit`; Incomplete when the text ends inside it.
    fn literal(&mut self, lit: &str) -> Result<(), Header> {
        let rest = &self.text[self.at..];
        if rest.starts_with(lit) {
            self.at += lit.len();
            Ok(())
        } else if lit.starts_with(rest) {
            Err(Header::Incomplete)
        } else {
            Err(Header::Other)
        }
    }

    /// The next character is `ch` (not consumed).
    fn peek(&self, ch: char) -> Result<(), Header> {
        match self.text[self.at..].chars().next() {
            None => Err(Header::Incomplete),
            Some(c) if c == ch => Ok(()),
            Some(_) => Err(Header::Other),
        }
    }

    /// A JSON string.
    fn string(&mut self) -> Result<String, Header> {
        self.peek('"')?;
        let rest = &self.text[self.at..];
        let mut escaped = false;
        for (i, ch) in rest.char_indices().skip(1) {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    let s = serde_json::from_str(&rest[..=i]).map_err(|_| Header::Other)?;
                    self.at += i + 1;
                    return Ok(s);
                }
                _ => {}
            }
        }
        Err(Header::Incomplete)
    }
}

/// Finds where a JSON object ends in text given piece by piece (the grammar has made
/// it well-formed; only its nesting and strings are followed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct JsonEnd {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl JsonEnd {
    /// The length of `text` up to and with the object's closing `}`, or None when the
    /// object goes on past it.
    fn feed(&mut self, text: &str) -> Option<usize> {
        for (i, b) in text.bytes().enumerate() {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
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

fn emit_arguments(out: &mut Vec<ToolDelta>, index: usize, text: String) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(ToolDelta::Arguments { index: i, text: t }) if *i == index => t.push_str(&text),
        _ => out.push(ToolDelta::Arguments { index, text }),
    }
}

#[cfg(test)]
mod tests;
