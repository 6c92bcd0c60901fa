//! A cache entry: its expiry time, then the portfolio in Protobuf.

use api::wire::Portfolio;
use prost::Message;

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
        let mut bytes = self.expires_at.to_le_bytes().to_vec();
        self.portfolio
            .encode(&mut bytes)
            .expect("a Vec grows as needed");
        bytes
    }

    /// `None` for bytes that are not an entry (a damaged value).
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let (expiry, body) = bytes.split_first_chunk::<8>()?;
        let portfolio = Portfolio::decode(body).ok()?;
        Some(Entry {
            expires_at: i64::from_le_bytes(*expiry),
            portfolio,
        })
    }
}
