//! Where things live in the LevelDB directory, and the tidying done at open.
//!
//! `v2/feed` holds the node's place in the data service's change feed. Each
//! portfolio lives under its epoch: `v2/e{epoch}/portfolio/{customer}`.
//! Computed results live under their content digest, `v2/result/{hex}`, in
//! every epoch: the digest names the inputs, so a result is never outdated.
//! Dropping the whole cache (the node fell behind the retained change log) is
//! a new epoch, one write; the old epoch's entries are unreachable at once
//! and deleted at the next open, along with entries of earlier layouts.

use std::path::{Path, PathBuf};

use rusty_leveldb::{DB, LdbIterator, Options, Status, WriteBatch};

const FEED_KEY: &[u8] = b"v2/feed";
const RESULT_PREFIX: &str = "v2/result/";

/// The node's place in the change feed, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMark {
    /// Names the change log followed; empty before the node first reached it.
    pub feed_id: String,
    /// Every change up to this position has been applied.
    pub cursor: i64,
    /// Portfolios read before this position are not stored: changes before it
    /// were skipped when the epoch began.
    pub floor: i64,
    pub epoch: u64,
}

impl FeedMark {
    pub fn key() -> Vec<u8> {
        FEED_KEY.to_vec()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(24 + self.feed_id.len());
        bytes.extend_from_slice(&self.epoch.to_le_bytes());
        bytes.extend_from_slice(&self.cursor.to_le_bytes());
        bytes.extend_from_slice(&self.floor.to_le_bytes());
        bytes.extend_from_slice(self.feed_id.as_bytes());
        bytes
    }

    /// `None` for bytes that are not a mark (a damaged value).
    pub fn decode(bytes: &[u8]) -> Option<FeedMark> {
        let (epoch, rest) = bytes.split_first_chunk::<8>()?;
        let (cursor, rest) = rest.split_first_chunk::<8>()?;
        let (floor, feed_id) = rest.split_first_chunk::<8>()?;
        Some(FeedMark {
            feed_id: String::from_utf8(feed_id.to_vec()).ok()?,
            cursor: i64::from_le_bytes(*cursor),
            floor: i64::from_le_bytes(*floor),
            epoch: u64::from_le_bytes(*epoch),
        })
    }
}

pub fn portfolio_key(epoch: u64, customer_id: &str) -> Vec<u8> {
    format!("v2/e{epoch}/portfolio/{customer_id}").into_bytes()
}

pub fn result_key(digest: &[u8; 32]) -> Vec<u8> {
    let mut key = RESULT_PREFIX.as_bytes().to_vec();
    for byte in digest {
        key.extend_from_slice(format!("{byte:02x}").as_bytes());
    }
    key
}

/// A stored value behind its expiry: milliseconds since the Unix epoch, then
/// the value's own bytes.
pub fn expiring(expires_at: i64, value: &[u8]) -> Vec<u8> {
    let mut bytes = expires_at.to_le_bytes().to_vec();
    bytes.extend_from_slice(value);
    bytes
}

/// The expiry and the value of [`expiring`] bytes; `None` for damaged bytes.
pub fn split_expiring(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (expiry, value) = bytes.split_first_chunk::<8>()?;
    Some((i64::from_le_bytes(*expiry), value))
}

pub fn options() -> Options {
    Options {
        create_if_missing: true,
        ..Options::default()
    }
}

/// Opens the directory on this thread, reads the feed mark, and deletes what
/// no longer can be read: entries of other epochs and of earlier layouts, and
/// results past their expiry. Returns the mark and how many entries went.
pub fn tidy(directory: &Path, now_millis: i64) -> Result<(FeedMark, u32), Status> {
    let mut db = DB::open(directory, options())?;
    let mark = db
        .get(FEED_KEY)
        .and_then(|bytes| FeedMark::decode(&bytes))
        .unwrap_or_default();
    let current = format!("v2/e{}/", mark.epoch);
    let mut stale = WriteBatch::default();
    let mut entries = db.new_iter()?;
    while let Some((key, value)) = entries.next() {
        let live_result = key.starts_with(RESULT_PREFIX.as_bytes())
            && split_expiring(&value).is_some_and(|(expires_at, _)| expires_at > now_millis);
        let readable = key == FEED_KEY || key.starts_with(current.as_bytes()) || live_result;
        if !readable {
            stale.delete(&key);
        }
    }
    drop(entries);
    let deleted = stale.count();
    if deleted > 0 {
        db.write(stale, false)?;
    }
    db.close()?;
    Ok((mark, deleted))
}

/// Refuses a directory this process cannot write (a read-only mount, say)
/// for what it is, before a failed open would take it for a damaged cache.
pub(crate) fn check_writable(directory: &Path) -> Result<(), crate::Error> {
    let refused = |error: std::io::Error| crate::Error::Open {
        path: directory.to_path_buf(),
        detail: format!(
            "it cannot be written ({error}); make it writable, or give this node another with --cache-dir"
        ),
    };
    std::fs::create_dir_all(directory).map_err(refused)?;
    let probe = directory.join(".write-probe");
    std::fs::write(&probe, b"").map_err(refused)?;
    std::fs::remove_file(&probe).map_err(refused)
}

/// Moves a damaged cache directory aside, named by when, so that an empty one
/// can start in its place.
pub(crate) fn set_aside(directory: &Path, now_millis: i64) -> Result<PathBuf, crate::Error> {
    let mut aside = directory.as_os_str().to_owned();
    aside.push(format!(".damaged-{}", now_millis));
    let aside = PathBuf::from(aside);
    std::fs::rename(directory, &aside).map_err(|error| crate::Error::Open {
        path: directory.to_path_buf(),
        detail: format!(
            "it could not be opened, and moving it aside to {} failed: {error}",
            aside.display()
        ),
    })?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_mark_reads_back_as_written(epoch in any::<u64>(), cursor in any::<i64>(), floor in any::<i64>(), feed_id in "[0-9a-f-]{0,36}") {
            let mark = FeedMark { feed_id, cursor, floor, epoch };
            prop_assert_eq!(FeedMark::decode(&mark.encode()), Some(mark));
        }

        #[test]
        fn damaged_marks_are_refused_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = FeedMark::decode(&bytes);
        }
    }
}
