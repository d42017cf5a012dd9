//! `forward_object_store!`: the `ObjectStore` methods a wrapper store passes
//! through unchanged, written once for every wrapper that sees only GETs.

/// Implements [`ObjectStore`](object_store::ObjectStore) for a store that
/// wraps another and changes only its GETs and HEADs.
///
/// `forward_object_store!(Wrapper => inner, get_opts: get)` needs a field
/// `inner` holding the wrapped store (an `Arc<dyn ObjectStore>`, say) and
/// an inherent method
/// `async fn get(&self, &Path, GetOptions) -> object_store::Result<GetResult>`
/// (its future `Send`). Every GET and HEAD goes to `get`; every other
/// request the trait requires (PUT, multipart upload, DELETE, LIST, COPY)
/// goes to `inner` as it came, after `self.before()` when
/// `, before_forwarding: before` follows. The methods object_store builds
/// on those keep their defaults, so what they ask passes through the
/// wrapper too: `get_ranges` as ranged GETs through `get`, `rename_opts`
/// as a COPY and a DELETE, `list_with_offset` as a LIST.
///
/// For the workspace's own wrappers (objectdev's and its tests'); not part
/// of the API. A store that does more around writes (objectcache's drops
/// what it cached) writes its own.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use object_store::{memory::InMemory, path::Path, GetOptions, GetResult, ObjectStoreExt};
///
/// /// Counts the GETs and HEADs it forwards, and the rest apart.
/// #[derive(Debug)]
/// struct Tally {
///     inner: Arc<dyn object_store::ObjectStore>,
///     gets: AtomicU64,
///     others: AtomicU64,
/// }
///
/// impl std::fmt::Display for Tally {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "Tally({})", self.inner)
///     }
/// }
///
/// impl Tally {
///     async fn tallied_get(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
///         self.gets.fetch_add(1, Relaxed);
///         self.inner.get_opts(location, options).await
///     }
///
///     fn tally_other(&self) {
///         self.others.fetch_add(1, Relaxed);
///     }
/// }
///
/// objectdev::forward_object_store!(Tally => inner, get_opts: tallied_get, before_forwarding: tally_other);
///
/// let store = Tally { inner: Arc::new(InMemory::new()), gets: AtomicU64::new(0), others: AtomicU64::new(0) };
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(async {
///     store.put(&Path::from("a"), vec![1u8; 10].into()).await?;
///     let bytes = store.get_range(&Path::from("a"), 2..5).await?;
///     assert_eq!((bytes.len(), store.gets.load(Relaxed), store.others.load(Relaxed)), (3, 1, 1));
///     Ok::<(), object_store::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! forward_object_store {
    ($store:ty => $inner:ident, get_opts: $get:ident $(, before_forwarding: $before:ident)? $(,)?) => {
        // A block of its own, so the names imported here stay here.
        const _: () = {
            use $crate::__private::BoxStream;
            use $crate::object_store::path::Path;
            use $crate::object_store::{
                CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
                ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
            };

            #[$crate::__private::async_trait]
            impl ObjectStore for $store {
                async fn put_opts(
                    &self,
                    location: &Path,
                    payload: PutPayload,
                    opts: PutOptions,
                ) -> Result<PutResult> {
                    $(self.$before();)?
                    self.$inner.put_opts(location, payload, opts).await
                }

                async fn put_multipart_opts(
                    &self,
                    location: &Path,
                    opts: PutMultipartOptions,
                ) -> Result<Box<dyn MultipartUpload>> {
                    $(self.$before();)?
                    self.$inner.put_multipart_opts(location, opts).await
                }

                async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
                    self.$get(location, options).await
                }

                fn delete_stream(
                    &self,
                    locations: BoxStream<'static, Result<Path>>,
                ) -> BoxStream<'static, Result<Path>> {
                    $(self.$before();)?
                    self.$inner.delete_stream(locations)
                }

                fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
                    $(self.$before();)?
                    self.$inner.list(prefix)
                }

                async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
                    $(self.$before();)?
                    self.$inner.list_with_delimiter(prefix).await
                }

                async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
                    $(self.$before();)?
                    self.$inner.copy_opts(from, to, options).await
                }
            }
        };
    };
}
