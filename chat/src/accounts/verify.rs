//! Deciding a login against the accounts: at once for a guest, by a
//! password check (slow, so run elsewhere) for a secret.
//!
//! [`Directory::request`] answers what the server should do with one
//! `LoginRequested`:
//!
//! | login                  | name registered                | name not registered          |
//! |------------------------|--------------------------------|------------------------------|
//! | guest (`iam:NAME`)     | refused: the name is registered | approved (refused with `--require-account`) |
//! | `iam:NAME:SECRET`      | checked against its hash        | checked against a dummy hash, refused |
//!
//! A check ([`Check::run`]) costs one argon2 verification whether or not
//! the name is registered, and a wrong password and an unknown name get the
//! same answer, [`WRONG_NAME_OR_PASSWORD`]: neither the answer nor its
//! timing tells whether a name has an account. (A guest login does tell,
//! where guests are let in: a registered name is refused to a guest,
//! whatever the answer says. `--require-account` closes that too.)
//!
//! [`AccountsSource`] keeps the directory in step with the accounts file:
//! it looks at the file's size, modification time and inode before each
//! decision and reads it again when one changed, so `chat account` edits
//! take effect without a restart. A file that became malformed is logged
//! and the last good accounts stay in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use chat_proto::ErrorCode;

use super::file::{Accounts, AccountsError};
use super::password::{cost_of, dummy_like, verify_password};

/// The answer to a wrong password and to an unknown name alike.
pub const WRONG_NAME_OR_PASSWORD: &str = "wrong name or password";

/// The answer to a guest when only accounts may log in.
pub const ACCOUNTS_ONLY: &str = "this server takes accounts only: log in with iam:NAME:PASSWORD";

/// What to tell the server about one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it in.
    Approve,
    /// Refuse it with `err:CODE:TEXT`.
    Refuse {
        /// The error code.
        code: ErrorCode,
        /// The error text.
        text: String,
    },
}

impl Decision {
    fn refuse(code: ErrorCode, text: impl Into<String>) -> Decision {
        Decision::Refuse {
            code,
            text: text.into(),
        }
    }
}

/// What a login request needs next.
#[derive(Debug)]
pub enum Next {
    /// Decided already (a guest).
    Decided(Decision),
    /// A password check, to run off the event loop.
    Check(Check),
}

/// One password check: slow (an argon2 verification) and self-contained,
/// to run on another thread.
pub struct Check {
    /// The account's hash, or the dummy one for a name without an account.
    phc: Arc<str>,
    /// Whether `phc` is the account's.
    registered: bool,
    secret: String,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// Verifies the secret: approved only if the name is registered and the
    /// secret is its password. Takes as long either way.
    pub fn run(self) -> Decision {
        let matches = verify_password(&self.phc, &self.secret);
        if matches && self.registered {
            Decision::Approve
        } else {
            Decision::refuse(ErrorCode::LoginRefused, WRONG_NAME_OR_PASSWORD)
        }
    }
}

/// The accounts as the login decisions need them.
#[derive(Debug, Clone)]
pub struct Directory {
    accounts: Arc<Accounts>,
    /// What a name without an account is checked against.
    dummy: Arc<str>,
    /// The cost of the accounts' hashes the dummy was made like (`None`:
    /// the default cost).
    dummy_cost: Option<String>,
    /// Refuse guests.
    require_account: bool,
}

impl Directory {
    /// A directory of `accounts`; guests are refused if `require_account`.
    /// Makes the dummy hash, with the cost most accounts' hashes have (the
    /// default cost if there are none): one argon2 hash.
    pub fn new(accounts: Accounts, require_account: bool) -> Result<Directory, String> {
        let (dummy, dummy_cost) = dummy_for(&accounts, None)?;
        Ok(Directory {
            accounts: Arc::new(accounts),
            dummy,
            dummy_cost,
            require_account,
        })
    }

    /// The same directory with other accounts; the dummy hash is made again
    /// only if the usual cost changed.
    fn with_accounts(&self, accounts: Accounts) -> Result<Directory, String> {
        let (dummy, dummy_cost) = dummy_for(&accounts, Some((&self.dummy, &self.dummy_cost)))?;
        Ok(Directory {
            accounts: Arc::new(accounts),
            dummy,
            dummy_cost,
            require_account: self.require_account,
        })
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// What to do with a login as `name`, with `secret` if one was sent.
    pub fn request(&self, name: &str, secret: Option<String>) -> Next {
        let account = self.accounts.get(name);
        match secret {
            None if self.require_account => {
                Next::Decided(Decision::refuse(ErrorCode::LoginRefused, ACCOUNTS_ONLY))
            }
            None => match account {
                None => Next::Decided(Decision::Approve),
                Some((registered, _)) => Next::Decided(Decision::refuse(
                    ErrorCode::LoginRefused,
                    format!("{registered} is registered: log in with its password"),
                )),
            },
            Some(secret) => Next::Check(match account {
                Some((_, phc)) => Check {
                    phc: phc.into(),
                    registered: true,
                    secret,
                },
                None => Check {
                    phc: self.dummy.clone(),
                    registered: false,
                    secret,
                },
            }),
        }
    }
}

/// A dummy hash with the cost most of `accounts` have (the default cost if
/// none), and that cost; `current` again if it has that cost already.
fn dummy_for(
    accounts: &Accounts,
    current: Option<(&Arc<str>, &Option<String>)>,
) -> Result<(Arc<str>, Option<String>), String> {
    let mut costs: Vec<(String, &str, usize)> = Vec::new();
    for (_, phc) in accounts.iter() {
        let Some(cost) = cost_of(phc) else { continue };
        match costs.iter_mut().find(|(c, _, _)| *c == cost) {
            Some((_, _, count)) => *count += 1,
            None => costs.push((cost, phc, 1)),
        }
    }
    // The most common cost; on a tie, the one met first.
    let model = costs.iter().rev().max_by_key(|(_, _, count)| *count);
    let cost = model.map(|(cost, _, _)| cost.clone());
    if let Some((dummy, current_cost)) = current
        && *current_cost == cost
    {
        return Ok((dummy.clone(), cost));
    }
    let dummy = dummy_like(model.map_or("", |(_, phc, _)| *phc)).map_err(|e| e.to_string())?;
    Ok((dummy.into(), cost))
}

/// The accounts file, read again when it changes.
#[derive(Debug)]
pub struct AccountsSource {
    path: PathBuf,
    stamp: Option<Stamp>,
    directory: Directory,
}

/// What tells that a file changed: size, modification time, inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

impl AccountsSource {
    /// Reads the accounts file at `path`; fails on a missing or malformed
    /// file, so that a server does not start with accounts it cannot read.
    pub fn open(path: &Path, require_account: bool) -> Result<AccountsSource, AccountsError> {
        let stamp = stamp(path);
        let accounts = Accounts::load(path)?;
        let directory =
            Directory::new(accounts, require_account).map_err(|reason| AccountsError::Io {
                path: path.into(),
                source: std::io::Error::other(reason),
            })?;
        Ok(AccountsSource {
            path: path.into(),
            stamp,
            directory,
        })
    }

    /// The directory, read again first if the file changed. A file that
    /// cannot be read (or was removed) is logged, and the last good
    /// accounts stay in force.
    pub fn directory(&mut self) -> &Directory {
        let now = stamp(&self.path);
        if now != self.stamp {
            self.stamp = now;
            match Accounts::load(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|accounts| self.directory.with_accounts(accounts))
            {
                Ok(directory) => {
                    tracing::info!(
                        path = %self.path.display(),
                        accounts = directory.len(),
                        "accounts file read again"
                    );
                    self.directory = directory;
                }
                Err(e) => tracing::error!(
                    "accounts file not read again, the last good one stays in force: {e}"
                ),
            }
        }
        &self.directory
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many accounts were read last.
    pub fn len(&self) -> usize {
        self.directory.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.directory.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::password::{HashCost, hash_password, tests::CHEAP};
    use super::*;

    fn directory(require_account: bool) -> Directory {
        let mut accounts = Accounts::new();
        accounts
            .add("zhangsan", &hash_password("correct horse", CHEAP).unwrap())
            .unwrap();
        Directory::new(accounts, require_account).unwrap()
    }

    fn decide(directory: &Directory, name: &str, secret: Option<&str>) -> Decision {
        match directory.request(name, secret.map(String::from)) {
            Next::Decided(decision) => decision,
            Next::Check(check) => check.run(),
        }
    }

    fn refused(text: &str) -> Decision {
        Decision::refuse(ErrorCode::LoginRefused, text)
    }

    #[test]
    fn guests_take_free_names_only() {
        let d = directory(false);
        assert_eq!(decide(&d, "lisi", None), Decision::Approve);
        let taken = refused("zhangsan is registered: log in with its password");
        assert_eq!(decide(&d, "zhangsan", None), taken);
        // A look-alike of a registered name is the registered name.
        assert_eq!(decide(&d, "ZhangSan", None), taken);
    }

    #[test]
    fn the_right_password_opens_the_account_and_look_alikes_of_its_name() {
        let d = directory(false);
        assert_eq!(
            decide(&d, "zhangsan", Some("correct horse")),
            Decision::Approve
        );
        assert_eq!(
            decide(&d, "ZHANGSAN", Some("correct horse")),
            Decision::Approve
        );
    }

    #[test]
    fn a_wrong_password_and_an_unknown_name_get_the_same_answer() {
        let d = directory(false);
        let wrong = decide(&d, "zhangsan", Some("battery staple"));
        let unknown = decide(&d, "lisi", Some("correct horse"));
        assert_eq!(wrong, refused(WRONG_NAME_OR_PASSWORD));
        assert_eq!(unknown, wrong);
    }

    #[test]
    fn an_unknown_name_costs_a_verification_with_the_accounts_cost() {
        let d = directory(false);
        let Next::Check(check) = d.request("lisi", Some("x".into())) else {
            panic!("a secret needs a check");
        };
        assert!(!check.registered);
        let (_, real) = d.accounts.get("zhangsan").unwrap();
        assert_eq!(cost_of(&check.phc), cost_of(real));
        // Not even the dummy's own password would open it: there is none
        // to guess, and `registered` is false anyway.
        assert_eq!(check.run(), refused(WRONG_NAME_OR_PASSWORD));
    }

    #[test]
    fn with_no_accounts_the_dummy_has_the_default_cost() {
        let d = Directory::new(Accounts::new(), false).unwrap();
        let default = hash_password("x", HashCost::default()).unwrap();
        assert_eq!(cost_of(&d.dummy), cost_of(&default));
    }

    #[test]
    fn require_account_refuses_every_guest_alike() {
        let d = directory(true);
        assert_eq!(decide(&d, "lisi", None), refused(ACCOUNTS_ONLY));
        assert_eq!(decide(&d, "zhangsan", None), refused(ACCOUNTS_ONLY));
        assert_eq!(
            decide(&d, "zhangsan", Some("correct horse")),
            Decision::Approve
        );
    }

    #[test]
    fn the_source_follows_the_file_and_keeps_the_last_good_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        let mut accounts = Accounts::new();
        accounts
            .add("zhangsan", &hash_password("one", CHEAP).unwrap())
            .unwrap();
        accounts.save(&path).unwrap();
        let mut source = AccountsSource::open(&path, false).unwrap();
        assert_eq!(decide(source.directory(), "lisi", None), Decision::Approve);

        accounts
            .add("lisi", &hash_password("two", CHEAP).unwrap())
            .unwrap();
        accounts.save(&path).unwrap();
        assert_eq!(
            decide(source.directory(), "lisi", Some("two")),
            Decision::Approve
        );

        // A broken file: the last good accounts stay.
        std::fs::write(&path, "broken\n").unwrap();
        assert_eq!(source.directory().len(), 2);
        assert_eq!(
            decide(source.directory(), "lisi", Some("two")),
            Decision::Approve
        );

        accounts.remove("lisi").unwrap();
        accounts.save(&path).unwrap();
        assert_eq!(source.directory().len(), 1);
        assert_eq!(decide(source.directory(), "lisi", None), Decision::Approve);
    }

    #[test]
    fn a_server_does_not_start_on_a_missing_or_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        assert!(AccountsSource::open(&path, false).is_err());
        std::fs::write(&path, "x:y\n").unwrap();
        let err = AccountsSource::open(&path, false).unwrap_err();
        assert!(err.to_string().contains(":1:"), "{err}");
    }
}
