//! Who is in each room, as the full-screen client shows it, and the colour
//! each name is drawn in.
//!
//! The lists are kept from the session's events: an answer to `who`
//! ([`Event::Users`]) replaces a room's list, [`Event::Joined`] and
//! [`Event::Left`] keep it current between answers (the server stops
//! telling them above its presence limit, so a big room's list can lag
//! until the next `who`). The client asks `who` by itself when it enters a
//! room and after every login; those answers only update the list, while
//! the answer to a typed `/who` is also shown in the scrollback.
//!
//! A name's colour is a hash of its bytes (FNV-1a, fixed here, unlike
//! std's hasher) into a palette: the same name has the same colour on every
//! line, in every run, on every machine.

use std::collections::HashMap;

use chat_proto::Event;

/// How many colours names are drawn in (the palette is in
/// [`draw`](super::draw)).
pub(crate) const PALETTE_SIZE: usize = 11;

/// The palette index of `name`'s colour.
pub(crate) fn colour_index(name: &str) -> usize {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = name
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // usize is at least 32 bits wide here; the remainder is below 11.
    (hash % PALETTE_SIZE as u64) as usize
}

/// The members of each room this session knows about.
#[derive(Debug, Default)]
pub(crate) struct Users {
    /// Room to members, in the order the server listed or announced them.
    /// The default room of a server without room names is `""`.
    rooms: HashMap<String, Vec<String>>,
    /// `who` requests the client made by itself, per room (`None`: the
    /// default room, whatever its name turns out to be), not yet answered.
    quiet: HashMap<Option<String>, usize>,
}

impl Users {
    /// Notes a `who` for `room` (`None`: the default room) asked by the
    /// client itself: its answer updates the list without a line in the
    /// scrollback.
    pub(crate) fn asked_quietly(&mut self, room: Option<&str>) {
        *self.quiet.entry(room.map(String::from)).or_default() += 1;
    }

    /// A quiet `who` could not be sent after all.
    pub(crate) fn not_asked(&mut self, room: Option<&str>) {
        if let Some(n) = self.quiet.get_mut(&room.map(String::from)) {
            *n = n.saturating_sub(1);
        }
    }

    /// Takes one quiet question the answer about `room` answers, if any.
    fn answers_quiet(&mut self, room: &str, default_room: Option<&str>) -> bool {
        let is_default = room.is_empty() || default_room == Some(room);
        let keys = [Some(room.to_owned()), None];
        for key in keys.iter().take(if is_default { 2 } else { 1 }) {
            if let Some(n) = self.quiet.get_mut(key).filter(|n| **n > 0) {
                *n -= 1;
                return true;
            }
        }
        false
    }

    /// Forgets every list, after a new login: the rooms changed while the
    /// session was away, and the answers to questions asked on the old
    /// connection will not come.
    pub(crate) fn forget(&mut self) {
        self.rooms.clear();
        self.quiet.clear();
    }

    /// Keeps the lists from `event`, `me` being this session's name and
    /// `default_room` the default room's, if known. Returns `false` for an
    /// answer to a quiet `who`, which is not worth a line.
    pub(crate) fn update(&mut self, event: &Event, me: &str, default_room: Option<&str>) -> bool {
        match event {
            Event::Users { room, names } => {
                self.rooms.insert(room.clone(), names.clone());
                if self.answers_quiet(room, default_room) {
                    return false;
                }
            }
            Event::Joined { room, name } => {
                let list = self.rooms.entry(room.clone()).or_default();
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
            Event::Left { room, name } if name == me => {
                self.rooms.remove(room);
            }
            Event::Left { room, name } => {
                if let Some(list) = self.rooms.get_mut(room) {
                    list.retain(|n| n != name);
                }
            }
            _ => {}
        }
        true
    }

    /// The members of `room`, sorted for a person (case aside), if known.
    pub(crate) fn sorted(&self, room: &str) -> Option<Vec<&str>> {
        let list = self.rooms.get(room)?;
        let mut names: Vec<&str> = list.iter().map(String::as_str).collect();
        names.sort_by_cached_key(|n| (n.to_lowercase(), n.to_string()));
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(room: &str, name: &str) -> Event {
        Event::Joined {
            room: room.into(),
            name: name.into(),
        }
    }

    fn left(room: &str, name: &str) -> Event {
        Event::Left {
            room: room.into(),
            name: name.into(),
        }
    }

    fn users(room: &str, names: &[&str]) -> Event {
        Event::Users {
            room: room.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn colours_are_stable_and_spread() {
        // Fixed values: a change of hash would change everyone's colour.
        assert_eq!(colour_index("zhangsan"), colour_index("zhangsan"));
        assert_eq!(colour_index(""), (0xcbf2_9ce4_8422_2325u64 % 11) as usize);
        let names = ["zhangsan", "lisi", "wangwu", "张三", "李四", "Zoë", "bot-1"];
        let first: Vec<usize> = names.iter().map(|n| colour_index(n)).collect();
        let again: Vec<usize> = names.iter().map(|n| colour_index(n)).collect();
        assert_eq!(first, again);
        assert!(first.iter().all(|&i| i < PALETTE_SIZE));
        // Not all alike: the hash spreads names over the palette.
        let mut distinct = first.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= 4, "{first:?}");
        // Look-alike names are different names, and may differ in colour.
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|i| colour_index(&format!("user{i}")))
            .collect();
        assert_eq!(spread.len(), PALETTE_SIZE);
    }

    #[test]
    fn lists_follow_answers_joins_and_leaves() {
        let mut u = Users::default();
        assert_eq!(u.sorted("lobby"), None);
        assert!(u.update(&users("lobby", &["me", "lisi", "Anna"]), "me", None));
        assert_eq!(u.sorted("lobby").unwrap(), ["Anna", "lisi", "me"]);
        u.update(&joined("lobby", "bob"), "me", None);
        u.update(&joined("lobby", "bob"), "me", None); // no twice
        u.update(&left("lobby", "lisi"), "me", None);
        u.update(&left("rust", "lisi"), "me", None); // a room not known
        assert_eq!(u.sorted("lobby").unwrap(), ["Anna", "bob", "me"]);
        assert_eq!(u.sorted("rust"), None);
        // Entering a room starts its list with ourselves; leaving drops it.
        u.update(&joined("rust", "me"), "me", None);
        assert_eq!(u.sorted("rust").unwrap(), ["me"]);
        u.update(&left("rust", "me"), "me", None);
        assert_eq!(u.sorted("rust"), None);
        // A new login forgets everything.
        u.forget();
        assert_eq!(u.sorted("lobby"), None);
    }

    #[test]
    fn quiet_answers_update_without_a_line() {
        let mut u = Users::default();
        u.asked_quietly(Some("rust"));
        assert!(!u.update(&users("rust", &["me"]), "me", None));
        // The next answer for that room was asked by the person.
        assert!(u.update(&users("rust", &["me", "lisi"]), "me", None));
        assert_eq!(u.sorted("rust").unwrap(), ["lisi", "me"]);
        // The default room, asked before its name was known, answers by
        // name, or unnamed from a server without room names.
        u.asked_quietly(None);
        assert!(u.update(&users("lobby", &["me"]), "me", None)); // not it
        assert!(!u.update(&users("lobby", &["me"]), "me", Some("lobby")));
        u.asked_quietly(None);
        assert!(!u.update(&users("", &["me"]), "me", None));
        // A quiet question that could not be sent expects no answer.
        u.asked_quietly(Some("rust"));
        u.not_asked(Some("rust"));
        assert!(u.update(&users("rust", &["me"]), "me", None));
        // After a new login, old quiet questions are void.
        u.asked_quietly(None);
        u.forget();
        assert!(u.update(&users("lobby", &["me"]), "me", Some("lobby")));
    }
}
