//! A small map of strings in two allocations, for the maps every cached resource carries
//! (`spec.tags`, `status.endpoints`). A `BTreeMap<String, String>` of four entries takes a
//! 544-byte node plus a chunk per key and per value; this keeps the same sorted entries as one
//! text and one table of offsets (docs/performance.md, cache memory). It reads, writes, compares
//! and describes itself in the CRD exactly like the `BTreeMap` it replaces.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sorted by key, each key once, like a `BTreeMap<String, String>`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap {
    /// Every key and value, one after another.
    text: Box<str>,
    /// Where each key and each value ends in `text`: key 0, value 0, key 1, ...
    ends: Box<[u32]>,
}

impl StringMap {
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| (self.part(2 * i), self.part(2 * i + 1)))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            match self.part(2 * middle).cmp(key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(self.part(2 * middle + 1)),
            }
        }
        None
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (rebuilds the map: for the rare edit, not for building one entry by entry).
    pub fn insert(&mut self, key: String, value: String) {
        let mut map = self.to_btree();
        map.insert(key, value);
        *self = StringMap::from(map);
    }

    pub fn to_btree(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn part(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .map_or(0, |before| self.ends[before] as usize);
        &self.text[start..self.ends[index] as usize]
    }
}

impl From<BTreeMap<String, String>> for StringMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(map.iter().map(|(k, v)| k.len() + v.len()).sum());
        let mut ends = Vec::with_capacity(map.len() * 2);
        for (key, value) in &map {
            for part in [key, value] {
                text.push_str(part);
                ends.push(u32::try_from(text.len()).expect("a map under 4 GiB"));
            }
        }
        StringMap {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        StringMap::from(entries.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl<const N: usize> From<[(String, String); N]> for StringMap {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl std::ops::Index<&str> for StringMap {
    type Output = str;

    fn index(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("no entry {key:?} in the map"))
    }
}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(StringMap::from)
    }
}

impl JsonSchema for StringMap {
    fn inline_schema() -> bool {
        <BTreeMap<String, String>>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_writes_and_compares_like_the_btreemap_it_replaces() {
        let json = r#"{"team":"a","env":"prod","":"empty key","cost-centre":""}"#;
        let map: StringMap = serde_json::from_str(json).unwrap();
        let btree: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
        assert_eq!(map.to_btree(), btree);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&btree).unwrap()
        );
        assert_eq!(map.get("env"), Some("prod"));
        assert_eq!(map.get(""), Some("empty key"));
        assert_eq!(map.get("cost-centre"), Some(""));
        assert_eq!(map.get("missing"), None);
        assert_eq!(map, StringMap::from(btree));
        let mut edited = map.clone();
        edited.insert("env".into(), "dev".into());
        assert_ne!(edited, map);
        assert_eq!(&edited["env"], "dev");
        assert_eq!(edited.len(), 4);
        assert_eq!(format!("{:?}", StringMap::default()), "{}");
    }
}
