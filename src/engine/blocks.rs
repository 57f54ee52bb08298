//! Which KV-cache blocks each sequence holds, and which full blocks can be reused.
//!
//! The pool has a fixed number of blocks of `block_size` tokens. A sequence holds a block
//! table (block ids in position order). A block that is full is identified by a hash of its
//! tokens chained with the hash of the blocks before it, so equal hashes mean equal prefixes
//! at equal positions; such blocks are kept in a prefix cache after their sequences end and
//! handed to any later sequence whose prompt starts the same way (a system prompt, the
//! earlier turns of a chat, the other choices of `n`). Blocks are reference counted; cached
//! blocks nobody uses are evicted least recently used first when the pool runs out.
//! Only full blocks are shared, so a sequence only ever writes into blocks it owns alone.
//!
//! Reuse goes below block granularity too, as llama-server's per-slot prompt cache does: a
//! finished (or preempted) sequence leaves its last, partly filled block registered as a
//! child of the prefix before it, and every registered block is indexed by that prefix. A
//! later prompt whose next tokens start like one of those children gets a copy of it (the
//! engine copies the block into one it owns), so only the tokens after the common part are
//! computed: a regenerated answer or a repeated prompt costs one token of prefill.

use std::collections::{BTreeMap, HashMap};

/// A chained hash of one full block: the hash of the blocks before it and its tokens.
pub fn block_hash(parent: u64, tokens: &[u32]) -> u64 {
    // FNV-1a over the parent and the tokens: stable, cheap, and collisions need equal
    // 64-bit values over the whole chain.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ parent.rotate_left(17);
    for &t in tokens {
        for b in t.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The parent hash of the first block of a sequence.
pub const ROOT: u64 = 0;

/// The chained hashes of the full blocks of `tokens`.
pub fn prefix_hashes(tokens: &[u32], block_size: usize) -> Vec<u64> {
    let mut parent = ROOT;
    tokens
        .chunks_exact(block_size)
        .map(|chunk| {
            parent = block_hash(parent, chunk);
            parent
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    pub total: usize,
    /// Held by at least one sequence.
    pub used: usize,
    /// Not held, but kept for prefix reuse (evictable).
    pub cached: usize,
    /// Neither.
    pub free: usize,
}

pub struct BlockManager {
    block_size: usize,
    refcount: Vec<u32>,
    /// The hash a full block is registered under.
    hash_of: Vec<Option<u64>>,
    /// The chained hash of the prefix before each registered block (full or partial).
    parent_of: Vec<Option<u64>>,
    /// The tokens of each registered block: a hit is confirmed token by token, so a hash
    /// collision (accidental or crafted) can never lend one prompt another's cache.
    tokens_of: Vec<Vec<u32>>,
    /// Full blocks by hash.
    by_hash: HashMap<u64, u32>,
    /// Registered blocks (full, or partial: fewer tokens than a block) by parent hash.
    children: HashMap<u64, Vec<u32>>,
    /// Blocks with no holder and no hash.
    free: Vec<u32>,
    /// Cached blocks with no holder, by last use (oldest first).
    lru: BTreeMap<u64, u32>,
    lru_tick_of: Vec<Option<u64>>,
    tick: u64,
}

impl BlockManager {
    pub fn new(num_blocks: usize, block_size: usize) -> Self {
        Self {
            block_size,
            refcount: vec![0; num_blocks],
            hash_of: vec![None; num_blocks],
            parent_of: vec![None; num_blocks],
            tokens_of: vec![Vec::new(); num_blocks],
            by_hash: HashMap::new(),
            children: HashMap::new(),
            free: (0..num_blocks as u32).rev().collect(),
            lru: BTreeMap::new(),
            lru_tick_of: vec![None; num_blocks],
            tick: 0,
        }
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn num_blocks(&self) -> usize {
        self.refcount.len()
    }

    /// Blocks that can be handed out now (free or evictable).
    pub fn available(&self) -> usize {
        self.free.len() + self.lru.len()
    }

    pub fn stats(&self) -> BlockStats {
        let total = self.num_blocks();
        let cached = self.lru.len();
        let free = self.free.len();
        BlockStats {
            total,
            used: total - cached - free,
            cached,
            free,
        }
    }

    /// Blocks needed to hold `tokens` tokens.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// The cached block holding full block `i` of `tokens`, whose chained hash is `hash`.
    fn lookup(&self, hash: u64, tokens: &[u32], i: usize) -> Option<u32> {
        let b = *self.by_hash.get(&hash)?;
        let bs = self.block_size;
        (self.tokens_of[b as usize] == tokens[i * bs..(i + 1) * bs]).then_some(b)
    }

    /// The cached blocks holding the longest prefix of `tokens` (`hashes` are its full-block
    /// hashes); each returned block gains a holder.
    pub fn take_prefix(&mut self, hashes: &[u64], tokens: &[u32]) -> Vec<u32> {
        let mut blocks = Vec::new();
        for (i, &h) in hashes.iter().enumerate() {
            let Some(b) = self.lookup(h, tokens, i) else {
                break;
            };
            self.hold(b);
            blocks.push(b);
        }
        blocks
    }

    /// How many leading full blocks of `tokens` are cached (without taking them), and how
    /// many of those nobody holds (taking them makes them unavailable).
    pub fn cached_prefix(&self, hashes: &[u64], tokens: &[u32]) -> (usize, usize) {
        let mut unheld = 0;
        for (i, &h) in hashes.iter().enumerate() {
            let Some(b) = self.lookup(h, tokens, i) else {
                return (i, unheld);
            };
            unheld += usize::from(self.refcount[b as usize] == 0);
        }
        (hashes.len(), unheld)
    }

    /// A block for one holder: a free one, else the least recently used cached one.
    pub fn allocate(&mut self) -> Option<u32> {
        let b = match self.free.pop() {
            Some(b) => b,
            None => {
                let (&tick, &b) = self.lru.iter().next()?;
                self.lru.remove(&tick);
                self.lru_tick_of[b as usize] = None;
                self.unregister(b);
                b
            }
        };
        self.refcount[b as usize] = 1;
        Some(b)
    }

    /// Records that `block` (held, full) holds `tokens` after the prefix whose chained hash
    /// is `parent`, its own chained hash being `hash`, so later prompts can reuse it. A hash
    /// already registered keeps its first block.
    pub fn register(&mut self, block: u32, parent: u64, hash: u64, tokens: &[u32]) {
        let b = block as usize;
        if self.parent_of[b].is_some() || self.by_hash.contains_key(&hash) {
            return;
        }
        self.hash_of[b] = Some(hash);
        self.parent_of[b] = Some(parent);
        self.tokens_of[b] = tokens.to_vec();
        self.by_hash.insert(hash, block);
        self.children.entry(parent).or_default().push(block);
    }

    /// Records that `block` (held by a sequence about to let go of it) holds the first
    /// `tokens.len()` (fewer than a block) tokens after the prefix `parent`, so that a later
    /// prompt continuing that prefix the same way can copy them. Nothing is recorded when
    /// a registered child already starts with these tokens.
    pub fn register_partial(&mut self, block: u32, parent: u64, tokens: &[u32]) {
        let b = block as usize;
        if tokens.is_empty() || tokens.len() >= self.block_size || self.parent_of[b].is_some() {
            return;
        }
        let known = self.children.get(&parent).is_some_and(|kids| {
            kids.iter()
                .any(|&c| self.tokens_of[c as usize].starts_with(tokens))
        });
        if known {
            return;
        }
        self.parent_of[b] = Some(parent);
        self.tokens_of[b] = tokens.to_vec();
        self.children.entry(parent).or_default().push(block);
    }

    /// The registered block after prefix `parent` sharing the longest start with `tokens`,
    /// and the length of that common start (at least one token).
    pub fn best_child(&self, parent: u64, tokens: &[u32]) -> Option<(u32, usize)> {
        let kids = self.children.get(&parent)?;
        kids.iter()
            .map(|&c| {
                let common = self.tokens_of[c as usize]
                    .iter()
                    .zip(tokens)
                    .take_while(|(a, b)| a == b)
                    .count();
                (c, common)
            })
            .filter(|&(_, common)| common > 0)
            .max_by_key(|&(_, common)| common)
    }

    /// Whether nobody holds `block` (a cached block: taking it makes it unavailable).
    pub fn is_unheld(&self, block: u32) -> bool {
        self.refcount[block as usize] == 0
    }

    /// Holds `block` a while (a copy source, so that an allocation cannot evict it);
    /// [`BlockManager::release`] lets go.
    pub fn hold_one(&mut self, block: u32) {
        self.hold(block);
    }

    fn unregister(&mut self, b: u32) {
        let i = b as usize;
        if let Some(h) = self.hash_of[i].take() {
            self.by_hash.remove(&h);
        }
        if let Some(parent) = self.parent_of[i].take() {
            if let Some(kids) = self.children.get_mut(&parent) {
                kids.retain(|&c| c != b);
                if kids.is_empty() {
                    self.children.remove(&parent);
                }
            }
        }
        self.tokens_of[i].clear();
    }

    /// A holder lets go of its blocks (a block table, in position order). The last blocks
    /// become the first to evict, so a cached prefix loses its tail before its head (a
    /// chain broken at its root would keep unreachable blocks).
    pub fn release(&mut self, blocks: &[u32]) {
        for &b in blocks.iter().rev() {
            let rc = &mut self.refcount[b as usize];
            debug_assert!(*rc > 0, "releasing a block nobody holds");
            *rc = rc.saturating_sub(1);
            if *rc == 0 {
                if self.parent_of[b as usize].is_some() {
                    self.tick += 1;
                    self.lru.insert(self.tick, b);
                    self.lru_tick_of[b as usize] = Some(self.tick);
                } else {
                    self.free.push(b);
                }
            }
        }
    }

    fn hold(&mut self, b: u32) {
        if self.refcount[b as usize] == 0 {
            if let Some(t) = self.lru_tick_of[b as usize].take() {
                self.lru.remove(&t);
            }
        }
        self.refcount[b as usize] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_chain_over_the_prefix() {
        let a = prefix_hashes(&[1, 2, 3, 4, 5], 2);
        assert_eq!(a.len(), 2);
        let b = prefix_hashes(&[1, 2, 3, 4, 9, 9], 2);
        assert_eq!(a, b[..2]);
        // The same block after a different prefix hashes differently.
        let c = prefix_hashes(&[7, 7, 3, 4], 2);
        assert_ne!(a[1], c[1]);
    }

    #[test]
    fn allocate_release_and_reuse_a_prefix() {
        let mut m = BlockManager::new(4, 2);
        let tokens = [1, 2, 3, 4, 5];
        let hashes = prefix_hashes(&tokens, 2);
        assert!(m.take_prefix(&hashes, &tokens).is_empty());
        let blocks: Vec<u32> = (0..3).map(|_| m.allocate().unwrap()).collect();
        assert_eq!(m.stats().used, 3);
        m.register(blocks[0], ROOT, hashes[0], &tokens[..2]);
        m.register(blocks[1], hashes[0], hashes[1], &tokens[2..4]);
        m.release(&blocks);
        let want = BlockStats {
            total: 4,
            used: 0,
            cached: 2,
            free: 2,
        };
        assert_eq!(m.stats(), want);
        // A second prompt with the same start gets the two cached blocks back.
        let other = [1, 2, 3, 4, 6, 6];
        let other_hashes = prefix_hashes(&other, 2);
        assert_eq!(m.cached_prefix(&other_hashes, &other), (2, 2));
        let again = m.take_prefix(&other_hashes, &other);
        assert_eq!(again, blocks[..2]);
        assert_eq!(m.stats().used, 2);
        assert_eq!(m.cached_prefix(&hashes, &tokens), (2, 0));
        // Shared: a third holder.
        assert_eq!(m.take_prefix(&hashes[..1], &tokens), vec![blocks[0]]);
        m.release(&[blocks[0]]);
        assert_eq!(m.stats().used, 2);
        m.release(&again);
        assert_eq!(m.stats().cached, 2);
    }

    #[test]
    fn the_least_recently_used_cached_block_is_evicted_first() {
        let mut m = BlockManager::new(2, 1);
        let (a, b) = (m.allocate().unwrap(), m.allocate().unwrap());
        m.register(a, ROOT, 11, &[1]);
        m.register(b, ROOT, 22, &[2]);
        m.release(&[b]);
        m.release(&[a]);
        assert!(m.allocate().is_some());
        // b was released first: it is gone, a is still cached.
        assert_eq!(m.cached_prefix(&[22], &[2]).0, 0);
        assert_eq!(m.cached_prefix(&[11], &[1]).0, 1);
        assert!(m.allocate().is_some());
        assert_eq!(m.cached_prefix(&[11], &[1]).0, 0);
        assert!(m.allocate().is_none());
    }

    #[test]
    fn a_table_releases_its_tail_first_and_a_hash_collision_is_no_hit() {
        let mut m = BlockManager::new(3, 1);
        let t: Vec<u32> = (0..3).map(|_| m.allocate().unwrap()).collect();
        for (i, &b) in t.iter().enumerate() {
            m.register(b, 99 + i as u64, 100 + i as u64, &[i as u32]);
        }
        m.release(&t);
        // The next allocation evicts the last block of the table, not its first.
        m.allocate().unwrap();
        assert_eq!(m.cached_prefix(&[100, 101, 102], &[0, 1, 2]).0, 2);
        // Same hash, other tokens: not a hit.
        assert_eq!(m.cached_prefix(&[100], &[7]).0, 0);
    }

    #[test]
    fn a_partial_block_is_found_by_its_common_start_until_evicted() {
        let mut m = BlockManager::new(3, 4);
        let full = m.allocate().unwrap();
        let tail = m.allocate().unwrap();
        let h = block_hash(ROOT, &[1, 2, 3, 4]);
        m.register(full, ROOT, h, &[1, 2, 3, 4]);
        m.register_partial(tail, h, &[5, 6, 7]);
        // A shorter or equal start of a known child records nothing new.
        let other = m.allocate().unwrap();
        m.register_partial(other, h, &[5, 6]);
        m.release(&[full, tail, other]);
        assert_eq!(m.stats().cached, 2);
        assert_eq!(m.best_child(h, &[5, 6, 9, 9]), Some((tail, 2)));
        assert_eq!(m.best_child(h, &[8]), None);
        // A full block is a child of its parent too: a prompt diverging inside it.
        assert_eq!(m.best_child(ROOT, &[1, 2, 0]), Some((full, 2)));
        // Evicted (the tail goes first), the partial block is no longer offered.
        m.allocate().unwrap();
        m.allocate().unwrap();
        assert_eq!(m.best_child(h, &[5, 6, 7]), None);
        assert_eq!(m.best_child(ROOT, &[1, 2, 3]), Some((full, 3)));
    }
}
