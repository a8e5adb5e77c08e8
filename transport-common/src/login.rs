//! How a client logs in: a name, and for an account its secret.
//!
//! Every transport's `connect` takes an `impl Into<Login>`, so a plain
//! name (`"zhangsan"`) logs in as a guest (`iam:zhangsan`) exactly as
//! before, and [`Login::with_secret`] logs in to an account
//! (`iam:zhangsan:SECRET`, see the core's
//! [`Client::login_with_secret`](chat_proto::Client::login_with_secret)).
//! The session keeps the secret to log in again after a reconnect. Its
//! `Debug` output never shows the secret.

use std::fmt;

use chat_proto::{Client, UsageError};

/// A name to log in with, and the account's secret if there is one.
///
/// ```
/// use transport_common::Login;
///
/// let guest: Login = "zhangsan".into();
/// assert_eq!(guest.name(), "zhangsan");
/// assert!(!guest.has_secret());
///
/// let account = Login::with_secret("zhangsan", "correct horse");
/// assert!(account.has_secret());
/// assert!(!format!("{account:?}").contains("horse"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    name: String,
    secret: Option<String>,
}

impl Login {
    /// A guest login: `iam:NAME`.
    pub fn guest(name: impl Into<String>) -> Login {
        Login {
            name: name.into(),
            secret: None,
        }
    }

    /// A login to an account: `iam:NAME:SECRET`. Send it over TLS, or to a
    /// server on loopback: other servers refuse a secret sent in clear
    /// (`err:insecure`).
    pub fn with_secret(name: impl Into<String>, secret: impl Into<String>) -> Login {
        Login {
            name: name.into(),
            secret: Some(secret.into()),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a secret goes with the name.
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Starts the login on a connected core session: `iam:` with the
    /// secret if there is one. Fails, sending nothing, on a name or secret
    /// the protocol cannot carry.
    pub fn start(&self, client: &mut Client) -> Result<(), UsageError> {
        match &self.secret {
            None => client.login(&self.name),
            Some(secret) => client.login_with_secret(&self.name, secret),
        }
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl From<&str> for Login {
    fn from(name: &str) -> Login {
        Login::guest(name)
    }
}

impl From<&String> for Login {
    fn from(name: &String) -> Login {
        Login::guest(name.as_str())
    }
}

impl From<String> for Login {
    fn from(name: String) -> Login {
        Login::guest(name)
    }
}

impl From<&Login> for Login {
    fn from(login: &Login) -> Login {
        login.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::ClientConfig;
    use std::time::Instant;

    fn sent(login: &Login) -> Result<Vec<u8>, UsageError> {
        let mut client = Client::new(ClientConfig::plain(), Instant::now()).unwrap();
        client.connected(Instant::now());
        login.start(&mut client)?;
        Ok(client
            .poll_transmit()
            .map(|b| b.to_vec())
            .unwrap_or_default())
    }

    #[test]
    fn a_guest_sends_the_name_and_an_account_its_secret() {
        assert_eq!(sent(&"zhangsan".into()).unwrap(), b"iam:zhangsan\n");
        assert_eq!(
            sent(&Login::with_secret("zhangsan", "pass:word")).unwrap(),
            b"iam:zhangsan:pass:word\n"
        );
    }

    #[test]
    fn a_secret_the_protocol_cannot_carry_sends_nothing() {
        assert!(sent(&Login::with_secret("zhangsan", "")).is_err());
        assert!(sent(&Login::with_secret("zhangsan", "a\nb")).is_err());
        assert!(sent(&Login::guest("no:colons")).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", Login::with_secret("zhangsan", "hunter2"));
        assert!(
            shown.contains("zhangsan") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
