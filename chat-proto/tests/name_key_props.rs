//! Property tests of `NameKey`: it is deterministic, blind to ASCII case and
//! to the normalization form a name is spelt in, its own key, and total (any
//! string has one, without panicking).

use chat_proto::NameKey;
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Strings of name characters: letters and digits of several scripts
/// (Latin with its accents, Greek, Cyrillic, Han, Hangul, Kana, Arabic
/// digits, fullwidth and compatibility forms, combining marks), `_`, `-`,
/// `.`.
fn name_chars() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.\\-À-ɏͰ-ϿЀ-ӿ\u{0300}-\u{036F}一-龥가-힣ぁ-ヿ٠-٩ａ-ｚＡ-Ｚ０-９ﬀ-ﬆ\u{212A}\u{212B}ß]{0,32}"
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn deterministic(s in name_chars()) {
        prop_assert_eq!(NameKey::of(&s), NameKey::of(&s));
    }

    #[test]
    fn ascii_case_does_not_matter(s in name_chars()) {
        let key = NameKey::of(&s);
        prop_assert_eq!(&NameKey::of(&s.to_ascii_uppercase()), &key);
        prop_assert_eq!(&NameKey::of(&s.to_ascii_lowercase()), &key);
    }

    #[test]
    fn normalization_form_does_not_matter(s in name_chars()) {
        let key = NameKey::of(&s);
        for form in [
            s.nfc().collect::<String>(),
            s.nfd().collect(),
            s.nfkc().collect(),
            s.nfkd().collect(),
        ] {
            prop_assert_eq!(&NameKey::of(&form), &key, "{:?}", form);
        }
    }

    #[test]
    fn key_is_its_own_key(s in name_chars()) {
        let key = NameKey::of(&s);
        prop_assert_eq!(&NameKey::of(key.as_str()), &key);
    }

    #[test]
    fn any_string_has_a_key(s in any::<String>()) {
        NameKey::of(&s);
    }
}
