//! The key by which names are compared, so that look-alike names are the same
//! name, and the test for names that mix scripts.
//!
//! Two names are the same user (or room) iff their [`NameKey`]s are equal.
//! The key of a name is computed in this order:
//!
//! 1. Compatibility caseless folding, as the Unicode Standard defines it for
//!    compatibility caseless matching (§3.13, D146):
//!    `NFKD(toCasefold(NFKD(toCasefold(NFD(name)))))`. This makes one of
//!    every compatibility variant (`ﬁ` U+FB01 and `fi`, fullwidth `ａ` and
//!    `a`, the Kelvin sign U+212A and `K`, the Angstrom sign U+212B and `Å`),
//!    of every canonically equivalent spelling (NFC and NFD, `가` U+AC00 and
//!    U+1100 U+1161) and of every case (`ZOË` and `zoë`). Case folding is the
//!    full one (`toCasefold`, mappings C and F of CaseFolding.txt, not the
//!    Turkic T), so `STRASSE`, `straße` and `straẞe` agree and so do the two
//!    Greek sigmas `σ` and `ς`, which `str::to_lowercase` keeps apart.
//! 2. The confusable skeleton of Unicode TR39 §4: NFD, default-ignorable code
//!    points (soft hyphen, zero-width space, ...) removed, each character
//!    replaced by its prototype from confusables.txt, NFD again. This makes
//!    one of look-alikes across scripts: `admin` with a Cyrillic `а` U+0430
//!    has the key of the Latin `admin`.
//! 3. Step 1 again, then steps 2 and 1 again until the string no longer
//!    changes (at most [`MAX_ROUNDS`] rounds). The prototypes of
//!    confusables.txt are not case-folded (the prototype of the digit `0` is
//!    the capital `O`) and a folded prototype can have a prototype of its own
//!    (Cherokee `Ꮇ` has prototype `M`, which folds to `m`, whose prototype
//!    is `rn`). One pass would leave `g00gle` apart from `google` and `Ꮇ`
//!    apart from `m`. A check of every code point (the ignored test
//!    `every_code_point_converges`) finds that no single character needs more
//!    than three rounds and that every key is its own key.
//!
//! Folding comes before the skeleton because the skeleton is case-sensitive
//! and expects normalized input: the skeleton of `K` is not that of `k`.
//!
//! # Look-alikes that collide, and some that do not
//!
//! The skeleton is meant to join what looks alike, and it does so within ASCII
//! too: `l` and `1` (and `|`) have the same key, so `paypal` and `paypa1`,
//! `user1` and `userl` are the same name; `0`, `O` and `o` have the same key
//! (`g00gle` is `google`); `rn` and `m` have the same key (`rnary` is `mary`).
//! This is intended: these pairs are impersonation in any sans-serif font.
//!
//! Because folding comes first, the capital `I` is `i` (not `l`), so `Ian`
//! and `lan` stay different names although they look alike in some fonts;
//! joining them would join `i` and `l` as well. `vv` and `w`, `cl` and `d`
//! stay apart (confusables.txt does not list them). Simplified and
//! traditional Han (`张三`, `張三`) stay apart.
//!
//! # Mixed scripts
//!
//! [`is_mixed_script`] refuses what the key cannot catch, a name whose
//! letters come from scripts that TR39 says should not mix: it is true when
//! the restriction level (TR39 §5.2) of the NFKC form of the name is above
//! Moderately Restrictive. Latin may be mixed with Han and Kana, with Han
//! and Hangul, with Han and Bopomofo, or with one other Recommended script
//! other than Cyrillic and Greek; Latin with Cyrillic or Greek, Cyrillic with
//! Greek, and names holding a character TR39 does not allow in identifiers
//! (Unrestricted) are flagged.
//!
//! The data are those of the crates `caseless` (case folding, Unicode 16),
//! `unicode-normalization` and `unicode-security` (Unicode 18 per their
//! tables): no table lives here.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection, skeleton};

/// The most rounds of skeleton-then-fold [`NameKey::of`] runs (step 3 of the
/// module documentation). No single character needs more than three; a
/// string that has not settled by then keeps its last value, so the key is
/// deterministic either way.
const MAX_ROUNDS: usize = 8;

/// The key by which names are compared: two names are the same user (or
/// room) iff their keys are equal.
///
/// The key folds case, compatibility variants and canonically equivalent
/// spellings, then look-alike characters by the confusable skeleton of
/// Unicode TR39; the module documentation gives the exact rule. It is an
/// opaque string for comparing and hashing, not for display. `Debug` shows
/// it.
///
/// ```
/// use chat_proto::NameKey;
///
/// // Case, fullwidth forms and a Cyrillic `а` do not make a new name.
/// assert_eq!(NameKey::of("Admin"), NameKey::of("admin"));
/// assert_eq!(NameKey::of("ａｄｍｉｎ"), NameKey::of("admin"));
/// assert_eq!(NameKey::of("\u{430}dmin"), NameKey::of("admin"));
/// // Different names stay different.
/// assert_ne!(NameKey::of("zhangsan"), NameKey::of("lisi"));
/// assert_ne!(NameKey::of("张三"), NameKey::of("李四"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NameKey(Box<str>);

impl NameKey {
    /// The key of `name`. Any string has a key, valid name or not.
    pub fn of(name: &str) -> NameKey {
        let mut key = compat_fold(name.chars());
        for _ in 0..MAX_ROUNDS {
            let next = compat_fold(skeleton(&key));
            if next == key {
                break;
            }
            key = next;
        }
        NameKey(key.into_boxed_str())
    }

    /// The key as a string (fully decomposed, NFKD).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` mixes scripts in a way TR39 flags: true when the
/// restriction level of its NFKC form is above
/// [Moderately Restrictive](https://www.unicode.org/reports/tr39/#moderately_restrictive),
/// that is Minimally Restrictive or Unrestricted.
///
/// So `аdmin` with a Cyrillic `а` (Latin and Cyrillic) and `abcαβγ` (Latin
/// and Greek) are mixed, and so is any name with a character that TR39 does
/// not allow in identifiers (such as `☃`). `zhangsan`, `张三`, `Ольга`,
/// `user-1.b`, `٣٤`, `abcかな漢字` (Latin, Hiragana and Han) and `abcअजय`
/// (Latin and Devanagari) are not. NFKC comes first so that compatibility
/// forms the key already folds (`ａｄｍｉｎ`, the Kelvin sign) are judged by
/// the letters they stand for.
///
/// ```
/// use chat_proto::is_mixed_script;
/// assert!(!is_mixed_script("Ольга"));
/// assert!(is_mixed_script("\u{430}dmin"));
/// ```
pub fn is_mixed_script(name: &str) -> bool {
    let nfkc: String = name.nfkc().collect();
    nfkc.as_str().detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive
}

/// `NFKD(toCasefold(NFKD(toCasefold(NFD(s)))))`: the folding of the Unicode
/// Standard's compatibility caseless match (§3.13, D146).
fn compat_fold(s: impl Iterator<Item = char>) -> String {
    s.nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkd()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) {
        assert_eq!(NameKey::of(a), NameKey::of(b), "{a:?} and {b:?}");
    }

    fn different(a: &str, b: &str) {
        assert_ne!(NameKey::of(a), NameKey::of(b), "{a:?} and {b:?}");
    }

    #[test]
    fn look_alikes_share_a_key() {
        same("\u{C5}", "\u{212B}"); // Å, Angstrom sign
        same("K", "\u{212A}"); // Kelvin sign
        same("\u{AC00}", "\u{1100}\u{1161}"); // 가, conjoining jamo
        same("admin", "\u{430}dmin"); // Cyrillic а
        same("admin", "\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}"); // fullwidth
        same("\u{FB01}", "fi"); // ligature
        same("admin", "a\u{200B}dmin"); // zero-width space is ignored
        same("admin", "ad\u{AD}min"); // soft hyphen is ignored
    }

    #[test]
    fn case_is_folded() {
        same("ZhangSan", "zhangsan");
        same("Ольга", "ольга");
        same("ZOË", "zoë");
        same("ADMIN", "admin");
        // Full case folding, not lowercasing.
        same("STRASSE", "straße");
        same("straẞe", "straße");
        same("ΟΔΟΣ", "οδος");
        same("ΟΔΟΣ", "οδοσ");
    }

    #[test]
    fn canonical_equivalents_share_a_key() {
        same("Zo\u{EB}", "Zoe\u{308}");
        same(
            "\u{DC}n\u{EF}c\u{F6}d\u{E9}",
            "U\u{308}ni\u{308}co\u{308}de\u{301}",
        );
    }

    #[test]
    fn ordinary_names_stay_apart() {
        different("zhangsan", "lisi");
        different("a", "b");
        different("user1", "user2");
        different("张三", "李四");
        different("Zoë", "Zoe");
        different("Ольга", "Olga");
        different("", "a");
    }

    #[test]
    fn ascii_look_alikes_collide_by_decision() {
        // The skeleton joins ASCII characters that look alike: intended.
        same("paypal", "paypa1");
        same("user1", "userl");
        same("g00gle", "google");
        same("g00gle", "GOOGLE");
        same("rnary", "mary");
        // Folding comes first: the capital I is i, not l.
        different("Ian", "lan");
        // Not in confusables.txt.
        different("vv", "w");
    }

    #[test]
    fn folded_prototypes_are_folded_again() {
        // Cherokee Ꮇ has prototype M, which folds to m, whose prototype is rn.
        same("\u{13B7}", "m");
        // Greek β has prototype ß, which folds to ss.
        same("β", "ss");
    }

    #[test]
    fn key_is_its_own_key() {
        for name in [
            "ZhangSan",
            "张三",
            "g00gle",
            "\u{13B7}",
            "STRASSE",
            "Ünïcödé",
            "٣٤",
        ] {
            let key = NameKey::of(name);
            assert_eq!(NameKey::of(key.as_str()), key, "{name:?}");
        }
    }

    #[test]
    fn debug_shows_the_key() {
        assert_eq!(
            format!("{:?}", NameKey::of("ZhangSan")),
            "NameKey(\"zhangsan\")"
        );
        assert_eq!(NameKey::of("Admin").as_str(), "adrnin");
    }

    #[test]
    fn single_script_names_are_not_mixed() {
        for name in [
            "zhangsan",
            "张三",
            "Zoë",
            "Zoe\u{308}",
            "Ольга",
            "Ολγα",
            "user-1.b",
            "user_1",
            "lisi",
            "Ünïcödé",
            "٣٤",
            "ひらがなカタカナ漢字",
            "한글漢字",
            "",
        ] {
            assert!(!is_mixed_script(name), "{name:?}");
        }
    }

    #[test]
    fn allowed_mixes_are_not_mixed() {
        assert!(!is_mixed_script("abcかな漢字")); // Latin, Hiragana, Han
        assert!(!is_mixed_script("abc한글")); // Latin, Hangul
        assert!(!is_mixed_script("abcअजय")); // Latin, Devanagari
        // Compatibility forms are judged by what they stand for.
        assert!(!is_mixed_script("\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}"));
        assert!(!is_mixed_script("\u{212A}elvin"));
    }

    #[test]
    fn flagged_mixes_are_mixed() {
        assert!(is_mixed_script("\u{430}dmin")); // Latin, Cyrillic
        assert!(is_mixed_script("abcαβγ")); // Latin, Greek
        assert!(is_mixed_script("Ольгаα")); // Cyrillic, Greek
        assert!(is_mixed_script("张三ольга")); // Han, Cyrillic
        assert!(is_mixed_script("user٣")); // Latin, Arabic-Indic digit
        assert!(is_mixed_script("a☃")); // not allowed in identifiers
    }

    /// Every code point's key settles within three rounds and is its own
    /// key. Slow in a debug build: run with
    /// `cargo test -p chat-proto --release -- --ignored every_code_point`.
    #[test]
    #[ignore]
    fn every_code_point_converges() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let mut key = compat_fold(std::iter::once(c));
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds <= 3, "{c:?} needs more than three rounds");
                let next = compat_fold(skeleton(&key));
                if next == key {
                    break;
                }
                key = next;
            }
            assert_eq!(NameKey::of(&key).as_str(), key, "{c:?}");
        }
    }
}
