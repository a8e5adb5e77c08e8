//! `chat serve`'s flags for rooms: the default room every connection
//! enters when it logs in, how many rooms the server holds, how many one
//! user may be in, how many members a room may have, and whether rooms
//! that empty are kept. Defaults are the core's ([`ServerConfig::default`]);
//! the hub applies them and its [`ServerConfig::validate`] refuses what
//! cannot work (a zero limit, a default room that is not a room name), with
//! its own reason. These flags only fill in the configuration.

use chat_proto::ServerConfig;
use clap::Args;

/// The room settings, as flags.
#[derive(Debug, Args)]
pub(crate) struct RoomArgs {
    /// The room every connection enters when it logs in (the seed's room,
    /// which a client without the rooms capability reads as msg:, join:,
    /// left:). It always exists.
    #[arg(long, value_name = "NAME", default_value_t = ServerConfig::default().default_room)]
    default_room: String,
    /// Most rooms on the server, the default room included. Past it, a
    /// join: that would create a room forgets the empty room idle the
    /// longest, if any is kept (for its history, or --persistent-rooms),
    /// or is answered err:too-many-rooms.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_rooms)]
    max_rooms: usize,
    /// Most rooms one connection may be in, the default room included.
    /// Past it: err:too-many-rooms.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().rooms_per_user)]
    rooms_per_user: usize,
    /// Most members of one room other than the default room (which holds
    /// everyone logged in, up to --max-connections). Past it: err:room-full.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().room_members)]
    room_members: usize,
    /// Keep rooms that empty, with their message offsets, instead of
    /// removing them (they still give way, the idle longest first, when
    /// --max-rooms is reached).
    #[arg(long)]
    persistent_rooms: bool,
}

impl RoomArgs {
    /// Writes the flags into `config`'s room fields, leaving the others as
    /// they are.
    pub(crate) fn apply(&self, config: &mut ServerConfig) {
        config.default_room.clone_from(&self.default_room);
        config.max_rooms = self.max_rooms;
        config.rooms_per_user = self.rooms_per_user;
        config.room_members = self.room_members;
        config.persistent_rooms = self.persistent_rooms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tests::config as served;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Rooms {
        #[command(flatten)]
        rooms: RoomArgs,
    }

    /// The room fields `flags` make, applied to the core's defaults.
    fn applied(flags: &[&str]) -> ServerConfig {
        let args = Rooms::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let mut config = ServerConfig::default();
        args.rooms.apply(&mut config);
        config
    }

    #[test]
    fn without_flags_the_core_defaults_hold() {
        assert_eq!(applied(&[]), ServerConfig::default());
    }

    #[test]
    fn flags_set_each_room_setting() {
        let c = applied(&[
            "--default-room",
            "大厅",
            "--max-rooms",
            "50",
            "--rooms-per-user",
            "3",
            "--room-members",
            "100",
            "--persistent-rooms",
        ]);
        assert_eq!(c.default_room, "大厅");
        assert_eq!(
            (c.max_rooms, c.rooms_per_user, c.room_members),
            (50, 3, 100)
        );
        assert!(c.persistent_rooms);
        // Only the room fields.
        let mut rest = c.clone();
        let core = ServerConfig::default();
        rest.default_room.clone_from(&core.default_room);
        (rest.max_rooms, rest.rooms_per_user) = (core.max_rooms, core.rooms_per_user);
        (rest.room_members, rest.persistent_rooms) = (core.room_members, false);
        assert_eq!(rest, ServerConfig::default());
    }

    #[test]
    fn chat_serve_takes_them_and_refuses_what_the_core_refuses() {
        let c = served(&[
            "--default-room",
            "main",
            "--max-rooms",
            "2",
            "--persistent-rooms",
        ])
        .unwrap();
        assert_eq!((c.default_room.as_str(), c.max_rooms), ("main", 2));
        assert!(c.persistent_rooms);
        for (bad, reason) in [
            (["--max-rooms", "0"], "max_rooms must be greater than zero"),
            (
                ["--rooms-per-user", "0"],
                "rooms_per_user must be greater than zero",
            ),
            (
                ["--room-members", "0"],
                "room_members must be greater than zero",
            ),
            (["--default-room", "two words"], "not a valid room name"),
            (["--default-room", "a:b"], "not a valid room name"),
        ] {
            let err = served(&bad).unwrap_err();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
        // A room name must leave room in a frame for the longest user name:
        // 30 characters of 4 bytes fit frames of 4096 bytes, not of 256.
        let long = "𠀀".repeat(30);
        let err = served(&["--max-frame", "256", "--default-room", &long]).unwrap_err();
        assert!(err.contains("not a valid room name"), "{err}");
        assert!(served(&["--default-room", &long]).is_ok());
        // Not a number: clap's own refusal, naming the flag.
        let err = served(&["--room-members", "many"]).unwrap_err();
        assert!(err.contains("--room-members"), "{err}");
    }
}
