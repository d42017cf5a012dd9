//! `InvalidatingUpload`: a multipart upload that drops what the cache holds
//! for its location when it completes.

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload, PutResult, Result, UploadPart};

use crate::regions::Regions;

/// Forwards to the inner store's upload; completing it is a write.
#[derive(Debug)]
pub(crate) struct InvalidatingUpload {
    pub(crate) inner: Box<dyn MultipartUpload>,
    pub(crate) regions: Arc<Regions>,
    pub(crate) location: Path,
}

#[async_trait]
impl MultipartUpload for InvalidatingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.regions.forget_for_write(&self.location);
        let result = self.inner.complete().await;
        self.regions.forget_for_write(&self.location);
        result
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
