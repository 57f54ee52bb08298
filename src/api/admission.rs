//! Who may hold how much of the queue. A client is an API key when the server has keys,
//! else the address it connects from; one client may hold at most `--max-per-client`
//! sequences (running or waiting), so that a single client looping on requests cannot
//! take every place in the queue from the others. Pure bookkeeping: the permit a request
//! gets is given back when its last choice is dropped (finished, or the client left).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Who sent a request (set by the authentication middleware).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// The index of the API key it presented.
    Key(usize),
    /// The peer's address (no keys configured).
    Addr(IpAddr),
    /// Neither is known (a request built in-process, as the tests do).
    Local,
}

/// Why a client may not queue a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request alone needs more than a client may ever hold.
    Never { asked: usize, limit: usize },
    /// The client already holds `held`; it may try again once some finish.
    Busy { held: usize, limit: usize },
}

/// The sequences each client holds.
#[derive(Debug)]
pub struct ClientSlots {
    /// None: no bound.
    limit: Option<usize>,
    held: Mutex<HashMap<ClientId, usize>>,
}

/// Places held by one request; dropping it gives them back.
#[derive(Debug)]
pub struct ClientPermit {
    slots: Arc<ClientSlots>,
    client: ClientId,
    count: usize,
}

impl ClientSlots {
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `count` places for `client`, or says why not.
    pub fn acquire(
        self: &Arc<Self>,
        client: &ClientId,
        count: usize,
    ) -> Result<ClientPermit, Refusal> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = held.get(client).copied().unwrap_or(0);
        if let Some(limit) = self.limit {
            if count > limit {
                return Err(Refusal::Never {
                    asked: count,
                    limit,
                });
            }
            if now + count > limit {
                return Err(Refusal::Busy { held: now, limit });
            }
        }
        held.insert(client.clone(), now + count);
        Ok(ClientPermit {
            slots: self.clone(),
            client: client.clone(),
            count,
        })
    }

    /// Places `client` holds now.
    pub fn held(&self, client: &ClientId) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(client).copied().unwrap_or(0)
    }

    /// Clients holding any place.
    pub fn clients(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.client) {
            *n = n.saturating_sub(self.count);
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> ClientId {
        ClientId::Addr(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn one_client_is_bounded_and_the_others_are_not_touched() {
        let slots = ClientSlots::new(Some(4));
        let a = slots.acquire(&addr(1), 3).unwrap();
        assert_eq!(
            slots.acquire(&addr(1), 2).unwrap_err(),
            Refusal::Busy { held: 3, limit: 4 }
        );
        // Another client still has its own four places.
        let b = slots.acquire(&addr(2), 4).unwrap();
        assert_eq!((slots.held(&addr(1)), slots.held(&addr(2))), (3, 4));
        let a2 = slots.acquire(&addr(1), 1).unwrap();
        drop(a);
        assert_eq!(slots.held(&addr(1)), 1);
        drop((a2, b));
        assert_eq!(slots.clients(), 0, "entries go when their last place does");
    }

    #[test]
    fn a_request_larger_than_the_bound_can_never_be_held() {
        let slots = ClientSlots::new(Some(4));
        assert_eq!(
            slots.acquire(&ClientId::Key(0), 5).unwrap_err(),
            Refusal::Never { asked: 5, limit: 4 }
        );
        assert_eq!(slots.held(&ClientId::Key(0)), 0, "a refusal holds nothing");
    }

    #[test]
    fn without_a_bound_everything_is_counted_and_nothing_refused() {
        let slots = ClientSlots::new(None);
        let permits: Vec<_> = (0..100)
            .map(|_| slots.acquire(&ClientId::Local, 10).unwrap())
            .collect();
        assert_eq!(slots.held(&ClientId::Local), 1000);
        drop(permits);
        assert_eq!(slots.clients(), 0);
    }
}
