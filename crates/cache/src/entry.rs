//! A cache entry: its expiry time, then what the data service answered: a
//! portfolio in Protobuf, or that the customer is unknown.

use prost::Message;
use wire::Portfolio;

use crate::layout::{expiring, split_expiring};

const PORTFOLIO: u8 = 0;
const UNKNOWN: u8 = 1;

pub struct Entry {
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    /// `None`: the data service does not know the customer.
    pub portfolio: Option<Portfolio>,
}

impl Entry {
    pub fn new(expires_at: i64, portfolio: Option<&Portfolio>) -> Self {
        Entry {
            expires_at,
            portfolio: portfolio.cloned(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let body = match &self.portfolio {
            Some(portfolio) => {
                let mut body = vec![PORTFOLIO];
                body.extend_from_slice(&portfolio.encode_to_vec());
                body
            }
            None => vec![UNKNOWN],
        };
        expiring(self.expires_at, &body)
    }

    /// `None` for bytes that are not an entry (a damaged value).
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let (expires_at, body) = split_expiring(bytes)?;
        let portfolio = match body.split_first()? {
            (&PORTFOLIO, portfolio) => Some(Portfolio::decode(portfolio).ok()?),
            (&UNKNOWN, []) => None,
            _ => return None,
        };
        Some(Entry {
            expires_at,
            portfolio,
        })
    }

    /// Whether a change at `position` makes this entry outdated: an answer
    /// read before it, or any "unknown customer" (it has no position).
    pub fn outdated_by(&self, position: i64) -> bool {
        self.portfolio
            .as_ref()
            .is_none_or(|portfolio| portfolio.change_position < position)
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
        fn an_entry_reads_back_as_written(expires_at in any::<i64>(), customer_id in "[A-Z0-9-]{0,12}", known in any::<bool>()) {
            let portfolio = known.then(|| Portfolio { customer_id, ..Default::default() });
            let decoded = Entry::decode(&Entry::new(expires_at, portfolio.as_ref()).encode()).unwrap();
            prop_assert_eq!(decoded.expires_at, expires_at);
            prop_assert_eq!(decoded.portfolio, portfolio);
        }
    }
}
