//! Values by template number, in a dense table. Template numbers are small and dense (the
//! engine gives them in order, up to its `max_templates`), and a closing session reads and
//! writes a few of these per template it had: a hash lookup each was most of what learning a
//! session cost. Written as a map in ascending order (the bytes a sorted map gives), read from
//! any map.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Template numbers a profile may hold; a saved one above it is refused as corrupt (a dense table
/// that large is not one the engine could have made).
pub const MAX_TEMPLATE: u32 = 1 << 24;

#[derive(Clone, Debug)]
pub struct TemplateMap<V> {
    values: Vec<Option<V>>,
    len: usize,
}

impl<V> Default for TemplateMap<V> {
    fn default() -> Self {
        TemplateMap { values: Vec::new(), len: 0 }
    }
}

impl<V> TemplateMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, t: u32) -> Option<&V> {
        self.values.get(t as usize)?.as_ref()
    }

    /// The value of `t`, inserted as `V::default()` when absent. A number past [`MAX_TEMPLATE`]
    /// is not one the engine gives: it panics (a bug, not an input).
    pub fn get_or_default(&mut self, t: u32) -> &mut V
    where
        V: Default,
    {
        assert!(t < MAX_TEMPLATE, "template number {t} past the engine's range");
        let i = t as usize;
        if i >= self.values.len() {
            self.values.resize_with(i + 1, || None);
        }
        let slot = &mut self.values[i];
        if slot.is_none() {
            self.len += 1;
        }
        slot.get_or_insert_with(V::default)
    }

    /// (template, value), ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &V)> + '_ {
        self.values.iter().enumerate().filter_map(|(t, v)| v.as_ref().map(|v| (t as u32, v)))
    }
}

impl<V: PartialEq> PartialEq for TemplateMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Serialize> Serialize for TemplateMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de> + Default> Deserialize<'de> for TemplateMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = HashMap::<u32, V>::deserialize(d)?;
        let mut out = TemplateMap::default();
        for (t, v) in map {
            if t >= MAX_TEMPLATE {
                return Err(serde::de::Error::custom(format!("template number {t} is past {MAX_TEMPLATE}: not one turbolog writes")));
            }
            *out.get_or_default(t) = v;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_sorted_map_and_reads_it_back() {
        let mut m: TemplateMap<u64> = TemplateMap::default();
        for t in [40u32, 3, 17, 3, 0] {
            *m.get_or_default(t) += 1;
        }
        assert_eq!((m.len(), m.get(3), m.get(4), m.get(99)), (4, Some(&2), None, None));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"0":1,"3":2,"17":1,"40":1}"#);
        let sorted: std::collections::BTreeMap<u32, u64> = m.iter().map(|(t, &v)| (t, v)).collect();
        assert_eq!(json, serde_json::to_string(&sorted).unwrap(), "the bytes of a sorted map");
        let back: TemplateMap<u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        // a value of 0 is present, not absent
        let zero: TemplateMap<f64> = serde_json::from_str(r#"{"5":0.0}"#).unwrap();
        assert_eq!((zero.len(), zero.get(5)), (1, Some(&0.0)));
        let err = serde_json::from_str::<TemplateMap<u64>>(r#"{"4294967295":1}"#).unwrap_err().to_string();
        assert!(err.contains("not one turbolog writes"), "{err}");
    }
}
