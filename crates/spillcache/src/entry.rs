//! Cache entries and the table that finds them by key or by slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::ThreadId;

use crate::cipher::Seal;

/// Where an entry's bytes live.
#[derive(Debug)]
pub(crate) enum Place {
    /// Only in RAM, never written (added with `add_memory_only`, or empty).
    MemoryOnly(Arc<[u8]>),
    /// In RAM, queued for the writer or being written.
    Dirty(Arc<[u8]>),
    /// In the cache file at `offset`, encrypted under `seal`; `ram_copy` is
    /// a copy kept in RAM (`store_in_ram`, RAM budget), if any.
    OnDisk {
        offset: u64,
        seal: Box<Seal>,
        ram_copy: Option<Arc<[u8]>>,
    },
}

/// One value of the cache.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Unique over the cache's life: a new value of a key gets a new number,
    /// so a write or read of an older value can tell it is stale.
    pub(crate) generation: u64,
    pub(crate) len: u64,
    pub(crate) place: Place,
    /// The thread that added this value: a caller writing the queue for
    /// `wait_for_write` writes its own values only.
    pub(crate) added_by: ThreadId,
}

impl Entry {
    /// The value, when it is in RAM.
    pub(crate) fn ram(&self) -> Option<&Arc<[u8]>> {
        match &self.place {
            Place::MemoryOnly(data) | Place::Dirty(data) => Some(data),
            Place::OnDisk { ram_copy, .. } => ram_copy.as_ref(),
        }
    }

    /// Whether this entry is on disk and also has a copy in RAM.
    pub(crate) fn is_ram_copy(&self) -> bool {
        matches!(
            self.place,
            Place::OnDisk {
                ram_copy: Some(_),
                ..
            }
        )
    }
}

/// One place in the table: an entry (or none) and whether the slot is in
/// the writer's queue. The flag belongs to the slot, not the entry, so a
/// key overwritten or removed and reused while queued is queued once.
#[derive(Debug, Default)]
struct Slot {
    entry: Option<Entry>,
    queued: bool,
}

/// Entries in slots (so the writer's queue can name one with an integer)
/// and a map from key to slot.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    by_key: HashMap<Box<[u8]>, usize>,
}

impl Entries {
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn slot_of(&self, key: &[u8]) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Entry> {
        self.slots.get(slot)?.entry.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> Option<&mut Entry> {
        self.slots.get_mut(slot)?.entry.as_mut()
    }

    /// Whether `slot` is in the writer's queue (or its retry list).
    pub(crate) fn is_queued(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.queued)
    }

    /// Marks `slot` as in the writer's queue or out of it.
    pub(crate) fn set_queued(&mut self, slot: usize, queued: bool) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.queued = queued;
        }
    }

    /// The entry in `slot` if it still holds value `generation`.
    pub(crate) fn current_mut(&mut self, slot: usize, generation: u64) -> Option<&mut Entry> {
        self.get_mut(slot).filter(|e| e.generation == generation)
    }

    /// Puts `entry` under `key` and returns its slot and the entry it replaced.
    pub(crate) fn insert(&mut self, key: &[u8], entry: Entry) -> (usize, Option<Entry>) {
        if let Some(&slot) = self.by_key.get(key) {
            let old = self.slots[slot].entry.replace(entry);
            return (slot, old);
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot].entry = Some(entry);
                slot
            }
            None => {
                self.slots.push(Slot {
                    entry: Some(entry),
                    queued: false,
                });
                self.slots.len() - 1
            }
        };
        self.by_key.insert(key.into(), slot);
        (slot, None)
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.by_key.remove(key)?;
        self.free_slots.push(slot);
        self.slots[slot].entry.take()
    }

    /// Takes every entry out, leaving the table empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.by_key.clear();
        self.free_slots.clear();
        self.slots.drain(..).filter_map(|s| s.entry)
    }

    /// How many slots there are (occupied or free).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Every `(key, slot)`, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.by_key.iter().map(|(k, &slot)| (&**k, slot))
    }

    /// Every `(slot, entry)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((slot, s.entry.as_ref()?)))
    }

    /// Checks that the key map and the slots agree.
    pub(crate) fn check(&self) -> Result<(), String> {
        let occupied = self.slots.iter().filter(|s| s.entry.is_some()).count();
        if occupied != self.by_key.len() {
            return Err(format!(
                "{occupied} occupied slots, {} keys",
                self.by_key.len()
            ));
        }
        for (key, &slot) in &self.by_key {
            if self.get(slot).is_none() {
                return Err(format!("key {key:?} points to empty slot {slot}"));
            }
        }
        for &slot in &self.free_slots {
            if self.get(slot).is_some() {
                return Err(format!("free slot {slot} is occupied"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(generation: u64) -> Entry {
        Entry {
            generation,
            len: 1,
            place: Place::MemoryOnly(Arc::from(&b"x"[..])),
            added_by: std::thread::current().id(),
        }
    }

    #[test]
    fn slots_are_reused_and_generations_tell_values_apart() {
        let mut entries = Entries::default();
        let (a, old) = entries.insert(b"a", entry(1));
        assert!(old.is_none());
        let (same, old) = entries.insert(b"a", entry(2));
        assert_eq!((same, old.map(|e| e.generation)), (a, Some(1)));
        assert!(entries.current_mut(a, 1).is_none());
        assert!(entries.current_mut(a, 2).is_some());
        entries.remove(b"a").unwrap();
        let (b, _) = entries.insert(b"b", entry(3));
        assert_eq!(b, a, "slot reused");
        assert!(entries.current_mut(b, 2).is_none());
        entries.check().unwrap();
        assert_eq!(entries.drain().count(), 1);
        assert_eq!(entries.len(), 0);
        entries.check().unwrap();
    }
}
