//! Pages of name listings (`tags/list`, `_catalog`): parsed straight into
//! the names, stopping as soon as a listing holds more than it may, so a
//! registry that sends millions of names costs at most the limit in memory.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a page could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// The listing would hold more than `room` more names.
    TooMany,
    /// The page is not a listing.
    Invalid(String),
}

/// Appends the names under `key` (`tags` or `repositories`) of a page to
/// `out`, taking at most `room` of them; more is [`PageError::TooMany`]. A
/// missing or `null` list is an empty page (distribution answers `null` for
/// a repository without tags).
pub fn parse_page(body: &[u8], key: &str, room: usize, out: &mut Vec<String>) -> Result<(), PageError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = Page { key, room, out };
    match page.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(e) if e.to_string().starts_with(TOO_MANY) => Err(PageError::TooMany),
        Err(e) => Err(PageError::Invalid(e.to_string())),
    }
}

const TOO_MANY: &str = "more names than the limit";

struct Page<'a> {
    key: &'a str,
    room: usize,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a \"{}\" list", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Page { key, room, out } = self;
        let mut seen = false;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if k == key && !seen {
                seen = true;
                map.next_value_seed(Names { room, out: &mut *out })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Names<'a> {
    room: usize,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Names<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Names<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of names or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut taken = 0usize;
        while let Some(name) = seq.next_element::<String>()? {
            if name.is_empty() {
                // Some registries list an empty name; it names nothing to sync.
                tracing::debug!("Empty name in a listing skipped");
                continue;
            }
            if taken == self.room {
                return Err(de::Error::custom(TOO_MANY));
            }
            taken += 1;
            self.out.push(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str, room: usize) -> Result<Vec<String>, PageError> {
        let mut out = vec!["before".to_string()];
        parse_page(body.as_bytes(), "tags", room, &mut out).map(|()| out)
    }

    #[test]
    fn pages_give_their_names_up_to_the_room_left() {
        assert_eq!(page(r#"{"name":"a","tags":["v1","v2"]}"#, 5).unwrap(), ["before", "v1", "v2"]);
        assert_eq!(page(r#"{"tags":["v1","v2"],"name":"a","extra":{"x":[1]}}"#, 2).unwrap(), ["before", "v1", "v2"]);
        assert_eq!(page(r#"{"name":"a","tags":null}"#, 5).unwrap(), ["before"]);
        assert_eq!(page(r#"{"name":"a"}"#, 5).unwrap(), ["before"]);
        assert_eq!(page(r#"{"tags":["v1","v2","v3"]}"#, 2), Err(PageError::TooMany));
        assert_eq!(page(r#"{"tags":["v1"]}"#, 0), Err(PageError::TooMany));
    }

    #[test]
    fn what_is_not_a_listing_is_refused() {
        for body in ["<html>", "[]", r#"{"tags":[1]}"#, r#"{"tags":"v1"}"#, r#"{"tags":["v1"]} trailing"#, ""] {
            assert!(matches!(page(body, 5), Err(PageError::Invalid(_))), "{body}");
        }
    }
}
