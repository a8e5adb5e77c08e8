//! The accounts file: one `NAME:PHC` line per account, read, edited and
//! written back atomically.
//!
//! ```text
//! # chat accounts: NAME:PHC per line (argon2id). Managed by `chat account`.
//! zhangsan:$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//! 张三:$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//! ```
//!
//! * A line is an account (`NAME:PHC`: a valid chat name, which holds no
//!   colon, then an argon2id PHC string, which holds none either), a
//!   comment (starting with `#`) or blank. A CR before the LF is dropped.
//!   Comments and blank lines are kept when the file is rewritten.
//! * Names are compared by the core's [`NameKey`], as the server compares
//!   them, so `Admin`, `ａｄｍｉｎ` and `аdmin` (Cyrillic `а`) are the same
//!   account: a look-alike of a registered name cannot be registered, and
//!   logs in to (or is refused by) the registered one. Names that mix
//!   scripts, which the server refuses, cannot be registered.
//! * Anything else is an error naming the file and the line number; a
//!   server refuses to start on it.
//! * [`Accounts::save`] writes a temporary file beside the target (mode
//!   0600 on Unix), flushes it to disk and renames it over the target, so a
//!   reader (a running server) sees the old file or the new one, never half
//!   of one. Two `chat account` commands run at the same moment do not
//!   merge: the last rename wins.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chat_proto::{Name, NameKey, is_mixed_script};

use super::password::check_phc;

/// The first line of a new accounts file.
const HEADER: &str = "# chat accounts: NAME:PHC per line (argon2id). Managed by `chat account`.";

/// What can go wrong with an accounts file or an edit of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A line of the file is not an account, a comment or blank.
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        /// The file (empty when parsed from a string).
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The name cannot be a chat name.
    #[error("{name:?} cannot be registered: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why not.
        reason: String,
    },
    /// The hash is not an argon2id PHC string this server can verify.
    #[error("bad hash for {name}: {reason}")]
    BadHash {
        /// The account's name.
        name: String,
        /// What is wrong with the hash.
        reason: String,
    },
    /// The name, or a look-alike of it, is registered already.
    #[error("{name} is already registered{}", look_alike(name, registered))]
    Exists {
        /// The name asked for.
        name: String,
        /// The name as registered.
        registered: String,
    },
    /// No account has this name (or a look-alike of it).
    #[error("{name} has no account")]
    NoSuchAccount {
        /// The name.
        name: String,
    },
}

fn look_alike(name: &str, registered: &str) -> String {
    if name == registered {
        String::new()
    } else {
        format!(" (as {registered}, which looks the same)")
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A comment or a blank line, kept as it was.
    Other(String),
    /// An account.
    Account { name: String, phc: String },
}

/// The accounts of an accounts file, with its comments, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    lines: Vec<Line>,
    /// Index into `lines` of each account, by the key of its name.
    by_key: HashMap<NameKey, usize>,
}

impl Accounts {
    /// No accounts, and the header comment a new file starts with.
    pub fn new() -> Accounts {
        Accounts {
            lines: vec![Line::Other(HEADER.into())],
            by_key: HashMap::new(),
        }
    }

    /// Reads accounts from the text of an accounts file.
    pub fn parse(text: &str) -> Result<Accounts, AccountsError> {
        let mut accounts = Accounts::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let malformed = |reason: String| AccountsError::Malformed {
                path: PathBuf::new(),
                line: number + 1,
                reason,
            };
            if line.trim().is_empty() || line.starts_with('#') {
                accounts.lines.push(Line::Other(line.into()));
                continue;
            }
            let Some((name, phc)) = line.split_once(':') else {
                return Err(malformed("expected NAME:PHC (or a # comment)".into()));
            };
            check_name(name).map_err(|e| malformed(e.to_string()))?;
            check_phc(phc).map_err(|reason| malformed(format!("{name}: {reason}")))?;
            let key = NameKey::of(name);
            if let Some(&other) = accounts.by_key.get(&key) {
                let first = other + 1;
                let reason = match &accounts.lines[other] {
                    Line::Account { name: before, .. } if before != name => {
                        format!("{name} is the same name as {before} on line {first}")
                    }
                    _ => format!("{name} is registered on line {first} already"),
                };
                return Err(malformed(reason));
            }
            accounts.by_key.insert(key, accounts.lines.len());
            accounts.lines.push(Line::Account {
                name: name.into(),
                phc: phc.into(),
            });
        }
        Ok(accounts)
    }

    /// Reads the accounts file at `path`.
    pub fn load(path: &Path) -> Result<Accounts, AccountsError> {
        let text = fs::read_to_string(path).map_err(|source| AccountsError::Io {
            path: path.into(),
            source,
        })?;
        Accounts::parse(&text).map_err(|e| match e {
            AccountsError::Malformed { line, reason, .. } => AccountsError::Malformed {
                path: path.into(),
                line,
                reason,
            },
            other => other,
        })
    }

    /// Reads the accounts file at `path`, or starts a new one if there is
    /// no file there.
    pub fn load_or_new(path: &Path) -> Result<Accounts, AccountsError> {
        match Accounts::load(path) {
            Err(AccountsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Accounts::new())
            }
            other => other,
        }
    }

    /// The file's text: every line, each ended by LF.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            match line {
                Line::Other(other) => text.push_str(other),
                Line::Account { name, phc } => {
                    text.push_str(name);
                    text.push(':');
                    text.push_str(phc);
                }
            }
            text.push('\n');
        }
        text
    }

    /// Writes the accounts to `path` atomically: a temporary file beside
    /// it (mode 0600 on Unix), flushed to disk, renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), AccountsError> {
        write_atomically(path, self.to_text().as_bytes()).map_err(|source| AccountsError::Io {
            path: path.into(),
            source,
        })
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The account of `name` or of a look-alike of it: the name as
    /// registered and its PHC string.
    pub fn get(&self, name: &str) -> Option<(&str, &str)> {
        let index = *self.by_key.get(&NameKey::of(name))?;
        match &self.lines[index] {
            Line::Account { name, phc } => Some((name, phc)),
            Line::Other(_) => None,
        }
    }

    /// Every account's name and PHC string, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines.iter().filter_map(|line| match line {
            Line::Account { name, phc } => Some((name.as_str(), phc.as_str())),
            Line::Other(_) => None,
        })
    }

    /// Registers `name` with the hash `phc` (see
    /// [`hash_password`](super::hash_password)).
    pub fn add(&mut self, name: &str, phc: &str) -> Result<(), AccountsError> {
        self.check_free(name)?;
        check_phc(phc).map_err(|reason| AccountsError::BadHash {
            name: name.into(),
            reason,
        })?;
        self.by_key.insert(NameKey::of(name), self.lines.len());
        self.lines.push(Line::Account {
            name: name.into(),
            phc: phc.into(),
        });
        Ok(())
    }

    /// Checks that `name` could be registered: a valid name, neither it
    /// nor a look-alike registered already.
    pub fn check_free(&self, name: &str) -> Result<(), AccountsError> {
        check_name(name)?;
        match self.get(name) {
            Some((registered, _)) => Err(AccountsError::Exists {
                name: name.into(),
                registered: registered.into(),
            }),
            None => Ok(()),
        }
    }

    /// Gives the account of `name` (or of its look-alike) the hash `phc`;
    /// returns the name as registered.
    pub fn set_hash(&mut self, name: &str, phc: &str) -> Result<String, AccountsError> {
        check_phc(phc).map_err(|reason| AccountsError::BadHash {
            name: name.into(),
            reason,
        })?;
        let index = self.index_of(name)?;
        match &mut self.lines[index] {
            Line::Account {
                name: registered,
                phc: old,
            } => {
                *old = phc.into();
                Ok(registered.clone())
            }
            Line::Other(_) => Err(AccountsError::NoSuchAccount { name: name.into() }),
        }
    }

    /// Removes the account of `name` (or of its look-alike); returns the
    /// name as registered.
    pub fn remove(&mut self, name: &str) -> Result<String, AccountsError> {
        let index = self.index_of(name)?;
        let removed = match self.lines.remove(index) {
            Line::Account { name, .. } => name,
            Line::Other(_) => unreachable!("by_key only points at accounts"),
        };
        self.by_key.remove(&NameKey::of(&removed));
        for later in self.by_key.values_mut() {
            if *later > index {
                *later -= 1;
            }
        }
        Ok(removed)
    }

    fn index_of(&self, name: &str) -> Result<usize, AccountsError> {
        self.by_key
            .get(&NameKey::of(name))
            .copied()
            .ok_or_else(|| AccountsError::NoSuchAccount { name: name.into() })
    }
}

/// Checks that `name` can be registered: a valid chat name that does not
/// mix scripts (which the server would refuse).
fn check_name(name: &str) -> Result<(), AccountsError> {
    let bad = |reason: String| AccountsError::BadName {
        name: name.into(),
        reason,
    };
    Name::new(name).map_err(|e| bad(e.to_string()))?;
    if is_mixed_script(name) {
        return Err(bad("it mixes scripts that look alike".into()));
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, renamed over `path` once it is on disk.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // The rename is durable once the directory is on disk too; where a
    // directory cannot be opened for that, the rename has still happened.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A warning if the file at `path` may be read by users other than its
/// owner (Unix); `None` if not, or if that cannot be told.
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} may be read by other users (mode {mode:o}); `chmod 600` it",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::password::{hash_password, tests::CHEAP};
    use super::*;

    fn phc(password: &str) -> String {
        hash_password(password, CHEAP).unwrap()
    }

    fn malformed(text: &str) -> (usize, String) {
        match Accounts::parse(text) {
            Err(AccountsError::Malformed { line, reason, .. }) => (line, reason),
            other => panic!("{text:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn a_file_round_trips_with_its_comments() {
        let (a, b) = (phc("a"), phc("b"));
        let text = format!("# accounts\n\nzhangsan:{a}\r\n# the next one\n张三:{b}\n");
        let accounts = Accounts::parse(&text).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts.get("zhangsan"), Some(("zhangsan", a.as_str())));
        assert_eq!(accounts.get("张三"), Some(("张三", b.as_str())));
        let names: Vec<&str> = accounts.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["zhangsan", "张三"]);
        // CRLF becomes LF; everything else is kept.
        assert_eq!(accounts.to_text(), text.replace("\r\n", "\n"));
        assert_eq!(Accounts::parse(&accounts.to_text()).unwrap(), accounts);
    }

    #[test]
    fn malformed_lines_are_named_by_number() {
        let good = format!("zhangsan:{}", phc("pw"));
        let (line, reason) = malformed(&format!("# ok\n{good}\nno colon here\n"));
        assert_eq!(line, 3);
        assert!(reason.contains("NAME:PHC"), "{reason}");
        let (line, reason) = malformed(&format!("{good}\nbad name!:{}\n", phc("x")));
        assert_eq!(line, 2);
        assert!(reason.contains("bad name!"), "{reason}");
        let (line, reason) = malformed("lisi:plaintext-password\n");
        assert_eq!(line, 1);
        assert!(
            reason.contains("lisi") && reason.contains("PHC"),
            "{reason}"
        );
        let (_, reason) = malformed("lisi:\n");
        assert!(reason.contains("PHC"), "{reason}");
        let (_, reason) = malformed(&format!("{}:{}\n", "\u{430}dmin", phc("x")));
        assert!(reason.contains("mixes scripts"), "{reason}");
    }

    #[test]
    fn a_look_alike_twice_in_a_file_is_an_error() {
        let text = format!("admin:{}\n\nAdmin:{}\n", phc("a"), phc("b"));
        let (line, reason) = malformed(&text);
        assert_eq!(line, 3);
        assert_eq!(reason, "Admin is the same name as admin on line 1");
        let text = format!("admin:{}\nadmin:{}\n", phc("a"), phc("b"));
        assert_eq!(malformed(&text).1, "admin is registered on line 1 already");
    }

    #[test]
    fn look_alikes_cannot_register_twice_and_find_the_account() {
        let mut accounts = Accounts::new();
        accounts.add("admin", &phc("pw")).unwrap();
        for look_alike in ["admin", "Admin", "ａｄｍｉｎ", "adrnin"] {
            let err = accounts.add(look_alike, &phc("x")).unwrap_err();
            assert!(matches!(err, AccountsError::Exists { .. }), "{look_alike}");
            assert_eq!(accounts.get(look_alike).unwrap().0, "admin");
        }
        let err = accounts.add("Admin", &phc("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Admin is already registered (as admin, which looks the same)"
        );
        assert!(accounts.get("lisi").is_none());
    }

    #[test]
    fn edits_keep_the_index_right() {
        let mut accounts = Accounts::new();
        for name in ["a", "b", "c"] {
            accounts.add(name, &phc(name)).unwrap();
        }
        assert_eq!(accounts.remove("A").unwrap(), "a");
        assert!(accounts.get("a").is_none());
        let new = phc("new");
        assert_eq!(accounts.set_hash("c", &new).unwrap(), "c");
        assert_eq!(accounts.get("c").unwrap().1, new);
        assert_eq!(accounts.get("b").unwrap().0, "b");
        assert!(matches!(
            accounts.remove("a"),
            Err(AccountsError::NoSuchAccount { .. })
        ));
        assert!(matches!(
            accounts.set_hash("zz", &new),
            Err(AccountsError::NoSuchAccount { .. })
        ));
        assert_eq!(
            Accounts::parse(&accounts.to_text()).unwrap().len(),
            accounts.len()
        );
    }

    #[test]
    fn bad_names_and_hashes_are_refused() {
        let mut accounts = Accounts::new();
        for name in ["", "no:colon", "has space", "\u{430}dmin", &"x".repeat(33)] {
            assert!(
                matches!(
                    accounts.add(name, &phc("pw")),
                    Err(AccountsError::BadName { .. })
                ),
                "{name:?}"
            );
        }
        assert!(matches!(
            accounts.add("lisi", "plain"),
            Err(AccountsError::BadHash { .. })
        ));
        assert!(accounts.is_empty());
    }

    #[test]
    fn save_is_atomic_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        let mut accounts = Accounts::load_or_new(&path).unwrap();
        assert!(accounts.is_empty());
        accounts.add("zhangsan", &phc("pw")).unwrap();
        accounts.save(&path).unwrap();
        assert_eq!(Accounts::load(&path).unwrap(), accounts);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert_eq!(permission_warning(&path), None);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(permission_warning(&path).unwrap().contains("644"));
            // Saving again makes it private again.
            accounts.save(&path).unwrap();
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temporary file is left behind.
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        let err = Accounts::load(&path).unwrap_err();
        assert!(err.to_string().starts_with(&path.display().to_string()));
        fs::write(&path, "# fine\nbroken\n").unwrap();
        let err = Accounts::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:2: expected NAME:PHC (or a # comment)", path.display())
        );
        assert!(Accounts::load_or_new(&path).is_err());
    }
}
