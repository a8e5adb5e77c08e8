//! Passwords: which ones an account may have, hashing them to argon2id PHC
//! strings, and checking a password against one.
//!
//! A password must be something a client can send (`iam:NAME:PASSWORD` is
//! one line of text: no control characters), not empty, and at most
//! [`MAX_PASSWORD_LEN`] bytes. It is hashed with argon2id, version 0x13, a
//! random 16-byte salt and [`HashCost`] (by default the argon2 crate's
//! defaults, which are OWASP's first recommendation: 19 MiB, 2 passes, 1
//! lane), and stored as a PHC string such as
//! `$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`. The cost is in the string,
//! so hashes made with another cost still verify.
//!
//! [`dummy_like`] makes a hash with the same algorithm and cost as a given
//! one, of a random password nobody knows: checking a password for a name
//! that has no account against it costs what checking a real account
//! costs, so the time of an answer does not tell whether a name is
//! registered.

use argon2::password_hash::phc::{PasswordHash, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{
    ARGON2ID_IDENT, Argon2, CustomizedPasswordHasher, Params, PasswordHasher, PasswordVerifier,
};
use chat_proto::Text;

/// The longest password, in bytes. A password is sent in one frame
/// (`iam:NAME:PASSWORD`), whose default limit is 4096 bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a password cannot be an account's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// It is empty.
    #[error("the password is empty")]
    Empty,
    /// It is longer than [`MAX_PASSWORD_LEN`].
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// It holds a control character (a line break, say), which the
    /// protocol cannot carry.
    #[error("the password holds a control character, which a client cannot send")]
    NotText,
}

/// Checks that `password` can be an account's password.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Text::new(password).map_err(|_| PasswordError::NotText)?;
    Ok(())
}

/// How costly a new hash is: argon2id's memory, passes and lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB (at least 8 per lane). Default 19,456 (19 MiB).
    pub memory_kib: u32,
    /// Passes over the memory. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub lanes: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            lanes: Params::DEFAULT_P_COST,
        }
    }
}

/// Hashes `password` with a fresh random salt: an argon2id PHC string.
/// Checks the password first ([`check_password`]).
pub fn hash_password(password: &str, cost: HashCost) -> Result<String, HashError> {
    check_password(password)?;
    let params = Params::new(cost.memory_kib, cost.iterations, cost.lanes, None)
        .map_err(|e| HashError::Cost(e.to_string()))?;
    let hash = Argon2::from(params)
        .hash_password(password.as_bytes())
        .map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The password cannot be an account's password.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The cost is out of argon2's range.
    #[error("bad hash cost: {0}")]
    Cost(String),
    /// Hashing failed (no randomness for the salt, say).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks that `phc` is an argon2id PHC string this server can verify
/// against; the reason if not.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string ({e})"))?;
    if hash.algorithm.as_str() != ARGON2ID_IDENT.as_str() {
        return Err(format!(
            "the hash is {}, not argon2id",
            hash.algorithm.as_str()
        ));
    }
    Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("the PHC string has no salt or no hash".into());
    }
    Ok(())
}

/// Whether `password` is the one `phc` was made from. A PHC string that
/// does not parse matches no password.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password nobody knows, with the algorithm, version,
/// cost, salt length and output length of `phc`: checking a password
/// against it takes as long as checking one against `phc`, and never
/// succeeds. Falls back to the default cost if `phc` does not parse.
pub fn dummy_like(phc: &str) -> Result<String, HashError> {
    let random = || try_generate_salt().map_err(|e| HashError::Hash(e.to_string()));
    let unknown: String = random()?.iter().map(|b| format!("{b:02x}")).collect();
    let Ok(model) = PasswordHash::new(phc) else {
        return hash_password(&unknown, HashCost::default());
    };
    let params = Params::try_from(&model).map_err(|e| HashError::Cost(e.to_string()))?;
    let salt_len = model
        .salt
        .as_ref()
        .map_or(Salt::RECOMMENDED_LENGTH, |s| s.len());
    // Salts are 8 to 64 bytes; two random draws cover up to 32.
    let salt: Vec<u8> = [random()?, random()?].concat();
    let salt = salt.get(..salt_len).unwrap_or(&salt);
    let hash = Argon2::default()
        .hash_password_customized(
            unknown.as_bytes(),
            salt,
            Some(model.algorithm.as_str()),
            model.version,
            params,
        )
        .map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// The cost part of a PHC string (`argon2id$v=19$m=19456,t=2,p=1`), by
/// which hashes of equal cost are grouped; `None` if it does not parse.
pub fn cost_of(phc: &str) -> Option<String> {
    let hash = PasswordHash::new(phc).ok()?;
    let output_len = hash.hash.as_ref().map_or(0, |h| h.len());
    let salt_len = hash.salt.as_ref().map_or(0, |s| s.len());
    Some(format!(
        "{}$v={}${}$salt={salt_len}$out={output_len}",
        hash.algorithm.as_str(),
        hash.version.unwrap_or_default(),
        hash.params
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest cost argon2 takes: for tests, where hashing is not the
    /// point.
    pub(crate) const CHEAP: HashCost = HashCost {
        memory_kib: 8,
        iterations: 1,
        lanes: 1,
    };

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("correct horse", CHEAP).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        check_phc(&phc).unwrap();
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horse "));
        assert!(!verify_password(&phc, ""));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn the_default_cost_is_argon2s_default() {
        let phc = hash_password("pw", HashCost::default()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_their_salt() {
        let a = hash_password("pw", CHEAP).unwrap();
        let b = hash_password("pw", CHEAP).unwrap();
        assert_ne!(a, b);
        assert!(verify_password(&a, "pw") && verify_password(&b, "pw"));
    }

    #[test]
    fn passwords_a_client_cannot_send_are_refused() {
        assert_eq!(check_password(""), Err(PasswordError::Empty));
        assert_eq!(check_password("a\nb"), Err(PasswordError::NotText));
        assert_eq!(check_password("a\u{1b}[2J"), Err(PasswordError::NotText));
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(check_password(&long), Err(PasswordError::TooLong));
        assert_eq!(check_password(&long[1..]), Ok(()));
        assert_eq!(check_password("pass:word with spaces 密码"), Ok(()));
        assert!(matches!(
            hash_password("", CHEAP),
            Err(HashError::Password(PasswordError::Empty))
        ));
    }

    #[test]
    fn only_argon2id_phc_strings_are_taken() {
        check_phc(&hash_password("pw", CHEAP).unwrap()).unwrap();
        assert!(check_phc("").is_err());
        assert!(check_phc("plaintext").is_err());
        let argon2i = "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$ZXhhbXBsZWhhc2g";
        assert!(check_phc(argon2i).unwrap_err().contains("not argon2id"));
        let no_hash = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ";
        assert!(check_phc(no_hash).is_err());
        let bad_cost = "$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHQ$ZXhhbXBsZWhhc2g";
        assert!(check_phc(bad_cost).unwrap_err().contains("parameters"));
    }

    #[test]
    fn a_dummy_has_the_cost_of_its_model_and_matches_nothing_guessable() {
        let model = hash_password("pw", CHEAP).unwrap();
        let dummy = dummy_like(&model).unwrap();
        assert_eq!(cost_of(&dummy), cost_of(&model));
        assert_ne!(dummy, model);
        for guess in ["pw", "", "password", "123456"] {
            assert!(!verify_password(&dummy, guess));
        }
        // Without a model: the default cost.
        let fallback = dummy_like("garbage").unwrap();
        assert_eq!(
            cost_of(&fallback),
            cost_of(&hash_password("x", HashCost::default()).unwrap())
        );
    }
}
