//! Continuous batching, decided: who runs in the next forward pass and with how many
//! tokens. Pure bookkeeping over token counts and KV blocks, no tensors: the engine
//! thread ([`super::worker`]) runs what it decides.
//!
//! Waiting sequences join the batch first come, first served, up to `max_running`,
//! taking what the prefix cache holds of their prompt: full cached blocks, then a copy of
//! the cached block that continues them the longest way (the copy is done by the runner
//! before the next forward pass). Each step runs every running decode (one token each)
//! plus prompt chunks of the sequences still prefilling, under a per-step token budget
//! (`max_batch_tokens`), so a long prompt arriving does not freeze the other streams.
//! When the block pool runs out, the newest running sequence is preempted: its blocks
//! are released and it waits again, to be recomputed (often straight from the prefix
//! cache). Without a block pool (devices the paged cache does not cover) only
//! `max_running` and the token budget apply.

use crate::engine::blocks::{block_hash, prefix_hashes, BlockManager, BlockStats, ROOT};
use crate::engine::sequence::Sequence;
use std::collections::VecDeque;

/// How much of a sequence's tokens may come from the prefix cache: all but the last,
/// and none from the position before the first prompt token still to be scored.
fn reusable_prefix<P>(s: &Sequence<P>) -> usize {
    let all_but_last = s.tokens.len() - 1;
    s.score_from
        .map_or(all_but_last, |f| all_but_last.min(f.saturating_sub(1)))
}

/// The limits the scheduler keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sequences in the running batch.
    pub max_running: usize,
    /// Tokens one forward pass may process (decodes count one each).
    pub max_batch_tokens: usize,
}

/// One forward pass, decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// (index in [`Scheduler::running`], tokens to feed), decodes first.
    pub batch: Vec<(usize, usize)>,
    /// KV blocks to copy (source, destination), in order, before the pass.
    pub copies: Vec<(u32, u32)>,
    /// Sequences preempted to make room.
    pub preempted: usize,
}

/// A sequence's first admission: its prompt and how much of it the prefix cache held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub prompt_tokens: usize,
    /// Prompt tokens taken from the prefix cache.
    pub cached_tokens: usize,
}

pub struct Scheduler<P> {
    limits: Limits,
    /// The paged KV pool's bookkeeping and prefix cache.
    blocks: BlockManager,
    waiting: VecDeque<Sequence<P>>,
    running: Vec<Sequence<P>>,
    next_id: u64,
    /// Copies decided at admission, handed out with the next step.
    copies: Vec<(u32, u32)>,
}

impl<P> Scheduler<P> {
    pub fn new(limits: Limits, blocks: BlockManager) -> Self {
        Self {
            limits,
            blocks,
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_id: 0,
            copies: Vec::new(),
        }
    }

    /// Most tokens one sequence may hold: `context`, and the whole pool.
    pub fn capacity_tokens(&self, context: usize) -> usize {
        context.min(self.blocks.num_blocks() * self.blocks.block_size())
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    pub fn running(&self) -> &[Sequence<P>] {
        &self.running
    }

    pub fn running_mut(&mut self) -> &mut [Sequence<P>] {
        &mut self.running
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub fn block_stats(&self) -> BlockStats {
        self.blocks.stats()
    }

    /// Queues a new sequence; returns its id. `score_prompt`: the logits of every prompt
    /// position are wanted (prompt logprobs), so none is taken from the prefix cache.
    pub fn enqueue(
        &mut self,
        request: u64,
        prompt: Vec<u32>,
        score_prompt: bool,
        payload: P,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.push_back(Sequence {
            id,
            request,
            prompt_len: prompt.len(),
            score_from: (score_prompt && prompt.len() > 1).then_some(1),
            tokens: prompt,
            computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            cached_tokens: None,
            payload,
        });
        id
    }

    /// Takes out every sequence, waiting or running, that `leave` picks, releasing its
    /// blocks; each comes with whether it was running.
    pub fn remove_where(
        &mut self,
        mut leave: impl FnMut(&Sequence<P>) -> bool,
    ) -> Vec<(Sequence<P>, bool)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            if leave(&self.waiting[i]) {
                let s = self.waiting.remove(i).expect("index in range");
                out.push((s, false));
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.running.len() {
            if leave(&self.running[i]) {
                let mut s = self.running.remove(i);
                self.release(&mut s);
                out.push((s, true));
            } else {
                i += 1;
            }
        }
        out
    }

    /// Takes a running sequence out of the batch (it finished or failed), releasing its
    /// blocks. `keep_partial`: its last, partly filled block stays in the prefix cache.
    pub fn finish(&mut self, index: usize, keep_partial: bool) -> Sequence<P> {
        let mut s = self.running.remove(index);
        if keep_partial {
            self.release(&mut s);
        } else {
            self.blocks.release(&s.blocks);
            s.blocks.clear();
        }
        s
    }

    /// Releases a sequence's blocks, its last, partly filled block left registered for a
    /// later prompt that continues the same prefix the same way.
    fn release(&mut self, s: &mut Sequence<P>) {
        let blocks = &mut self.blocks;
        let bs = blocks.block_size();
        let full = s.computed / bs;
        if !s.computed.is_multiple_of(bs) && s.blocks.len() > full && s.hashes.len() >= full {
            let parent = if full == 0 { ROOT } else { s.hashes[full - 1] };
            blocks.register_partial(s.blocks[full], parent, &s.tokens[full * bs..s.computed]);
        }
        blocks.release(&s.blocks);
        s.blocks.clear();
    }

    /// First come, first served: admits waiting sequences while there is room. A later
    /// choice of a request waits (without holding up others) until the first has computed
    /// the prompt, then takes the prompt's blocks from the prefix cache. Returns the
    /// first admissions.
    pub fn admit(&mut self) -> Vec<Admitted> {
        let mut admitted = Vec::new();
        let mut i = 0;
        while self.running.len() < self.limits.max_running && i < self.waiting.len() {
            let blocks = &mut self.blocks;
            let cand = &self.waiting[i];
            let sibling_prefilling = self
                .running
                .iter()
                .any(|r| r.request == cand.request && r.prefilling());
            if sibling_prefilling {
                i += 1;
                continue;
            }
            let bs = blocks.block_size();
            // Reuse full cached blocks, then a copy of the cached block that continues them
            // the longest way, leaving at least one token to compute for logits (and every
            // position whose logits score a prompt token still to be reported).
            let reusable = reusable_prefix(cand);
            let known = &cand.tokens[..reusable];
            let hashes = prefix_hashes(known, bs);
            let (hit, unheld) = blocks.cached_prefix(&hashes, known);
            // A prompt whose next block a running prompt is about to compute waits a step
            // for it, then takes it from the cache instead of computing it again (prompts
            // arriving together usually share a chat template's system prompt).
            let next_end = (hit + 1) * bs;
            let budget = self.limits.max_batch_tokens;
            let computed_soon = next_end <= known.len()
                && self.running.iter().any(|r| {
                    r.prefilling()
                        && r.computed < next_end
                        && r.computed + budget >= next_end
                        && r.tokens.len() > next_end
                        && r.tokens[..next_end] == known[..next_end]
                });
            if computed_soon {
                i += 1;
                continue;
            }
            let parent = if hit == 0 { ROOT } else { hashes[hit - 1] };
            let partial = blocks.best_child(parent, &known[hit * bs..]);
            let start = hit * bs + partial.map_or(0, |(_, n)| n);
            let first_chunk = (cand.tokens.len() - start).min(budget);
            let need = blocks.blocks_for(start + first_chunk) - hit;
            // Taking the unheld cached blocks (and holding the copy's source while its
            // copy is allocated) makes them unavailable to the new ones.
            let source_unheld = partial.is_some_and(|(b, _)| blocks.is_unheld(b));
            if blocks.available() < need + unheld + usize::from(source_unheld) {
                break;
            }
            let mut s = self.waiting.remove(i).expect("index in range");
            let known = &s.tokens[..reusable];
            let taken = blocks.take_prefix(&hashes[..hit], known);
            s.computed = taken.len() * bs;
            s.hashes = hashes[..taken.len()].to_vec();
            s.blocks = taken;
            if let Some((source, n)) = partial {
                // Held while the copy is allocated, so that the allocation cannot evict
                // it; the runner copies before the next pass writes any block.
                blocks.hold_one(source);
                if let Some(copy) = blocks.allocate() {
                    self.copies.push((source, copy));
                    s.blocks.push(copy);
                    s.computed += n;
                }
                blocks.release(&[source]);
            }
            if s.cached_tokens.is_none() {
                s.cached_tokens = Some(s.computed);
                admitted.push(Admitted {
                    prompt_tokens: s.prompt_len,
                    cached_tokens: s.computed,
                });
            }
            self.running.push(s);
        }
        admitted
    }

    /// Moves the newest running sequence back to the waiting queue, releasing its blocks.
    fn preempt_newest(&mut self) -> bool {
        let Some(i) = (0..self.running.len()).max_by_key(|&i| self.running[i].id) else {
            return false;
        };
        let mut s = self.running.remove(i);
        self.release(&mut s);
        s.hashes.clear();
        s.computed = 0;
        tracing::debug!(id = s.id, "KV pool full: preempted the newest sequence");
        // Back in arrival order among the waiting.
        let at = self
            .waiting
            .iter()
            .position(|w| w.id > s.id)
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, s);
        true
    }

    /// Decides the next forward pass, allocating the blocks its new tokens need and
    /// preempting when the pool is short.
    pub fn schedule(&mut self) -> Step {
        let mut preempted = 0;
        loop {
            let mut budget = self.limits.max_batch_tokens;
            let mut batch = Vec::new();
            // Decodes first (one token each), then prompt chunks in arrival order.
            let mut order: Vec<usize> = (0..self.running.len()).collect();
            order.sort_by_key(|&i| (self.running[i].prefilling(), self.running[i].id));
            for i in order {
                let s = &self.running[i];
                let n = (s.tokens.len() - s.computed).min(budget);
                if n == 0 {
                    continue;
                }
                budget -= n;
                batch.push((i, n));
            }
            if self.allocate(&batch) {
                return Step {
                    batch,
                    copies: std::mem::take(&mut self.copies),
                    preempted,
                };
            }
            if !self.preempt_newest() {
                return Step {
                    preempted,
                    copies: std::mem::take(&mut self.copies),
                    ..Step::default()
                };
            }
            preempted += 1;
        }
    }

    /// Blocks for the batch's new tokens; false when the pool ran short.
    fn allocate(&mut self, batch: &[(usize, usize)]) -> bool {
        let blocks = &mut self.blocks;
        for &(i, n) in batch {
            let s = &mut self.running[i];
            let need = blocks.blocks_for(s.computed + n);
            while s.blocks.len() < need {
                match blocks.allocate() {
                    Some(b) => s.blocks.push(b),
                    None => return false,
                }
            }
        }
        true
    }

    /// Records that the step's tokens are computed, registering newly full blocks in the
    /// prefix cache.
    pub fn complete(&mut self, step: &Step) {
        for &(i, n) in &step.batch {
            let s = &mut self.running[i];
            s.computed += n;
            let blocks = &mut self.blocks;
            let bs = blocks.block_size();
            while s.hashes.len() < s.computed / bs {
                let k = s.hashes.len();
                let parent = s.hashes.last().copied().unwrap_or(ROOT);
                let tokens = &s.tokens[k * bs..(k + 1) * bs];
                let h = block_hash(parent, tokens);
                blocks.register(s.blocks[k], parent, h, tokens);
                s.hashes.push(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 4;

    fn paged(max_running: usize, max_batch_tokens: usize, num_blocks: usize) -> Scheduler<()> {
        Scheduler::new(
            Limits {
                max_running,
                max_batch_tokens,
            },
            BlockManager::new(num_blocks, BS),
        )
    }

    /// Runs one step as the engine would, generating `next` for each sequence that
    /// finished its tokens.
    fn run_step(s: &mut Scheduler<()>, next: u32) -> Step {
        s.admit();
        let step = s.schedule();
        s.complete(&step);
        for &(i, _) in &step.batch {
            let seq = &mut s.running_mut()[i];
            if seq.computed == seq.tokens.len() {
                seq.tokens.push(next);
            }
        }
        step
    }

    /// `len` tokens; prompts with another `first` share no prefix.
    fn prompt(first: u32, len: u32) -> Vec<u32> {
        (first * 1000..first * 1000 + len).collect()
    }

    #[test]
    fn admits_first_come_first_served_up_to_max_running() {
        let mut s = paged(2, 64, 64);
        for r in 0..3 {
            s.enqueue(r, prompt(r as u32, 5), false, ());
        }
        let admitted = s.admit();
        assert_eq!(admitted.len(), 2);
        let ids: Vec<u64> = s.running().iter().map(|q| q.id).collect();
        assert_eq!(ids, vec![0, 1]);
        assert_eq!(s.waiting_len(), 1);
    }

    #[test]
    fn prefill_is_chunked_by_the_token_budget_and_decodes_go_first() {
        let mut s = paged(4, 8, 64);
        s.enqueue(0, prompt(0, 3), false, ());
        let step = run_step(&mut s, 9);
        assert_eq!(step.batch, vec![(0, 3)]);
        // A 20-token prompt arrives: the decode goes first, the prompt gets the rest.
        s.enqueue(1, prompt(1, 20), false, ());
        let step = run_step(&mut s, 9);
        assert_eq!(step.batch, vec![(0, 1), (1, 7)]);
        let step = run_step(&mut s, 9);
        assert_eq!(step.batch, vec![(0, 1), (1, 7)]);
        let step = run_step(&mut s, 9);
        assert_eq!(step.batch, vec![(0, 1), (1, 6)], "the prompt's last chunk");
        assert!(!s.running()[1].prefilling());
    }

    #[test]
    fn a_full_pool_preempts_the_newest_and_it_resumes_later() {
        // 4 blocks of 4 tokens: two 6-token prompts take 2 blocks each.
        let mut s = paged(4, 64, 4);
        s.enqueue(0, prompt(0, 6), false, ());
        s.enqueue(1, prompt(1, 6), false, ());
        let step = run_step(&mut s, 9);
        assert_eq!(step.batch.len(), 2);
        assert_eq!(s.block_stats().free, 0);
        // Both now decode; the ninth token needs a third block: the newest gives way.
        run_step(&mut s, 9);
        run_step(&mut s, 9);
        let step = run_step(&mut s, 9);
        assert_eq!(step.preempted, 1);
        assert_eq!(s.running().len(), 1);
        assert_eq!(s.running()[0].id, 0);
        assert_eq!(s.waiting_len(), 1);
        // When the oldest finishes, the preempted one comes back and is recomputed.
        let done = s.finish(0, true);
        assert_eq!(done.id, 0);
        let step = run_step(&mut s, 9);
        assert_eq!(s.running()[0].id, 1);
        assert_eq!(step.batch.len(), 1);
    }

    #[test]
    fn a_repeated_prompt_reuses_cached_blocks_and_copies_the_partial_one() {
        let mut s = paged(4, 64, 16);
        s.enqueue(0, prompt(0, 10), false, ());
        run_step(&mut s, 99);
        s.finish(0, true);
        // The same 10 tokens again: 2 full blocks cached, the partial one (tokens 9..=10
        // minus the last, kept to compute logits) is copied.
        s.enqueue(1, prompt(0, 10), false, ());
        let admitted = s.admit();
        assert_eq!(
            admitted,
            vec![Admitted {
                prompt_tokens: 10,
                cached_tokens: 9
            }]
        );
        let step = s.schedule();
        assert_eq!(step.batch, vec![(0, 1)]);
        assert_eq!(step.copies.len(), 1);
        let (source, copy) = step.copies[0];
        assert_ne!(source, copy);
        assert_eq!(s.running()[0].blocks[2], copy);
    }

    #[test]
    fn a_prompt_being_scored_computes_what_it_has_not_reported() {
        let mut s = paged(4, 64, 16);
        s.enqueue(0, prompt(0, 10), false, ());
        run_step(&mut s, 99);
        s.finish(0, true);
        // Scoring the same prompt: every position's logits are wanted, none is cached.
        s.enqueue(1, prompt(0, 10), true, ());
        let admitted = s.admit();
        assert_eq!(admitted[0].cached_tokens, 0);
        assert_eq!(s.schedule().batch, vec![(0, 10)]);
        // Scored up to token 6 (say, before a preemption): from position 5 on it computes.
        s.finish(0, true);
        s.enqueue(2, prompt(0, 10), true, ());
        s.waiting.back_mut().expect("queued").score_from = Some(6);
        assert_eq!(s.admit()[0].cached_tokens, 5, "its row 5 scores token 6");
    }

    #[test]
    fn a_later_choice_waits_for_the_first_to_compute_the_prompt() {
        let mut s = paged(4, 4, 64);
        s.enqueue(7, prompt(7, 10), false, ());
        s.enqueue(7, prompt(7, 10), false, ());
        let step = run_step(&mut s, 1);
        assert_eq!(step.batch, vec![(0, 4)], "the sibling waits");
        assert_eq!(s.waiting_len(), 1);
        run_step(&mut s, 1);
        run_step(&mut s, 1);
        // The prompt is computed: the sibling joins with its full blocks from the cache
        // (the first's partly filled block is registered only when it leaves).
        let admitted = s.admit();
        assert_eq!(admitted.len(), 1);
        assert_eq!(admitted[0].cached_tokens, 8);
    }

    #[test]
    fn removed_sequences_free_their_blocks() {
        let mut s = paged(4, 64, 8);
        s.enqueue(0, prompt(0, 9), false, ());
        s.enqueue(1, prompt(1, 9), false, ());
        run_step(&mut s, 5);
        let before = s.block_stats();
        assert_eq!(before.free, 2);
        let gone = s.remove_where(|q| q.id == 1);
        assert_eq!(gone.len(), 1);
        assert!(gone[0].1, "it was running");
        assert!(gone[0].0.blocks.is_empty());
        let after = s.block_stats();
        assert_eq!(after.used, before.used - 3);
    }
}
