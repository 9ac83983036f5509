//! DynamoDB's documented capacity rules, applied to the requests and responses the SDK sees.
//! moto answers `ReturnConsumedCapacity` with a constant (1.0 or 0.5 per call, whatever the
//! item size), so the units are computed here instead:
//! - item size: attribute names plus values (strings in UTF-8 bytes, numbers about one byte per
//!   two significant digits plus one, booleans 1 byte, lists and maps 3 bytes plus 1 per element);
//! - a write: 1 unit per started KB of the larger of the item before and after it, twice that
//!   inside TransactWriteItems; every global secondary index the item is or was in costs its own
//!   write (a key change there: a delete and a put);
//! - a read: 1 unit per started 4 KB, half for an eventually consistent one (every GSI read);
//!   a Query sums the sizes of the items it returns before rounding; at least one unit a call.
//!
//! An UpdateItem's result is found by applying its expression to the last copy of the item this
//! layer saw (written or read), so sizes follow the items as the service grows them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;

/// The table's key and its indexes' keys, from the project's own table definition.
pub struct Keys {
    pub hash: &'static str,
    pub range: &'static str,
    /// (hash key, range key, whether the index holds the keys only)
    pub indexes: Vec<(&'static str, &'static str, bool)>,
}

impl Keys {
    pub fn of_main_table() -> Keys {
        let spec = common::adapters::dynamodb::tables::main_table();
        Keys {
            hash: spec.hash_key,
            range: spec.range_key,
            indexes: spec
                .indexes
                .iter()
                .map(|index| {
                    let keys_only = index.projection
                        == common::adapters::dynamodb::tables::IndexProjection::KeysOnly;
                    (index.hash_key, index.range_key, keys_only)
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Units {
    pub write: f64,
    pub read: f64,
}

/// Items as last seen, keyed by (table, hash key, range key).
#[derive(Default)]
pub struct Shadow(HashMap<(String, String, String), Item>);

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() + value_size(x))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits = n
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .trim_matches('0')
        .len()
        .max(1);
    digits.div_ceil(2) + 1
}

pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

fn kb_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Read units for `size` bytes read in one call.
pub fn read_units(size: usize, consistent: bool) -> f64 {
    let units = size.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

fn text_of(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        Some(AttributeValue::N(n)) => n.clone(),
        _ => String::new(),
    }
}

impl Shadow {
    fn id(keys: &Keys, table: &str, item: &Item) -> (String, String, String) {
        (
            table.to_owned(),
            text_of(item, keys.hash),
            text_of(item, keys.range),
        )
    }

    pub fn saw(&mut self, keys: &Keys, table: &str, item: &Item) {
        self.0.insert(Self::id(keys, table, item), item.clone());
    }

    /// The units of one write that leaves the item as `after` (`None`: deleted).
    fn write(
        &mut self,
        keys: &Keys,
        table: &str,
        key: &Item,
        after: Option<Item>,
        transactional: bool,
    ) -> f64 {
        let id = Self::id(keys, table, key);
        let before = self.0.get(&id).cloned();
        let size = |item: &Option<Item>| item.as_ref().map_or(0, item_size);
        let table_units =
            kb_units(size(&before).max(size(&after))) * if transactional { 2.0 } else { 1.0 };
        let mut index_units = 0.0;
        for (hash, range, keys_only) in &keys.indexes {
            let in_index = |item: &Option<Item>| {
                item.as_ref()
                    .filter(|i| i.contains_key(*hash) && i.contains_key(*range))
                    .map(|i| (text_of(i, hash), text_of(i, range)))
            };
            // A keys-only entry is its keys (well under 1 KB), written only when they change.
            let size = |item: &Option<Item>| if *keys_only { 1 } else { size(item) };
            index_units += match (in_index(&before), in_index(&after)) {
                (Some(old), Some(new)) if old == new && *keys_only => 0.0,
                (Some(old), Some(new)) if old == new => kb_units(size(&after)),
                (Some(_), Some(_)) => kb_units(size(&before)) + kb_units(size(&after)),
                (Some(_), None) => kb_units(size(&before)),
                (None, Some(_)) => kb_units(size(&after)),
                (None, None) => 0.0,
            };
        }
        match after {
            Some(item) => self.0.insert(id, item),
            None => self.0.remove(&id),
        };
        table_units + index_units
    }

    pub fn put(&mut self, keys: &Keys, table: &str, item: &Item, transactional: bool) -> f64 {
        self.write(keys, table, item, Some(item.clone()), transactional)
    }

    pub fn delete(&mut self, keys: &Keys, table: &str, key: &Item, transactional: bool) -> f64 {
        self.write(keys, table, key, None, transactional)
    }

    pub fn update(
        &mut self,
        keys: &Keys,
        table: &str,
        update: &Update<'_>,
        transactional: bool,
    ) -> f64 {
        let id = Self::id(keys, table, update.key);
        let mut after = self
            .0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| update.key.clone());
        update.apply(&mut after);
        self.write(keys, table, update.key, Some(after), transactional)
    }
}

/// An UpdateItem's parts, from a plain call or from a transaction.
pub struct Update<'a> {
    pub key: &'a Item,
    pub expression: &'a str,
    pub names: Option<&'a HashMap<String, String>>,
    pub values: Option<&'a HashMap<String, AttributeValue>>,
}

impl Update<'_> {
    fn name(&self, token: &str) -> String {
        self.names
            .and_then(|n| n.get(token))
            .cloned()
            .unwrap_or_else(|| token.to_owned())
    }

    fn value(&self, token: &str) -> Option<AttributeValue> {
        self.values.and_then(|v| v.get(token)).cloned()
    }

    /// Applies `SET a = :v, ...`, `REMOVE a, ...` and `ADD a :n, ...` clauses, the forms the
    /// adapter writes. Anything else (a function, arithmetic) sets the attribute to the
    /// largest value it mentions: an upper bound on the size.
    fn apply(&self, item: &mut Item) {
        let mut clause = "";
        let mut parts: Vec<(&str, String)> = Vec::new();
        let mut current = String::new();
        for word in self.expression.split_whitespace() {
            let upper = word.to_ascii_uppercase();
            if matches!(upper.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
                if !current.trim().is_empty() {
                    parts.push((clause, std::mem::take(&mut current)));
                }
                current.clear();
                clause = match upper.as_str() {
                    "SET" => "SET",
                    "REMOVE" => "REMOVE",
                    "ADD" => "ADD",
                    _ => "DELETE",
                };
                continue;
            }
            current.push(' ');
            current.push_str(word);
        }
        if !current.trim().is_empty() {
            parts.push((clause, current));
        }
        for (clause, body) in parts {
            for action in body.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                match clause {
                    "SET" => {
                        let Some((lhs, rhs)) = action.split_once('=') else {
                            continue;
                        };
                        let rhs = rhs.trim();
                        let value = self.value(rhs).or_else(|| {
                            rhs.split(|c: char| !(c == ':' || c.is_alphanumeric() || c == '_'))
                                .filter_map(|t| self.value(t))
                                .max_by_key(value_size)
                        });
                        if let Some(value) = value {
                            item.insert(self.name(lhs.trim()), value);
                        }
                    }
                    "REMOVE" => {
                        item.remove(&self.name(action));
                    }
                    "ADD" => {
                        let mut words = action.split_whitespace();
                        if let (Some(name), Some(value)) = (words.next(), words.next()) {
                            let name = self.name(name);
                            let add = self.value(value);
                            let sum = match (item.get(&name), add) {
                                (Some(AttributeValue::N(a)), Some(AttributeValue::N(b))) => {
                                    let total = a.parse::<f64>().unwrap_or(0.0)
                                        + b.parse::<f64>().unwrap_or(0.0);
                                    Some(AttributeValue::N(total.to_string()))
                                }
                                (_, add) => add,
                            };
                            if let Some(sum) = sum {
                                item.insert(name, sum);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
