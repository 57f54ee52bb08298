//! One response's output, built from the engine's pieces as they come: the thinking
//! becomes a `reasoning` item, the answer `message` items with one `output_text` part,
//! and the calls the model writes (read by [`crate::tools::parser`], as on chat)
//! `function_call` items. Each piece yields the stream events that say it; a
//! non-streamed response runs the same machine and keeps only the items, so that the
//! streamed events always add up to the non-streamed output.

use crate::api::tool_calls::ToolPlan;
use crate::engine::params::FinishReason;
use crate::openai::new_tool_call_id;
use crate::openai::responses::{
    new_id, Content, Event, FunctionCall, Item, Message, Reasoning, Status,
    FUNCTION_CALL_ID_PREFIX, MESSAGE_ID_PREFIX, REASONING_ID_PREFIX,
};
use crate::tools::parser::{ToolCallParser, ToolDelta};

/// The output items of one response, and which one is being written.
pub struct Output {
    items: Vec<Item>,
    /// Index of the item still being written, if any.
    open: Option<usize>,
    /// Reads the answer for calls, when the request offers tools.
    parser: Option<ToolCallParser>,
    /// The output index of each call, by the parser's numbering.
    calls: Vec<usize>,
}

impl Output {
    pub fn new(tools: Option<ToolPlan>) -> Self {
        Self {
            items: Vec::new(),
            open: None,
            parser: tools.map(|p| ToolCallParser::new(p.format, p.parallel, p.constrained)),
            calls: Vec::new(),
        }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn into_items(self) -> Vec<Item> {
        self.items
    }

    /// A piece of thinking.
    pub fn reasoning(&mut self, text: &str) -> Vec<Event> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut events = Vec::new();
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Reasoning(_)) => i,
            _ => {
                events.extend(self.close(Status::Completed));
                let item = Item::Reasoning(Reasoning {
                    id: new_id(REASONING_ID_PREFIX),
                    status: Status::InProgress,
                    summary: Vec::new(),
                    content: Vec::new(),
                });
                events.extend(self.open_with_part(
                    item,
                    Content::ReasoningText {
                        text: String::new(),
                    },
                ));
                self.items.len() - 1
            }
        };
        let Item::Reasoning(r) = &mut self.items[index] else {
            unreachable!("the open item is the reasoning")
        };
        r.content[0].push_str(text);
        events.push(Event::ReasoningTextDelta {
            item_id: r.id.clone(),
            output_index: index,
            content_index: 0,
            delta: text.to_string(),
        });
        events
    }

    /// A piece of the answer: message text, or calls when the request offers tools.
    pub fn answer(&mut self, text: &str) -> Vec<Event> {
        match &mut self.parser {
            None => self.text(text),
            Some(parser) => {
                let pieces = parser.push(text);
                self.pieces(pieces)
            }
        }
    }

    /// The end of the generation: what the parser held back, then every open item closed
    /// (the last one `incomplete` when the generation was cut). An answer that said
    /// nothing at all is an empty message.
    pub fn finish(&mut self, finish: FinishReason) -> Vec<Event> {
        let mut events = match self.parser.as_mut().map(ToolCallParser::finish) {
            Some(pieces) => self.pieces(pieces),
            None => Vec::new(),
        };
        let answered = self
            .items
            .iter()
            .any(|i| matches!(i, Item::Message(_) | Item::FunctionCall(_)));
        if !answered && finish == FinishReason::Stop {
            events.extend(self.close(Status::Completed));
            events.extend(self.open_message());
        }
        let status = match finish {
            FinishReason::Stop => Status::Completed,
            _ => Status::Incomplete,
        };
        events.extend(self.close(status));
        events
    }

    /// Whether the model called a function.
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The text of every `output_text` part.
    pub fn output_text(&self) -> String {
        output_text(&self.items)
    }

    fn pieces(&mut self, pieces: Vec<ToolDelta>) -> Vec<Event> {
        let mut events = Vec::new();
        for piece in pieces {
            match piece {
                ToolDelta::Text(t) => events.extend(self.text(&t)),
                ToolDelta::Start { name, .. } => {
                    events.extend(self.close(Status::Completed));
                    self.calls.push(self.items.len());
                    let item = Item::FunctionCall(FunctionCall {
                        id: new_id(FUNCTION_CALL_ID_PREFIX),
                        call_id: new_tool_call_id(),
                        name,
                        arguments: String::new(),
                        status: Status::InProgress,
                    });
                    events.push(Event::OutputItemAdded {
                        output_index: self.items.len(),
                        item: item.clone(),
                    });
                    self.open = Some(self.items.len());
                    self.items.push(item);
                }
                ToolDelta::Arguments { index, text } => {
                    let Some(&at) = self.calls.get(index) else {
                        continue;
                    };
                    let Item::FunctionCall(c) = &mut self.items[at] else {
                        continue;
                    };
                    c.arguments.push_str(&text);
                    events.push(Event::FunctionCallArgumentsDelta {
                        item_id: c.id.clone(),
                        output_index: at,
                        delta: text,
                    });
                }
            }
        }
        events
    }

    fn text(&mut self, text: &str) -> Vec<Event> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut events = Vec::new();
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Message(_)) => i,
            _ => {
                events.extend(self.close(Status::Completed));
                events.extend(self.open_message());
                self.items.len() - 1
            }
        };
        let Item::Message(m) = &mut self.items[index] else {
            unreachable!("the open item is the message")
        };
        m.content[0].push_str(text);
        events.push(Event::OutputTextDelta {
            item_id: m.id.clone(),
            output_index: index,
            content_index: 0,
            delta: text.to_string(),
            logprobs: Vec::new(),
        });
        events
    }

    fn open_message(&mut self) -> Vec<Event> {
        let item = Item::Message(Message {
            id: new_id(MESSAGE_ID_PREFIX),
            role: "assistant".into(),
            status: Status::InProgress,
            content: Vec::new(),
        });
        self.open_with_part(item, Content::output_text(String::new()))
    }

    /// Adds an item (announced without parts) and its one part.
    fn open_with_part(&mut self, item: Item, part: Content) -> Vec<Event> {
        let output_index = self.items.len();
        let mut events = vec![Event::OutputItemAdded {
            output_index,
            item: item.clone(),
        }];
        events.push(Event::ContentPartAdded {
            item_id: item.id().to_string(),
            output_index,
            content_index: 0,
            part: part.clone(),
        });
        let mut item = item;
        match &mut item {
            Item::Message(m) => m.content.push(part),
            Item::Reasoning(r) => r.content.push(part),
            Item::FunctionCall(_) | Item::FunctionCallOutput(_) => {}
        }
        self.items.push(item);
        self.open = Some(output_index);
        events
    }

    /// Closes the open item with `status`: its text's `.done`, its part's, its own.
    fn close(&mut self, status: Status) -> Vec<Event> {
        let Some(index) = self.open.take() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let item = &mut self.items[index];
        match item {
            Item::Reasoning(r) => {
                r.status = status;
                let part = r.content[0].clone();
                events.push(Event::ReasoningTextDone {
                    item_id: r.id.clone(),
                    output_index: index,
                    content_index: 0,
                    text: part.text().to_string(),
                });
                events.push(Event::ContentPartDone {
                    item_id: r.id.clone(),
                    output_index: index,
                    content_index: 0,
                    part,
                });
            }
            Item::Message(m) => {
                m.status = status;
                let part = m.content[0].clone();
                events.push(Event::OutputTextDone {
                    item_id: m.id.clone(),
                    output_index: index,
                    content_index: 0,
                    text: part.text().to_string(),
                    logprobs: Vec::new(),
                });
                events.push(Event::ContentPartDone {
                    item_id: m.id.clone(),
                    output_index: index,
                    content_index: 0,
                    part,
                });
            }
            Item::FunctionCall(c) => {
                c.status = status;
                events.push(Event::FunctionCallArgumentsDone {
                    item_id: c.id.clone(),
                    output_index: index,
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                });
            }
            Item::FunctionCallOutput(_) => {}
        }
        events.push(Event::OutputItemDone {
            output_index: index,
            item: item.clone(),
        });
        events
    }
}

/// The text of every `output_text` part of `items`, joined (`output_text`).
pub fn output_text(items: &[Item]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Message(m) => Some(m.content.iter().map(Content::text).collect::<String>()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ToolFormat;

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::name).collect()
    }

    #[test]
    fn thinking_then_answer() {
        let mut out = Output::new(None);
        let mut events = out.reasoning("Let me ");
        events.extend(out.reasoning("think."));
        events.extend(out.answer("Four"));
        events.extend(out.answer("."));
        events.extend(out.finish(FinishReason::Stop));
        assert_eq!(
            names(&events),
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
            ]
        );
        let items = out.items();
        let (Item::Reasoning(r), Item::Message(m)) = (&items[0], &items[1]) else {
            panic!("{items:?}")
        };
        assert_eq!(
            (r.content[0].text(), r.status),
            ("Let me think.", Status::Completed)
        );
        assert_eq!(
            (m.content[0].text(), m.status),
            ("Four.", Status::Completed)
        );
        assert_eq!(out.output_text(), "Four.");
    }

    #[test]
    fn cut_inside_the_thinking_is_an_incomplete_reasoning_item_alone() {
        let mut out = Output::new(None);
        out.reasoning("Hmm");
        out.finish(FinishReason::Length);
        let [Item::Reasoning(r)] = out.items() else {
            panic!("{:?}", out.items())
        };
        assert_eq!(r.status, Status::Incomplete);
        // Nothing at all, ended by the model: one empty message.
        let mut out = Output::new(None);
        let events = out.finish(FinishReason::Stop);
        assert_eq!(events.len(), 5, "{:?}", names(&events));
        assert!(matches!(out.items(), [Item::Message(_)]));
    }

    #[test]
    fn calls_become_function_call_items() {
        let plan = ToolPlan {
            format: ToolFormat::Hermes,
            parallel: true,
            constrained: false,
        };
        let mut out = Output::new(Some(plan));
        let mut events = out.answer("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}");
        events.extend(out.answer("\n</tool_call>"));
        events.extend(out.finish(FinishReason::Stop));
        assert!(out.has_calls());
        let [Item::FunctionCall(c)] = out.items() else {
            panic!("{:?}", out.items())
        };
        assert_eq!((c.name.as_str(), c.status), ("f", Status::Completed));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&c.arguments).unwrap()["a"],
            1
        );
        assert!(c.call_id.starts_with("call_") && c.id.starts_with("fc_"));
        let args: String = events
            .iter()
            .filter_map(|e| match e {
                Event::FunctionCallArgumentsDelta { delta, .. } => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(args, c.arguments);
        assert_eq!(names(&events).last(), Some(&"response.output_item.done"));
    }
}
