//! `chat account add|passwd|remove NAME --accounts FILE`: managing the
//! accounts file a server reads with `chat serve --accounts FILE`.
//!
//! A password is read without echo from the terminal (asked twice for a
//! new one), or, when stdin is not a terminal, from the first line of
//! stdin (so `echo "$PW" | chat account add NAME --accounts FILE` works in
//! scripts). The file is read first, so a name that is taken (or missing)
//! is reported before any password is asked for, and written back
//! atomically with mode 0600. A running server picks the change up at its
//! next login.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use chat::accounts::{Accounts, HashCost, check_password, hash_password};
use clap::{Args, Subcommand};

/// Flags of `chat account`.
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Registers NAME (the file is created if need be). The password is
    /// read without echo, or from the first line of stdin when piped.
    Add(Target),
    /// Changes the password of NAME, read as for `add`.
    Passwd(Target),
    /// Removes the account of NAME.
    Remove(Target),
}

/// Which account, in which file.
#[derive(Debug, Args)]
struct Target {
    /// The account's name (a look-alike spelling finds the same account).
    name: String,
    /// The accounts file.
    #[arg(long, value_name = "FILE")]
    accounts: PathBuf,
}

pub(crate) fn run(args: AccountArgs) -> Result<(), String> {
    match args.action {
        Action::Add(target) => {
            let mut accounts =
                Accounts::load_or_new(&target.accounts).map_err(|e| e.to_string())?;
            accounts
                .check_free(&target.name)
                .map_err(|e| e.to_string())?;
            let phc = new_hash(&target.name)?;
            accounts
                .add(&target.name, &phc)
                .map_err(|e| e.to_string())?;
            accounts.save(&target.accounts).map_err(|e| e.to_string())?;
            println!("added {} to {}", target.name, target.accounts.display());
        }
        Action::Passwd(target) => {
            let mut accounts = Accounts::load(&target.accounts).map_err(|e| e.to_string())?;
            let Some((registered, _)) = accounts.get(&target.name) else {
                return Err(format!("{} has no account", target.name));
            };
            let registered = registered.to_owned();
            let phc = new_hash(&registered)?;
            accounts
                .set_hash(&registered, &phc)
                .map_err(|e| e.to_string())?;
            accounts.save(&target.accounts).map_err(|e| e.to_string())?;
            println!("changed the password of {registered}");
        }
        Action::Remove(target) => {
            let mut accounts = Accounts::load(&target.accounts).map_err(|e| e.to_string())?;
            let removed = accounts.remove(&target.name).map_err(|e| e.to_string())?;
            accounts.save(&target.accounts).map_err(|e| e.to_string())?;
            println!("removed {removed} from {}", target.accounts.display());
        }
    }
    Ok(())
}

/// Reads a new password for `name` and hashes it.
fn new_hash(name: &str) -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = prompt(&format!("new password for {name}: "))?;
        check_password(&first).map_err(|e| e.to_string())?;
        let again = prompt("the same again: ")?;
        if first != again {
            return Err("the passwords differ; nothing changed".into());
        }
        first
    } else {
        stdin_line()?
    };
    hash_password(&password, HashCost::default()).map_err(|e| e.to_string())
}

/// Asks for a password on the terminal, without echo.
pub(crate) fn prompt(question: &str) -> Result<String, String> {
    rpassword::prompt_password(question).map_err(|e| format!("cannot read the password: {e}"))
}

/// The first line of stdin, without its line ending: a password piped in.
pub(crate) fn stdin_line() -> Result<String, String> {
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    if read == 0 {
        return Err("no password on stdin".into());
    }
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}
