//! The room: who is logged in, in which order.
//!
//! A member list gives broadcast and `who:` their order. Joining and
//! leaving are `O(1)`: a leaving member's place is taken by the last one,
//! and the caller is told which connection moved so it can update its
//! index. Names are unique across the server; [`Users`](super::users::Users)
//! sees to that.

use std::sync::Arc;

use bytes::BufMut;

use super::conns::ConnId;
use super::log::{Log, Span};

/// One logged-in connection.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: ConnId,
    pub(super) name: Arc<str>,
}

/// The room's members.
#[derive(Debug, Default)]
pub(super) struct Room {
    members: Vec<Member>,
}

impl Room {
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    pub(super) fn members(&self) -> &[Member] {
        &self.members
    }

    #[cfg(test)]
    pub(super) fn name(&self, member_index: u32) -> &str {
        &self.members[member_index as usize].name
    }

    /// Adds a member; returns its index in the member list.
    pub(super) fn join(&mut self, id: ConnId, name: Arc<str>) -> u32 {
        self.members.push(Member { id, name });
        (self.members.len() - 1) as u32
    }

    /// Removes the member at `member_index`. Returns its record, and the
    /// member that moved into its place, if any.
    pub(super) fn leave(&mut self, member_index: u32) -> (Member, Option<ConnId>) {
        let member = self.members.swap_remove(member_index as usize);
        let moved = self.members.get(member_index as usize).map(|m| m.id);
        (member, moved)
    }

    /// The answer to `who:`, appended to `log` as one run: `users:`
    /// frames of at most `max_frame_len` bytes each, listing every member
    /// once, then an empty `users:`.
    pub(super) fn users_frames(&self, max_frame_len: usize, log: &mut Log) -> Span {
        const TAG: &[u8] = b"users:";
        let names_len: usize = self.members.iter().map(|m| m.name.len() + 1).sum();
        log.append(names_len + TAG.len() + 1, |buf| {
            let mut names = self.members.iter().map(|m| m.name.as_bytes()).peekable();
            while names.peek().is_some() {
                buf.put_slice(TAG);
                let mut len = TAG.len() + 1;
                let mut first = true;
                // Config validation guarantees room for one name of 128
                // bytes.
                while let Some(name) =
                    names.next_if(|n| len + n.len() + usize::from(!first) <= max_frame_len)
                {
                    if !first {
                        buf.put_u8(b',');
                    }
                    buf.put_slice(name);
                    len += name.len() + usize::from(!first);
                    first = false;
                }
                buf.put_u8(b'\n');
            }
            buf.put_slice(TAG);
            buf.put_u8(b'\n');
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u32) -> ConnId {
        ConnId {
            index,
            generation: 0,
        }
    }

    #[test]
    fn join_and_leave_keep_indices_dense() {
        let mut room = Room::default();
        assert_eq!(room.join(id(0), "a".into()), 0);
        assert_eq!(room.join(id(1), "b".into()), 1);
        assert_eq!(room.join(id(2), "c".into()), 2);
        let (gone, moved) = room.leave(0);
        assert_eq!(&*gone.name, "a");
        assert_eq!(moved, Some(id(2)));
        assert_eq!(room.name(0), "c");
        let (_, moved) = room.leave(1);
        assert_eq!(moved, None);
        assert_eq!(room.len(), 1);
    }

    #[test]
    fn users_frames_fit_the_limit_and_end_empty() {
        let mut room = Room::default();
        let names: Vec<String> = (0..100).map(|i| format!("user{i:03}")).collect();
        for (i, n) in names.iter().enumerate() {
            room.join(id(i as u32), n.as_str().into());
        }
        let mut log = Log::default();
        let span = room.users_frames(256, &mut log);
        let all = log.freeze().slice(span);
        let frames: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
        assert!(frames.len() > 2);
        let mut listed = Vec::new();
        for f in &frames {
            assert!(f.len() <= 256, "{} bytes", f.len());
            assert!(f.starts_with(b"users:") && f.ends_with(b"\n"));
            let payload = std::str::from_utf8(&f[6..f.len() - 1]).unwrap();
            listed.extend(
                payload
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        assert_eq!(frames.last().unwrap(), b"users:\n");
        assert_eq!(listed, names);
        // A frame is filled before the next begins.
        assert!(frames[0].len() > 256 - "user000,".len());
    }

    #[test]
    fn empty_room_answers_with_the_end_frame_only() {
        let mut log = Log::default();
        let span = Room::default().users_frames(4096, &mut log);
        assert_eq!(&log.freeze().slice(span)[..], b"users:\n");
    }
}
