//! An S3 backend that keeps every version of every object, in memory, as a
//! bucket with versioning enabled does: each PUT adds a version with its own
//! `versionId`, and GET and HEAD read the latest or the one asked for.
//!
//! Small on purpose: the operations object_store's `get_opts`, `head`,
//! `put` and `delete` make (ranged GETs, `If-Match`, `versionId`,
//! DeleteObjects), and `create_bucket`; every other operation is s3s's "not implemented".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::{
    CreateBucketInput, CreateBucketOutput, DeleteObjectInput, DeleteObjectOutput,
    DeleteObjectsInput, DeleteObjectsOutput, DeletedObject, ETag, ETagCondition, GetObjectInput,
    GetObjectOutput, HeadObjectInput, HeadObjectOutput, PutObjectInput, PutObjectOutput, Range,
    StreamingBlob, Timestamp,
};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// Buckets of versioned objects. Clones share them: every run of one
/// server serves the same data (it outlives a stop and resume).
#[derive(Clone, Debug, Default)]
pub(super) struct Versioned {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Bucket name -> key -> versions, oldest first.
    buckets: BTreeMap<String, BTreeMap<String, Vec<Version>>>,
    /// Versions made so far, the seed of the next version id.
    made: u64,
}

#[derive(Clone, Debug)]
struct Version {
    id: String,
    /// `None` for a delete marker (a DELETE without a version id).
    body: Option<Bytes>,
    /// The MD5 of the body in hex, as S3 gives for a single-part upload.
    e_tag: String,
    modified: SystemTime,
}

/// The version a GET or HEAD reads, with what its response describes.
struct Found {
    version: Version,
    body: Bytes,
}

impl Versioned {
    /// A backend with `bucket` already made.
    pub(super) fn with_bucket(bucket: &str) -> Self {
        let versioned = Versioned::default();
        versioned
            .lock()
            .buckets
            .insert(bucket.to_owned(), BTreeMap::new());
        versioned
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while the lock is held leaves whole versions only (each
        // change is one push or one remove), so the data is still sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The version `version_id` of `key` (the latest when `None`), checked
    /// against `If-Match`.
    fn find(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        if_match: Option<&ETagCondition>,
    ) -> S3Result<Found> {
        let state = self.lock();
        let versions = state
            .buckets
            .get(bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?
            .get(key);
        let version = match version_id {
            None => versions
                .and_then(|v| v.last())
                .ok_or_else(|| s3_error!(NoSuchKey))?,
            Some(id) => versions
                .and_then(|v| v.iter().find(|version| version.id == id))
                .ok_or_else(|| s3_error!(NoSuchVersion, "no version {id:?} of {key:?}"))?,
        };
        // A delete marker is what S3 answers 404 (latest) or 405 (by id)
        // for; 404 for both is all a reader needs.
        let body = version.body.clone().ok_or_else(|| s3_error!(NoSuchKey))?;
        if let Some(ETagCondition::ETag(expected)) = if_match
            && !ETag::Strong(version.e_tag.clone()).strong_cmp(expected)
        {
            return Err(s3_error!(PreconditionFailed, "ETag does not match"));
        }
        Ok(Found {
            version: version.clone(),
            body,
        })
    }

    /// Adds a version of `key` (`body` `None`: a delete marker); returns it.
    fn push(&self, bucket: &str, key: &str, body: Option<Bytes>) -> S3Result<Version> {
        let mut state = self.lock();
        state.made += 1;
        let id = version_id(state.made);
        let versions = state
            .buckets
            .get_mut(bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?
            .entry(key.to_owned())
            .or_default();
        let e_tag = hex(&Md5::checksum(body.as_deref().unwrap_or_default()));
        let version = Version {
            id,
            body,
            e_tag,
            modified: SystemTime::now(),
        };
        versions.push(version.clone());
        Ok(version)
    }
}

/// A version id as opaque as S3's (32 characters of letters, digits, `.`
/// and `+`), unique within the server. Each holds a `+`, as S3's may, so
/// a URL that does not percent-encode it fails in the tests as with S3.
fn version_id(seed: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+";
    // The seed's own bits first (unique), then mixed ones (opaque).
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut id: String = (0..11)
        .map(|i| ALPHABET[((seed >> (6 * i)) & 63) as usize] as char)
        .collect();
    id.push('+');
    id.extend((0..20).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ALPHABET[(state >> 58) as usize] as char
    }));
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp::from(time)
}

#[async_trait::async_trait]
impl S3 for Versioned {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let mut state = self.lock();
        if state.buckets.contains_key(&req.input.bucket) {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        state.buckets.insert(req.input.bucket, BTreeMap::new());
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let PutObjectInput {
            bucket, key, body, ..
        } = req.input;
        let mut body = body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
            bytes.extend_from_slice(&chunk);
        }
        let version = self.push(&bucket, &key, Some(Bytes::from(bytes)))?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(version.e_tag)),
            version_id: Some(version.id),
            ..PutObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let Found { version, body } = self.find(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            input.if_match.as_ref(),
        )?;
        let size = body.len() as u64;
        let (body, content_range) = match input.range {
            None => (body, None),
            Some(range) => {
                let range: std::ops::Range<u64> = Range::check(&range, size)?;
                let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
                // `check` keeps the range within `size`, a `usize` already.
                let slice = body.slice(range.start as usize..range.end as usize);
                (slice, Some(content_range))
            }
        };
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(body.len() as i64),
            content_range,
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            e_tag: Some(ETag::Strong(version.e_tag)),
            last_modified: Some(timestamp(version.modified)),
            version_id: Some(version.id),
            ..GetObjectOutput::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let Found { version, body } = self.find(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            input.if_match.as_ref(),
        )?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(body.len() as i64),
            e_tag: Some(ETag::Strong(version.e_tag)),
            last_modified: Some(timestamp(version.modified)),
            version_id: Some(version.id),
            ..HeadObjectOutput::default()
        }))
    }

    /// Without a version id: adds a delete marker (older versions stay
    /// readable by id). With one: removes that version for good.
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let deleted = self.delete(&input.bucket, &input.key, input.version_id)?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: deleted.delete_marker,
            version_id: deleted.version_id,
            ..DeleteObjectOutput::default()
        }))
    }

    /// Each object as [`delete_object`](Self::delete_object) (object_store's
    /// `delete` sends this).
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let deleted = input
            .delete
            .objects
            .into_iter()
            .map(|object| self.delete(&input.bucket, &object.key, object.version_id))
            .collect::<S3Result<Vec<_>>>()?;
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            ..DeleteObjectsOutput::default()
        }))
    }
}

impl Versioned {
    /// Deletes `version_id` of `key`, or adds a delete marker when `None`.
    fn delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
    ) -> S3Result<DeletedObject> {
        let Some(id) = version_id else {
            let marker = self.push(bucket, key, None)?;
            return Ok(DeletedObject {
                key: Some(key.to_owned()),
                delete_marker: Some(true),
                delete_marker_version_id: Some(marker.id),
                ..DeletedObject::default()
            });
        };
        let mut state = self.lock();
        let objects = state
            .buckets
            .get_mut(bucket)
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        if let Some(versions) = objects.get_mut(key) {
            versions.retain(|version| version.id != id);
            if versions.is_empty() {
                objects.remove(key);
            }
        }
        Ok(DeletedObject {
            key: Some(key.to_owned()),
            version_id: Some(id),
            ..DeletedObject::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_are_unique_opaque_and_hold_a_plus() {
        let ids: std::collections::BTreeSet<String> = (1..=10_000).map(version_id).collect();
        assert_eq!(ids.len(), 10_000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.contains('+'), "{id}");
        }
    }
}
