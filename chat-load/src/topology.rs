//! Who hears whom in a fan-out run, and who tells a sender how far its
//! messages got.
//!
//! * **Rooms.** Without rooms every client is in one room (the server's
//!   default room, or one IRC channel). With `R` rooms, client `i` is in
//!   room `i mod R`, so rooms differ in size by at most one member. Room
//!   `r` is called `bench<r>` (`#bench<r>` over IRC); the single IRC
//!   channel is `#bench`.
//! * **Echo.** A chat server relays a message to every member of its room,
//!   the sender included. An IRC server relays it to every member but the
//!   sender. So a message is delivered `room size` times over chat and
//!   `room size − 1` times over IRC, and a receiver expects as many
//!   messages from each sender it hears.
//! * **Witness.** A windowed burst needs to know how far a sender's
//!   messages have come back. Over chat a client sees its own: it is its
//!   own witness. Over IRC the witness of sender `i` is the next member of
//!   its room (`i + R`, wrapping to the room's first member), so each
//!   client watches exactly one sender (the previous member) and the work
//!   of reporting is spread evenly, as over chat. Every IRC room therefore
//!   needs two members at least.

/// The room the single IRC channel is called when there are no rooms.
pub const IRC_CHANNEL: &str = "#bench";

/// The room layout of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    clients: usize,
    /// `None`: one room holding everyone.
    rooms: Option<usize>,
    /// Whether a sender receives its own messages.
    echo: bool,
}

impl Topology {
    /// `clients` clients in `rooms` rooms (`None`: one room); `echo` if the
    /// server sends a sender its own messages.
    pub fn new(clients: usize, rooms: Option<usize>, echo: bool) -> Self {
        Topology {
            clients,
            rooms,
            echo,
        }
    }

    /// Checks every room can hold a run: at least one member, and two
    /// without echo (someone must hear each message).
    pub fn validate(&self) -> Result<(), String> {
        let rooms = self.room_count();
        if rooms == 0 {
            return Err("--rooms must be at least 1".into());
        }
        let least = if self.echo { 1 } else { 2 };
        if self.clients < least * rooms {
            return Err(if self.echo {
                format!("{} clients cannot fill {rooms} rooms", self.clients)
            } else {
                format!(
                    "{} clients leave a room of {rooms} with fewer than 2 members, \
                     and over IRC nobody hears a lone member",
                    self.clients
                )
            });
        }
        Ok(())
    }

    /// Rooms in use (1 without rooms).
    pub fn room_count(&self) -> usize {
        self.rooms.unwrap_or(1)
    }

    /// Whether clients speak in named rooms (`--rooms`), not in the
    /// server's default room.
    pub fn has_rooms(&self) -> bool {
        self.rooms.is_some()
    }

    /// Whether a sender receives its own messages.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// The room of client `i`.
    #[inline]
    pub fn room_of(&self, i: usize) -> usize {
        self.rooms.map_or(0, |r| i % r)
    }

    /// Members of room `room`.
    pub fn members(&self, room: usize) -> usize {
        let r = self.room_count();
        self.clients / r + usize::from(room < self.clients % r)
    }

    /// How many clients receive each message of `sender`; also how many
    /// senders each member of that room hears.
    pub fn audience(&self, sender: usize) -> usize {
        let members = self.members(self.room_of(sender));
        if self.echo { members } else { members - 1 }
    }

    /// Whether `receiver` is meant to receive the messages of `sender`.
    #[inline]
    pub fn hears(&self, receiver: usize, sender: usize) -> bool {
        sender < self.clients
            && self.room_of(sender) == self.room_of(receiver)
            && (self.echo || sender != receiver)
    }

    /// Deliveries expected in all: each of `messages` per sender reaches
    /// its audience.
    pub fn expected(&self, messages: u32) -> u64 {
        (0..self.clients)
            .map(|s| u64::from(messages) * self.audience(s) as u64)
            .sum()
    }

    /// The receiver whose deliveries tell `sender` how far it got.
    pub fn witness(&self, sender: usize) -> usize {
        if self.echo {
            return sender;
        }
        let step = self.room_count();
        if sender + step < self.clients {
            sender + step
        } else {
            self.room_of(sender)
        }
    }

    /// The sender `receiver` is the witness of.
    pub fn watched(&self, receiver: usize) -> usize {
        if self.echo {
            return receiver;
        }
        let step = self.room_count();
        if receiver >= step {
            receiver - step
        } else {
            receiver + step * (self.members(receiver) - 1)
        }
    }

    /// The chat name of room `room` (`bench<room>`).
    pub fn room_name(room: usize) -> String {
        format!("bench{room}")
    }

    /// The IRC channel of room `room`: `#bench` without rooms, else
    /// `#bench<room>`.
    pub fn channel(&self, room: usize) -> String {
        if self.has_rooms() {
            format!("#{}", Topology::room_name(room))
        } else {
            IRC_CHANNEL.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_room_with_echo_is_k_deliveries_per_message() {
        let t = Topology::new(50, None, true);
        assert!(t.validate().is_ok());
        assert_eq!(t.audience(7), 50);
        assert_eq!(t.expected(1000), 50 * 1000 * 50);
        assert!(t.hears(3, 3) && t.hears(3, 49) && !t.hears(3, 50));
        assert_eq!((t.witness(7), t.watched(7)), (7, 7));
    }

    #[test]
    fn without_echo_nobody_hears_themselves() {
        let t = Topology::new(50, None, false);
        assert_eq!(t.audience(0), 49);
        assert_eq!(t.expected(1000), 50 * 1000 * 49);
        assert!(!t.hears(3, 3) && t.hears(3, 4));
        assert_eq!(t.channel(0), "#bench");
    }

    #[test]
    fn rooms_split_clients_by_index() {
        // 10 clients in 4 rooms: sizes 3, 3, 2, 2.
        let t = Topology::new(10, Some(4), true);
        assert_eq!(
            (0..4).map(|r| t.members(r)).collect::<Vec<_>>(),
            [3, 3, 2, 2]
        );
        assert_eq!(t.room_of(9), 1);
        assert!(t.hears(1, 9) && !t.hears(1, 2));
        assert_eq!(t.expected(10), 10 * (3 * 3 + 3 * 3 + 2 * 2 + 2 * 2));
        assert_eq!(Topology::room_name(3), "bench3");
        assert_eq!(t.channel(3), "#bench3");
    }

    #[test]
    fn witnesses_pair_every_sender_with_one_receiver_in_its_room() {
        for (clients, rooms) in [(50, None), (10, Some(4)), (9, Some(3)), (2, None)] {
            let t = Topology::new(clients, rooms, false);
            assert!(t.validate().is_ok());
            let mut watched_by = vec![None; clients];
            for s in 0..clients {
                let w = t.witness(s);
                assert!(t.hears(w, s), "{clients}/{rooms:?}: {w} must hear {s}");
                assert_eq!(t.watched(w), s);
                assert!(watched_by[w].replace(s).is_none(), "{w} watches two");
            }
        }
    }

    #[test]
    fn rooms_need_members() {
        assert!(Topology::new(3, Some(4), true).validate().is_err());
        assert!(Topology::new(4, Some(4), true).validate().is_ok());
        assert!(Topology::new(7, Some(4), false).validate().is_err());
        assert!(Topology::new(8, Some(4), false).validate().is_ok());
        assert!(Topology::new(1, None, false).validate().is_err());
        assert!(Topology::new(5, Some(0), true).validate().is_err());
    }
}
