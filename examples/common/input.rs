//! What the examples share: an input named by a path or by an object URL
//! (`s3://bucket/key`, `file:///path`), opened as one device type, and the
//! argument handling of the tools that read one input.
#![allow(dead_code)]

use std::fmt::Display;
use std::fs::File;
use std::io;
use std::process::ExitCode;

use blockdev::ReadAt;
use objectdev::ObjectDevice;
use pagecache::PageCache;

/// A local file or one object in object storage.
#[derive(Debug)]
pub(crate) enum Input {
    File(File),
    Object(ObjectDevice),
}

impl ReadAt for Input {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::File(file) => file.read_at(pos, buf),
            Input::Object(object) => object.read_at(pos, buf),
        }
    }

    fn size(&self) -> io::Result<u64> {
        match self {
            Input::File(file) => ReadAt::size(file),
            Input::Object(object) => object.size(),
        }
    }
}

/// Where the store options of an object URL (endpoint, keys, region, ...)
/// come from.
#[derive(Clone, Debug)]
pub(crate) enum StoreOptions {
    /// The environment, as the tools take them and as the AWS tools do
    /// (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, ...): `ObjectDevice::open`.
    Environment,
    /// These (object_store's keys, e.g. `("aws_endpoint", "http://...")`),
    /// and nothing from the environment: `ObjectDevice::open_with_options`.
    Given(Vec<(String, String)>),
}

/// Opens `source`: an object when it looks like a URL (`scheme://`), with
/// the store's options from `options`, else a local file.
pub(crate) fn open(source: &str, options: &StoreOptions) -> Result<Input, String> {
    if source.contains("://") {
        let object = match options {
            StoreOptions::Environment => ObjectDevice::open(source),
            StoreOptions::Given(given) => ObjectDevice::open_with_options(source, given.clone()),
        };
        object
            .map(Input::Object)
            .map_err(|err| format!("cannot open {source}: {err}"))
    } else {
        File::open(source)
            .map(Input::File)
            .map_err(|err| format!("cannot open {source}: {err}"))
    }
}

/// Opens `source` (an object URL with `options`), builds a cache over it
/// with `cache`, reads a value with `read` and returns its text: what the
/// one-input tools print.
pub(crate) fn render<T, E, F>(
    source: &str,
    options: &StoreOptions,
    cache: impl FnOnce(Input) -> Result<PageCache<Input>, pagecache::Error>,
    read: F,
) -> Result<String, String>
where
    T: Display,
    E: Display,
    F: FnOnce(&PageCache<Input>) -> Result<T, E>,
{
    let cache =
        cache(open(source, options)?).map_err(|err| format!("cannot read {source}: {err}"))?;
    let value = read(&cache).map_err(|err| format!("{source}: {err}"))?;
    Ok(value.to_string())
}

/// The `main` of a tool that takes one input (a path or an object URL, its
/// store options from the environment): `-h`/`--help` prints `usage`; anything but one input is a usage error
/// (exit 2); `run`'s text goes to stdout, its error to stderr (exit 1).
pub(crate) fn one_input_main(
    name: &str,
    usage: &str,
    run: impl FnOnce(&str, &StoreOptions) -> Result<String, String>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let source = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        [source] if !source.starts_with('-') => source,
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match run(source, &StoreOptions::Environment) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{name}: error: {message}");
            ExitCode::FAILURE
        }
    }
}
