//! From an object URL to a store, the object's path in it and the version
//! asked for: object_store's schemes, with our retry settings and clear
//! errors for what object_store would accept and get wrong later.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use crate::error::Error;

/// The query parameter of an S3 URL that names one version of the object.
const VERSION_PARAMETER: &str = "versionId";

/// Where an object URL points.
pub(crate) struct Location {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: Path,
    /// The version the URL asks for (`?versionId=`), else the latest.
    pub(crate) version: Option<String>,
}

/// Parses `url` and builds its store with `options` (object_store's keys)
/// and `retry`.
pub(crate) fn locate(
    url: &str,
    options: &[(String, String)],
    retry: &RetryConfig,
) -> Result<Location, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| invalid(e.to_string()))?;
    let path = Path::parse(path).map_err(|e| invalid(e.to_string()))?;
    if path.as_ref().is_empty() {
        return Err(invalid(
            "it names a bucket or container, not an object: add the object's key \
             (s3://bucket/key)"
                .into(),
        ));
    }
    let version = version(&parsed, &scheme).map_err(invalid)?;
    let store = build(&scheme, &parsed, options, retry).map_err(|e| match e {
        object_store::Error::Generic { .. } | object_store::Error::NotImplemented { .. } => {
            invalid(e.to_string())
        }
        e => Error::Store(e),
    })?;
    Ok(Location {
        store,
        path,
        version,
    })
}

/// The `versionId` an S3 URL asks for. Refused where it would be ignored:
/// a URL of another store, or any other query parameter on an S3 URL.
fn version(url: &Url, scheme: &ObjectStoreScheme) -> Result<Option<String>, String> {
    let mut version = None;
    for (key, value) in url.query_pairs() {
        match (scheme, key.as_ref()) {
            (ObjectStoreScheme::AmazonS3, VERSION_PARAMETER) if version.is_none() => {
                version = Some(value.into_owned());
            }
            (ObjectStoreScheme::AmazonS3, _) => {
                return Err(format!(
                    "query parameter {key:?} is not supported on an S3 URL (only one \
                     {VERSION_PARAMETER})"
                ));
            }
            (_, VERSION_PARAMETER) => {
                return Err(format!(
                    "{VERSION_PARAMETER} is honoured on s3:// URLs only; this store would \
                     read the latest version"
                ));
            }
            _ => {}
        }
    }
    Ok(version)
}

/// Applies every option its builder knows (others are for other stores,
/// as in object_store's `parse_url_opts`).
macro_rules! configured {
    ($builder:expr, $options:expr) => {
        $options
            .iter()
            .fold($builder, |builder, (key, value)| match key.parse() {
                Ok(key) => builder.with_config(key, value),
                Err(_) => builder,
            })
    };
}

fn build(
    scheme: &ObjectStoreScheme,
    url: &Url,
    options: &[(String, String)],
    retry: &RetryConfig,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    // Without the query: object_store's builders read the bucket and the
    // endpoint from the URL, and a query would end up in neither.
    let mut bare = url.clone();
    bare.set_query(None);
    let retry = retry.clone();
    Ok(match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::Memory => Arc::new(object_store::memory::InMemory::new()),
        ObjectStoreScheme::AmazonS3 => Arc::new(
            configured!(
                object_store::aws::AmazonS3Builder::new().with_url(bare.as_str()),
                options
            )
            .with_retry(retry)
            .build()?,
        ),
        #[cfg(feature = "gcp")]
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            configured!(
                object_store::gcp::GoogleCloudStorageBuilder::new().with_url(bare.as_str()),
                options
            )
            .with_retry(retry)
            .build()?,
        ),
        #[cfg(feature = "azure")]
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            configured!(
                object_store::azure::MicrosoftAzureBuilder::new().with_url(bare.as_str()),
                options
            )
            .with_retry(retry)
            .build()?,
        ),
        #[cfg(feature = "http")]
        ObjectStoreScheme::Http => Arc::new(
            configured!(
                object_store::http::HttpBuilder::new().with_url(&bare[..url::Position::BeforePath]),
                options
            )
            .with_retry(retry)
            .build()?,
        ),
        other => {
            let feature = match other {
                ObjectStoreScheme::GoogleCloudStorage => "gcp",
                ObjectStoreScheme::MicrosoftAzure => "azure",
                _ => "http",
            };
            return Err(object_store::Error::Generic {
                store: "objectdev",
                source: format!(
                    "{other:?} URLs need objectdev's `{feature}` cargo feature \
                     (objectdev = {{ features = [\"{feature}\"] }})"
                )
                .into(),
            });
        }
    })
}
