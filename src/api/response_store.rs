//! The responses kept for `previous_response_id` and `GET /v1/responses/{id}`: at most
//! `--responses-store` of them in memory, the least recently used evicted first. A
//! stored response belongs to the API key that created it when the server has keys;
//! another key neither sees nor deletes it. Pure bookkeeping: what a response holds is
//! the endpoint's ([`super::responses`]).

use crate::api::admission::ClientId;
use crate::openai::responses::{Item, Response};
use indexmap::IndexMap;
use std::sync::{Arc, Mutex};

/// Responses kept by default (`--responses-store`).
pub const DEFAULT_CAPACITY: usize = 100;

/// One stored response.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub response: Response,
    /// The request's own input items, as `input_items` lists them.
    pub input: Vec<Item>,
    /// The conversation a follow-up continues: the earlier turns, this request's input
    /// and its output (instructions are not carried over).
    pub conversation: Vec<Item>,
}

/// Who may see a response: the key that created it, or anyone when there are no keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner(Option<usize>);

impl Owner {
    pub fn of(client: &ClientId) -> Self {
        match client {
            ClientId::Key(i) => Owner(Some(*i)),
            ClientId::Addr(_) | ClientId::Local => Owner(None),
        }
    }
}

/// The bounded store.
#[derive(Debug)]
pub struct ResponseStore {
    capacity: usize,
    /// Oldest use first.
    entries: Mutex<IndexMap<String, (Owner, Arc<StoredResponse>)>>,
}

impl ResponseStore {
    /// A store of at most `capacity` responses; 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(IndexMap::new()),
        }
    }

    /// Whether responses are kept at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Keeps a response, evicting the least recently used beyond the bound.
    pub fn insert(&self, owner: Owner, stored: StoredResponse) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let id = stored.response.id.clone();
        entries.shift_remove(&id);
        entries.insert(id, (owner, Arc::new(stored)));
        while entries.len() > self.capacity {
            entries.shift_remove_index(0);
        }
    }

    /// The response `id` if `owner` may see it; a use, so it moves to the back.
    pub fn get(&self, id: &str, owner: Owner) -> Option<Arc<StoredResponse>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let index = entries.get_index_of(id)?;
        if entries[index].0 != owner {
            return None;
        }
        let last = entries.len() - 1;
        entries.move_index(index, last);
        Some(entries[last].1.clone())
    }

    /// Forgets the response `id` if `owner` may see it; says whether it did.
    pub fn remove(&self, id: &str, owner: Owner) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(id) {
            Some((o, _)) if *o == owner => {
                entries.shift_remove(id);
                true
            }
            _ => false,
        }
    }

    /// Responses kept now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::responses::{
        ReasoningSettings, Status, TextFormat, TextSettings, ToolChoice,
    };

    fn stored(id: &str) -> StoredResponse {
        StoredResponse {
            response: Response {
                id: id.into(),
                object: "response",
                created_at: 0,
                status: Status::Completed,
                completed_at: Some(0),
                error: None,
                incomplete_details: None,
                instructions: None,
                max_output_tokens: None,
                model: "m".into(),
                output: vec![],
                output_text: String::new(),
                parallel_tool_calls: true,
                previous_response_id: None,
                reasoning: ReasoningSettings::default(),
                store: true,
                temperature: 1.0,
                text: TextSettings {
                    format: TextFormat::Text,
                },
                tool_choice: ToolChoice::Mode("auto".into()),
                tools: vec![],
                top_p: 1.0,
                truncation: "disabled",
                usage: None,
                user: None,
                safety_identifier: None,
                metadata: Default::default(),
                background: false,
            },
            input: vec![],
            conversation: vec![],
        }
    }

    const ANYONE: Owner = Owner(None);

    #[test]
    fn the_least_recently_used_goes_first() {
        let store = ResponseStore::new(2);
        store.insert(ANYONE, stored("a"));
        store.insert(ANYONE, stored("b"));
        assert!(store.get("a", ANYONE).is_some(), "a is now the most recent");
        store.insert(ANYONE, stored("c"));
        assert_eq!(store.len(), 2);
        assert!(
            store.get("b", ANYONE).is_none(),
            "b was the least recently used"
        );
        assert!(store.get("a", ANYONE).is_some() && store.get("c", ANYONE).is_some());
    }

    #[test]
    fn a_key_sees_and_deletes_only_its_own() {
        let store = ResponseStore::new(4);
        let (alice, bob) = (Owner::of(&ClientId::Key(0)), Owner::of(&ClientId::Key(1)));
        store.insert(alice, stored("a"));
        assert!(store.get("a", bob).is_none());
        assert!(!store.remove("a", bob));
        assert!(store.get("a", alice).is_some());
        assert!(store.remove("a", alice));
        assert!(store.get("a", alice).is_none() && store.is_empty());
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let store = ResponseStore::new(0);
        assert!(!store.enabled());
        store.insert(ANYONE, stored("a"));
        assert!(store.is_empty() && store.get("a", ANYONE).is_none());
    }
}
