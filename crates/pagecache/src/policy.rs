//! The eviction policy: S3-FIFO (small FIFO, main FIFO with reinsertion,
//! ghost FIFO of page numbers), O(1) amortized per insertion.
//!
//! The policy only orders page numbers. Access counts live beside the pages
//! (so a hit never takes the policy lock); eviction asks for them through a
//! callback.

use std::collections::{HashMap, VecDeque};

use crate::hints::PageHasher;

/// Fewest page numbers the ghost queue remembers. S3-FIFO sizes it like
/// the main queue, but a cache of a few pages would then forget a hot page
/// after a scan of a few pages, and lose it to every scan: a page loaded
/// last and hit only before the next miss has no credit (its hits look like
/// a scan decoding one page), so the first scan page evicts it. Remembered,
/// it comes back into the main queue, where scans pass it by. Page numbers
/// cost 8 to 24 bytes each.
const MIN_GHOST: usize = 64;

/// Index of a node in the slab; `NIL` ends a list.
pub(crate) type NodeId = u32;
const NIL: NodeId = NodeId::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
    Free,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    page: u64,
    prev: NodeId,
    next: NodeId,
    queue: Queue,
}

/// A doubly linked list threaded through the slab: `head` is the newest.
#[derive(Debug, Clone, Copy)]
struct List {
    head: NodeId,
    tail: NodeId,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Recently evicted page numbers, oldest dropped first. A page that comes
/// back while remembered here skips the small queue.
#[derive(Debug)]
struct Ghost {
    order: VecDeque<(u64, u64)>,
    live: HashMap<u64, u64, PageHasher>,
    next_stamp: u64,
    capacity: usize,
}

impl Ghost {
    fn new(capacity: usize) -> Self {
        Ghost {
            order: VecDeque::new(),
            live: HashMap::default(),
            next_stamp: 0,
            capacity,
        }
    }

    fn remember(&mut self, page: u64) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.live.insert(page, stamp);
        self.order.push_back((page, stamp));
        while self.live.len() > self.capacity
            || self.order.len() > 2 * self.capacity.max(self.live.len())
        {
            let Some((old, old_stamp)) = self.order.pop_front() else {
                break;
            };
            // Entries forgotten early (the page came back) leave a stale
            // stamp behind; only the latest stamp removes the page.
            if self.live.get(&old) == Some(&old_stamp) {
                self.live.remove(&old);
            }
        }
    }

    fn forget(&mut self, page: u64) -> bool {
        self.live.remove(&page).is_some()
    }

    fn clear(&mut self) {
        self.order.clear();
        self.live.clear();
    }
}

/// What an eviction pass decided about the page it looked at.
pub(crate) trait AccessCounts {
    /// Takes one access from `page`'s count: `true` (and the count drops by
    /// one) when it was above zero, `false` when the page was not re-used.
    fn take_access(&mut self, page: u64) -> bool;
}

impl<F: FnMut(u64) -> bool> AccessCounts for F {
    fn take_access(&mut self, page: u64) -> bool {
        self(page)
    }
}

/// S3-FIFO over page numbers (Yang et al., SOSP 2023).
///
/// New pages enter the small queue (10% of the capacity). When it is over
/// its share, its oldest page is promoted to the main queue if it was
/// re-used since it came in, else it is evicted and remembered in the ghost
/// queue. The main queue is a CLOCK: its oldest page goes back to the head
/// while it still has access credit, else it is evicted. Pages remembered
/// by the ghost queue enter the main queue directly.
#[derive(Debug)]
pub(crate) struct Policy {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    small: List,
    main: List,
    ghost: Ghost,
    small_target: usize,
}

impl Policy {
    pub(crate) fn new(capacity: usize) -> Self {
        Policy {
            nodes: Vec::new(),
            free: Vec::new(),
            small: List::EMPTY,
            main: List::EMPTY,
            ghost: Ghost::new(capacity.max(MIN_GHOST)),
            small_target: (capacity / 10).max(1),
        }
    }

    /// Number of resident pages.
    pub(crate) fn len(&self) -> usize {
        self.small.len + self.main.len
    }

    /// Records that `page` became resident; returns its node.
    pub(crate) fn insert(&mut self, page: u64) -> NodeId {
        let queue = if self.ghost.forget(page) {
            Queue::Main
        } else {
            Queue::Small
        };
        let node = Node {
            page,
            prev: NIL,
            next: NIL,
            queue: Queue::Free,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                // Capacity is capped far below u32::MAX, and nodes never
                // outnumber resident pages plus a handful of transient ones.
                let id = NodeId::try_from(self.nodes.len()).unwrap_or(NIL - 1);
                self.nodes.push(node);
                id
            }
        };
        self.push_head(queue, id);
        id
    }

    /// Forgets a resident page (invalidated, or replaced by newer bytes).
    pub(crate) fn remove(&mut self, id: NodeId) {
        if self.nodes.get(id as usize).map(|n| n.queue) == Some(Queue::Free) {
            return;
        }
        self.unlink(id);
        self.release(id);
    }

    /// Forgets everything, including the ghost queue.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.free.clear();
        self.small = List::EMPTY;
        self.main = List::EMPTY;
        self.ghost.clear();
    }

    /// Chooses a page to evict and forgets it; `None` when nothing is resident.
    ///
    /// Each page's credit is at most a small constant, so the pages passed
    /// over are paid for by the accesses that earned the credit; the pass is
    /// also capped, so a stream of concurrent hits cannot keep it going.
    pub(crate) fn evict(&mut self, counts: &mut impl AccessCounts) -> Option<u64> {
        let mut budget = 4 * self.len() + 4;
        loop {
            let from_small =
                self.small.len > 0 && (self.small.len >= self.small_target || self.main.len == 0);
            let id = if from_small {
                self.small.tail
            } else if self.main.len > 0 {
                self.main.tail
            } else {
                return None;
            };
            let page = self.nodes[id as usize].page;
            self.unlink(id);
            budget = budget.saturating_sub(1);
            if budget > 0 && counts.take_access(page) {
                // Re-used: promoted from small, or another lap in main.
                self.push_head(Queue::Main, id);
                continue;
            }
            if from_small {
                self.ghost.remember(page);
            }
            self.release(id);
            return Some(page);
        }
    }

    fn list_mut(&mut self, queue: Queue) -> &mut List {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main | Queue::Free => &mut self.main,
        }
    }

    fn push_head(&mut self, queue: Queue, id: NodeId) {
        let old_head = self.list_mut(queue).head;
        {
            let node = &mut self.nodes[id as usize];
            node.queue = queue;
            node.prev = NIL;
            node.next = old_head;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = id;
        }
        let list = self.list_mut(queue);
        list.head = id;
        if list.tail == NIL {
            list.tail = id;
        }
        list.len += 1;
    }

    fn unlink(&mut self, id: NodeId) {
        let Node {
            prev, next, queue, ..
        } = self.nodes[id as usize];
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let list = self.list_mut(queue);
        if list.head == id {
            list.head = next;
        }
        if list.tail == id {
            list.tail = prev;
        }
        list.len -= 1;
        let node = &mut self.nodes[id as usize];
        node.prev = NIL;
        node.next = NIL;
    }

    fn release(&mut self, id: NodeId) {
        self.nodes[id as usize].queue = Queue::Free;
        self.free.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn evict_unused(policy: &mut Policy, used: &mut HashSet<u64>) -> Option<u64> {
        policy.evict(&mut |page| used.remove(&page))
    }

    #[test]
    fn unused_pages_leave_in_insertion_order() {
        let mut policy = Policy::new(4);
        for page in 0..4 {
            policy.insert(page);
        }
        let mut used = HashSet::new();
        let order: Vec<_> = (0..4)
            .map(|_| evict_unused(&mut policy, &mut used))
            .collect();
        assert_eq!(order, [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(evict_unused(&mut policy, &mut used), None);
    }

    #[test]
    fn reused_page_survives_a_pass_of_new_ones() {
        let mut policy = Policy::new(4);
        for page in 0..4 {
            policy.insert(page);
        }
        let mut used: HashSet<u64> = [0].into();
        assert_eq!(evict_unused(&mut policy, &mut used), Some(1));
        policy.insert(10);
        assert_eq!(evict_unused(&mut policy, &mut used), Some(2));
        assert_eq!(policy.len(), 3);
    }

    #[test]
    fn removed_node_is_reused_and_lists_stay_consistent() {
        let mut policy = Policy::new(8);
        let ids: Vec<_> = (0..5).map(|p| policy.insert(p)).collect();
        policy.remove(ids[2]);
        policy.remove(ids[2]);
        assert_eq!(policy.len(), 4);
        let again = policy.insert(99);
        assert_eq!(again, ids[2]);
        let mut used = HashSet::new();
        let mut evicted = Vec::new();
        while let Some(page) = evict_unused(&mut policy, &mut used) {
            evicted.push(page);
        }
        assert_eq!(evicted, [0, 1, 3, 4, 99]);
    }

    #[test]
    fn ghost_hit_enters_main_and_outlives_small_pages() {
        let mut policy = Policy::new(10);
        policy.insert(1);
        let mut used = HashSet::new();
        assert_eq!(evict_unused(&mut policy, &mut used), Some(1));
        // Page 1 comes back from the ghost into main; 2 and 3 go to small.
        policy.insert(1);
        policy.insert(2);
        policy.insert(3);
        assert_eq!(evict_unused(&mut policy, &mut used), Some(2));
        assert_eq!(evict_unused(&mut policy, &mut used), Some(3));
        assert_eq!(evict_unused(&mut policy, &mut used), Some(1));
    }

    #[test]
    fn ghost_stays_bounded() {
        for capacity in [4, 256] {
            let mut policy = Policy::new(capacity);
            let mut used = HashSet::new();
            for page in 0..10_000 {
                policy.insert(page);
                evict_unused(&mut policy, &mut used);
            }
            let remembered = capacity.max(MIN_GHOST);
            assert_eq!(policy.ghost.live.len(), remembered);
            assert!(policy.ghost.order.len() <= 2 * remembered);
        }
    }

    #[test]
    fn eviction_ends_even_if_every_page_keeps_its_credit() {
        let mut policy = Policy::new(4);
        for page in 0..4 {
            policy.insert(page);
        }
        assert!(policy.evict(&mut |_| true).is_some());
        assert_eq!(policy.len(), 3);
    }
}
