//! Who holds which name, server-wide.
//!
//! Names are compared by their [`NameKey`] (PROTOCOL.md, section 2): two
//! names that fold to the same key (`Zoë` and `ZOË`, `admin` and `аdmin`
//! with a Cyrillic `а`, the Kelvin sign and `K`) are one name, so nobody can
//! log in as a look-alike of someone present. A name is held from the `iam:`
//! that claims it (also while the application decides the login) until its
//! holder logs out or the claim is refused; the holder keeps the spelling it
//! typed.

use std::collections::HashMap;

use super::conns::ConnId;
use crate::names::NameKey;

/// Names in use, by key.
#[derive(Debug, Default)]
pub(super) struct Users {
    by_key: HashMap<NameKey, ConnId>,
}

impl Users {
    /// Who holds the name with `key`, if anyone.
    pub(super) fn holder(&self, key: &NameKey) -> Option<ConnId> {
        self.by_key.get(key).copied()
    }

    /// Gives the name with `key` to `conn`; it must be free.
    pub(super) fn claim(&mut self, key: NameKey, conn: ConnId) {
        let previous = self.by_key.insert(key, conn);
        debug_assert!(previous.is_none(), "a name was claimed twice");
    }

    /// Frees the name `conn` holds under `key`.
    pub(super) fn release(&mut self, key: &NameKey, conn: ConnId) {
        if self.by_key.get(key) == Some(&conn) {
            self.by_key.remove(key);
        }
    }

    /// Names held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_are_one_name() {
        let a = ConnId {
            index: 0,
            generation: 0,
        };
        let b = ConnId {
            index: 1,
            generation: 0,
        };
        let mut users = Users::default();
        users.claim(NameKey::of("admin"), a);
        assert_eq!(users.holder(&NameKey::of("\u{430}dmin")), Some(a));
        assert_eq!(users.holder(&NameKey::of("ADMIN")), Some(a));
        // Only the holder frees it.
        users.release(&NameKey::of("admin"), b);
        assert_eq!(users.len(), 1);
        users.release(&NameKey::of("Admin"), a);
        assert_eq!(users.holder(&NameKey::of("admin")), None);
    }
}
