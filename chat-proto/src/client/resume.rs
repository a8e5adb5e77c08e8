//! Where a session stands in each of its rooms, so that a reconnect
//! resumes rather than rejoins: the application sees every message once, in
//! room order, across connections.
//!
//! With the `history` capability the server tells, on each join, the room's
//! epoch and the offset live traffic starts at (`room:ROOM:EPOCH:NEXT`), and
//! every message carries its offset. The session keeps, per room, the epoch
//! and the offset after the last message it passed on. After a reconnect it
//! asks for each room from there (`resume:ROOM:EPOCH:NEXT`, sent before
//! `iam:` so that the server rejoins it at login), drops a message it
//! already passed on (an offset below that point), and turns the server's
//! `err:history-gap` into [`Event::Gap`](super::Event::Gap).

use super::Inner;
use crate::frame::ClientFrame;
use crate::text::Name;

/// The session's place in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) room: String,
    pub(super) epoch: u64,
    /// Where live traffic started on the last join.
    live: u64,
    /// One past the last message passed on, since that join.
    seen: Option<u64>,
}

impl Position {
    /// The offset to resume from.
    fn next(&self) -> u64 {
        self.seen.unwrap_or(self.live)
    }
}

impl Inner {
    /// `room:ROOM:EPOCH:NEXT`: a new log starts the position over; the
    /// same log keeps it (a resume continues where the session was). Live
    /// traffic starts at `live` either way: what comes before is history.
    /// Returns whether the session's place continues (the same log).
    pub(super) fn on_room_state(&mut self, room: &str, epoch: u64, live: u64) -> bool {
        match self.positions.iter_mut().find(|p| p.room == room) {
            Some(p) if p.epoch == epoch => {
                // The resume asked from where the session stood; keep that
                // as its place even if nothing came yet.
                p.seen.get_or_insert(p.live);
                p.live = live;
                true
            }
            Some(p) => {
                p.epoch = epoch;
                p.live = live;
                p.seen = None;
                false
            }
            None => {
                self.positions.push(Position {
                    room: room.to_owned(),
                    epoch,
                    live,
                    seen: None,
                });
                false
            }
        }
    }

    /// Whether a message at `offset` of `room` is new to the session
    /// (`None` if not) and if so whether it is history (said before live
    /// traffic started on the last join); the session's place moves past
    /// it.
    pub(super) fn is_new(&mut self, room: &str, offset: u64) -> Option<bool> {
        let Some(p) = self.positions.iter_mut().find(|p| p.room == room) else {
            return Some(false);
        };
        if p.seen.is_some_and(|seen| offset < seen) {
            return None;
        }
        p.seen = Some(offset + 1);
        Some(offset < p.live)
    }

    /// Where the session stands in `room`: the offset it needs next.
    pub(super) fn position_next(&self, room: &str) -> Option<u64> {
        self.positions
            .iter()
            .find(|p| p.room == room)
            .map(Position::next)
    }

    /// The session left `room`: nothing to resume there.
    pub(super) fn forget_position(&mut self, room: &str) {
        self.positions.retain(|p| p.room != room);
    }

    /// Before `iam:` on a new connection, if the last one had history:
    /// a `resume:` for each room the session knows its place in. Returns
    /// the rooms asked for.
    pub(super) fn queue_resumes(&mut self) -> Vec<String> {
        if !self.had_history {
            return Vec::new();
        }
        let wanted: Vec<(String, u64, u64)> = self
            .positions
            .iter()
            .map(|p| (p.room.clone(), p.epoch, p.next()))
            .collect();
        let mut asked = Vec::new();
        for (room, epoch, next) in wanted {
            let frame = ClientFrame::Resume {
                room: Name::trusted(&room),
                epoch,
                next,
            };
            if self.queue(&frame).is_ok() {
                asked.push(room);
            }
        }
        asked
    }

    /// `err:history-gap:ROOM:MISSING:TEXT`: the room and how many messages
    /// are lost (`None` when unknown).
    pub(super) fn parse_gap(text: &str) -> Option<(String, Option<u64>)> {
        let (room, rest) = text.split_once(':')?;
        let (missing, _) = rest.split_once(':')?;
        let missing = match missing {
            "?" => None,
            n => Some(n.parse().ok()?),
        };
        Some((room.to_owned(), missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_texts_parse_and_odd_ones_do_not() {
        assert_eq!(
            Inner::parse_gap("rust:40:messages 0 to 39 are no longer kept"),
            Some(("rust".to_owned(), Some(40)))
        );
        assert_eq!(
            Inner::parse_gap("rust:?:log 1 is gone"),
            Some(("rust".to_owned(), None))
        );
        assert_eq!(Inner::parse_gap("rust:x:nope"), None);
        assert_eq!(Inner::parse_gap("no colon"), None);
    }
}
