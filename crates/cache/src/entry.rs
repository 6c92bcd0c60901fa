//! A cache entry: its expiry time, then the portfolio in Protobuf.

use api::wire::Portfolio;
use prost::Message;

use crate::layout::{expiring, split_expiring};

pub struct Entry {
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub portfolio: Portfolio,
}

impl Entry {
    pub fn new(expires_at: i64, portfolio: &Portfolio) -> Self {
        Entry {
            expires_at,
            portfolio: portfolio.clone(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        expiring(self.expires_at, &self.portfolio.encode_to_vec())
    }

    /// `None` for bytes that are not an entry (a damaged value).
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let (expires_at, body) = split_expiring(bytes)?;
        let portfolio = Portfolio::decode(body).ok()?;
        Some(Entry {
            expires_at,
            portfolio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// A damaged cache file hands back any bytes: read or refused, never a panic.
        #[test]
        fn damaged_entries_are_refused_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Entry::decode(&bytes);
        }

        #[test]
        fn an_entry_reads_back_as_written(expires_at in any::<i64>(), customer_id in "[A-Z0-9-]{0,12}") {
            let portfolio = Portfolio { customer_id, ..Default::default() };
            let decoded = Entry::decode(&Entry::new(expires_at, &portfolio).encode()).unwrap();
            prop_assert_eq!(decoded.expires_at, expires_at);
            prop_assert_eq!(decoded.portfolio, portfolio);
        }
    }
}
