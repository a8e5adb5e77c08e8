//! The application's side of a batch: the commands queued through the
//! [`ServerHandle`](crate::ServerHandle) (logins decided, kicks, notices to
//! one, all or a room, members taken out of a room, shutdown, the store
//! worker's reports) applied to the hub in the order they were made, and
//! the reads the handle asked the loop for (a measurement, the room
//! listing) answered at the end of the batch, once for all the requests of
//! the batch.
//!
//! Every action goes through the hub's own method; the handle checked what
//! it could without the hub, and the hub has the last word.

use std::time::Instant;

use super::HubDriver;
use crate::server_handle::Command;
use crate::snapshot::{RoomListing, ServerSnapshot};

/// The reads of one batch, answered at its end: the last ticket of each
/// kind (it answers every earlier one too).
#[derive(Debug, Default)]
pub(super) struct Reads {
    measure: Option<u64>,
    rooms: Option<u64>,
}

impl HubDriver {
    /// The hub's counters and levels now. Walks the open connections and
    /// the rooms: taken only when the application asks
    /// ([`ServerHandle::measure`](crate::ServerHandle::measure)).
    pub fn snapshot(&self) -> ServerSnapshot {
        let hub = &self.hub;
        let unflushed = self.open.iter().flatten();
        let unflushed = unflushed.filter_map(|entry| hub.unflushed(entry.id));
        let backlogs = hub.rooms().filter_map(|(name, _)| hub.room_backlog(name));
        ServerSnapshot {
            stats: hub.stats().clone(),
            connections: hub.connections(),
            sockets: hub.sockets(),
            members: hub.members(),
            rooms: hub.rooms().count(),
            unflushed_bytes: unflushed.map(|n| n as u64).sum(),
            room_backlog_bytes: backlogs.sum(),
        }
    }

    /// Every room and its members now: taken only when the application
    /// asks ([`ServerHandle::rooms`](crate::ServerHandle::rooms)).
    pub fn room_listing(&self) -> Vec<RoomListing> {
        RoomListing::of(&self.hub)
    }

    /// Applies the queued commands; returns the reads among them, to be
    /// answered at the end of the batch ([`answer`](Self::answer)).
    pub(super) fn apply_commands(&mut self, now: Instant) -> Reads {
        let mut reads = Reads::default();
        for command in self.handle.take_commands() {
            let result = match command {
                Command::Approve(conn) => {
                    self.hub.approve_login(conn, now);
                    Ok(())
                }
                Command::Refuse(conn, code, text) => self.hub.refuse_login(conn, now, code, &text),
                Command::Kick(conn, reason) => self.hub.kick(conn, now, &reason),
                Command::Notice(conn, text) => self.hub.notice(conn, now, &text),
                Command::NoticeAll(text) => self.hub.notice_all(now, &text),
                Command::NoticeRoom(room, text) => {
                    self.hub.notice_room(&room, now, &text).map(|found| {
                        if !found {
                            tracing::debug!(%room, "room notice: no such room");
                        }
                    })
                }
                Command::RemoveFromRoom(conn, room) => {
                    if !self.hub.remove_from_room(conn, &room, now) {
                        tracing::debug!(%conn, %room, "remove from room: not a member");
                    }
                    Ok(())
                }
                Command::Measure(ticket) => {
                    reads.measure = Some(ticket);
                    Ok(())
                }
                Command::ListRooms(ticket) => {
                    reads.rooms = Some(ticket);
                    Ok(())
                }
                Command::Shutdown => {
                    self.shutdown(now);
                    Ok(())
                }
                Command::Stored(heads) => {
                    for (room, epoch, next) in heads {
                        self.hub.stored(now, &room, epoch, next);
                    }
                    Ok(())
                }
                Command::StoreFailed(error) => {
                    self.store_failure.get_or_insert(error);
                    self.shutdown(now);
                    Ok(())
                }
            };
            if let Err(e) = result {
                // The handle checked what it could; the hub had the last word.
                tracing::warn!(error = %e, "the hub refused an action");
            }
            self.drain();
        }
        reads
    }

    /// Answers the batch's reads with what the hub holds now.
    pub(super) fn answer(&self, reads: Reads) {
        if let Some(ticket) = reads.measure {
            self.handle.measured(ticket, self.snapshot());
        }
        if let Some(ticket) = reads.rooms {
            self.handle.listed_rooms(ticket, self.room_listing());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use bytes::Bytes;
    use chat_proto::{HubEvent, Peer, ServerConfig};

    use super::super::tests::{peer, take};
    use super::*;
    use crate::{HubMsg, Next};

    #[test]
    fn a_batch_applies_the_handles_actions_and_ends_when_shutdown_completes() {
        let now = Instant::now();
        let mut config = ServerConfig::default();
        config.login = chat_proto::LoginMode::Application;
        let mut driver = HubDriver::new(config, Duration::from_millis(50)).unwrap();
        let handle = driver.server_handle();
        // Nobody listens yet: nothing is kept for later.
        let (a, out_a) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.end_batch(now);
        let events = handle.events();
        assert_eq!(events.try_next(), None);
        assert_eq!(take(&out_a).data.concat(), b"");
        // A request is seen (when the batch ends), refused, then a second
        // one approved.
        let (b, out_b) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        assert_eq!(events.try_next(), None);
        driver.end_batch(now);
        let Some(HubEvent::LoginRequested { conn, name, .. }) = events.try_next() else {
            panic!("no login request")
        };
        assert_eq!((conn, name.as_str()), (b, "b"));
        handle
            .refuse_login(b, chat_proto::ErrorCode::LoginRefused, "not today")
            .unwrap();
        assert!(
            handle
                .refuse_login(b, chat_proto::ErrorCode::LoginRefused, "a\nb")
                .is_err()
        );
        driver.end_batch(now);
        assert_eq!(take(&out_b).data.concat(), b"err:login-refused:not today\n");
        handle.approve_login(a);
        handle.notice(a, "hello a").unwrap();
        handle.notice_all("hello all").unwrap();
        assert!(handle.notice_all(&"x".repeat(5000)).is_err());
        driver.end_batch(now);
        assert_eq!(
            take(&out_a).data.concat(),
            b"ok:a\nnotice:hello a\nnotice:hello all\n"
        );
        assert_eq!(handle.logged_in(), [(a, "a".to_owned())]);
        assert_eq!(handle.stats().logins, 1);
        handle.kick(a, "enough").unwrap();
        driver.end_batch(now);
        assert_eq!(take(&out_a).data.concat(), b"err:kicked:enough\n");
        assert!(handle.logged_in().is_empty());

        handle.shutdown();
        assert!(matches!(driver.end_batch(now), Next::Wait(_)));
        driver.handle(HubMsg::Closed(a), now);
        driver.handle(HubMsg::Closed(b), now);
        assert_eq!(driver.end_batch(now), Next::Finished);
        drop(driver);
        // The server is gone: the subscription ends after what it holds.
        while let Some(event) = events.try_next() {
            assert!(matches!(
                event,
                HubEvent::LoggedIn { .. } | HubEvent::Closed { .. }
            ));
        }
        assert_eq!(events.recv(), None);
    }

    #[test]
    fn a_measurement_is_taken_at_the_end_of_the_batch_after_the_request() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let handle = driver.server_handle();
        let (a, out_a) = driver.accept(now, peer());
        // A connection that came another way, from a loopback address.
        let loopback = Peer::plain(Some([127, 0, 0, 2].into()));
        let (b, out_b) = driver.accept_from(now, loopback, "test");
        assert_eq!(driver.hub().peer(b), loopback.addr);
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:hi\n")), now);
        // The batch's output is routed at its end.
        driver.end_batch(now);
        let owed_a = take(&out_a).data.concat().len();
        let owed_b = take(&out_b).data.concat().len();
        // a reports its bytes written; b's are still owed.
        driver.handle(HubMsg::Written(a, owed_a), now);

        let mut cx = Context::from_waker(Waker::noop());
        let mut measuring = pin!(handle.measure());
        assert!(measuring.as_mut().poll(&mut cx).is_pending());
        driver.end_batch(now);
        let Poll::Ready(Some(snapshot)) = measuring.as_mut().poll(&mut cx) else {
            panic!("no measurement after the batch")
        };
        assert_eq!(
            (snapshot.connections, snapshot.sockets, snapshot.members),
            (2, 2, 2)
        );
        assert_eq!(snapshot.rooms, 1);
        assert_eq!(snapshot.unflushed_bytes, owed_b as u64);
        assert_eq!(snapshot.stats, *driver.hub().stats());
        assert_eq!((snapshot.stats.logins, snapshot.stats.messages), (2, 1));
        assert_eq!(snapshot.stats.deliveries, 2);

        // Once the server is gone, a request gets no answer, at once.
        drop(driver);
        let mut measuring = pin!(handle.measure());
        assert_eq!(measuring.as_mut().poll(&mut cx), Poll::Ready(None));
        assert_eq!(handle.measure_timeout(Duration::MAX), Ok(None));
    }

    #[test]
    fn room_commands_reach_the_room_and_the_listing_names_its_members() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let handle = driver.server_handle();
        let (a, out_a) = driver.accept(now, peer());
        let (b, out_b) = driver.accept(now, peer());
        driver.handle(
            HubMsg::Input(a, Bytes::from_static(b"iam:a\njoin:rust\n")),
            now,
        );
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        driver.end_batch(now);
        let _ = (take(&out_a), take(&out_b));

        handle.notice_room("rust", "hi rust").unwrap();
        handle.notice_room("lobby", "hi lobby").unwrap();
        // Checked when applied: no such room, nothing sent.
        handle.notice_room("nowhere", "hello?").unwrap();
        assert!(handle.notice_room("a b", "x").is_err());
        assert!(handle.notice_room("rust", "a\nb").is_err());
        assert!(handle.notice_room("rust", &"x".repeat(5000)).is_err());
        driver.end_batch(now);
        // a reads the default room in the seed's form, rust in the room
        // form; b is not in rust.
        assert_eq!(
            take(&out_a).data.concat(),
            b"room-notice:rust:hi rust\nnotice:hi lobby\n"
        );
        assert_eq!(take(&out_b).data.concat(), b"notice:hi lobby\n");

        let mut cx = Context::from_waker(Waker::noop());
        let mut listing = pin!(handle.rooms());
        assert!(listing.as_mut().poll(&mut cx).is_pending());
        driver.end_batch(now);
        let Poll::Ready(Some(mut rooms)) = listing.as_mut().poll(&mut cx) else {
            panic!("no listing after the batch")
        };
        rooms.sort_by(|x, y| x.name.cmp(&y.name));
        let room = |name: &str, members: &[(chat_proto::ConnId, &str)]| RoomListing {
            name: name.into(),
            members: members.iter().map(|(c, n)| (*c, (*n).to_owned())).collect(),
        };
        assert_eq!(
            rooms,
            [
                room("lobby", &[(a, "a"), (b, "b")]),
                room("rust", &[(a, "a")])
            ]
        );

        handle.remove_from_room(a, "rust").unwrap();
        // Not a member: ignored.
        handle.remove_from_room(b, "rust").unwrap();
        assert!(handle.remove_from_room(a, "").is_err());
        driver.end_batch(now);
        assert_eq!(take(&out_a).data.concat(), b"parted:rust:a\n");
        assert_eq!(take(&out_b).data.concat(), b"");
        // The room emptied and is gone.
        let mut listing = pin!(handle.rooms());
        assert!(listing.as_mut().poll(&mut cx).is_pending());
        driver.end_batch(now);
        assert_eq!(
            listing.as_mut().poll(&mut cx),
            Poll::Ready(Some(vec![room("lobby", &[(a, "a"), (b, "b")])]))
        );

        // Once the server is gone, a request gets no answer, at once.
        drop(driver);
        assert_eq!(handle.rooms_timeout(Duration::MAX), Ok(None));
    }
}
