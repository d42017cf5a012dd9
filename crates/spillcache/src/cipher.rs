//! Per-write encryption: a fresh ChaCha20 key and nonce from the OS, the
//! keystream XORed over the bytes, and a keyed xxh3 tag of the ciphertext.
//!
//! Why xxh3 and not Poly1305: the tag exists to turn a damaged or altered
//! file into an error instead of wrong bytes. Measured on the development
//! machine (2.5 GHz Xeon, AVX2), rand_chacha's keystream runs at ~0.8 GB/s,
//! Poly1305 (RustCrypto `poly1305` 0.8) at ~1.0 GB/s and seeded xxh3 at
//! ~8.7 GB/s: Poly1305 would nearly double the cost of every write and read,
//! xxh3 adds about a tenth. The xxh3 seed is random per write and lives only
//! in RAM beside the key, so nobody who sees only the file can predict the
//! tag; it is a checksum with a secret seed, not a proven MAC.
//!
//!
//! Values of [`SPLIT_MIN`] bytes or more are cut into [`PIECE`]-byte pieces
//! ([`encrypt_piece`], [`decrypt_piece`]): ChaCha20 seeks to any 64-byte
//! block, so each piece is encrypted (or decrypted) on its own, by whichever
//! thread takes it (the hand-off module shares the pieces out). Their tag
//! ([`combine`]) is xxh3 (same seed) of the pieces' xxh3 tags in order, so
//! it still covers every byte and the place of every piece. Shorter values
//! are one keystream and one tag ([`write_whole`], [`read_whole`]).

use std::io;

use blockdev::{ReadAt, WriteAt};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed};
use zeroize::{Zeroize, Zeroizing};

/// Bytes encrypted and written (or read and decrypted) per device call, so
/// values of any size need only this much scratch memory.
pub(crate) const IO_CHUNK: usize = 1 << 20;

/// Keystream generated per refill; small enough to stay in L1.
pub(crate) const KEYSTREAM_BLOCK: usize = 4096;

/// Values this long or longer are cut into pieces, encrypted by the writer
/// thread and a persistent helper thread. Below it the hand-over (~15-40 us
/// on the loaded development machine) costs about what halving the
/// ChaCha20 work saves (128 KiB take ~160 us), so short values stay on the
/// writer thread.
pub(crate) const SPLIT_MIN: usize = 256 << 10;

/// Bytes per piece of a split value: one keystream seek, one tag and one
/// device call each. A multiple of the 64-byte ChaCha20 block.
pub(crate) const PIECE: usize = 64 << 10;

const _: () = assert!(
    PIECE.is_multiple_of(64) && PIECE.is_multiple_of(KEYSTREAM_BLOCK) && SPLIT_MIN >= 2 * PIECE
);

/// The secrets of one write: ChaCha20 key, nonce, tag seed and the tag of
/// the ciphertext. Wiped when dropped; kept boxed in entries so moving an
/// entry never leaves a copy behind in freed memory.
#[derive(Clone)]
pub(crate) struct Seal {
    key: [u8; 32],
    nonce: u64,
    pub(crate) tag_seed: u64,
    pub(crate) tag: u64,
}

impl Seal {
    /// A new key, nonce and tag seed from the operating system.
    pub(crate) fn random() -> io::Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 48]);
        getrandom::fill(&mut bytes[..]).map_err(|e| match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(format!("no OS randomness for a cache key: {e}")),
        })?;
        let mut seal = Seal {
            key: [0; 32],
            nonce: 0,
            tag_seed: 0,
            tag: 0,
        };
        seal.key.copy_from_slice(&bytes[..32]);
        seal.nonce = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
        seal.tag_seed = u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes"));
        Ok(seal)
    }
}

impl Drop for Seal {
    fn drop(&mut self) {
        self.key.zeroize();
        self.nonce.zeroize();
        self.tag_seed.zeroize();
        self.tag.zeroize();
    }
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal { .. }")
    }
}

/// The ChaCha20 keystream of one seal for a value of known length, consumed
/// front to back whatever the sizes of the pieces it is applied to.
///
/// Each refill makes at most what is left of the value (rounded up to whole
/// 4-byte words, so every request continues the same ChaCha20 stream): a
/// 16-byte value costs one ChaCha20 block, not a whole `KEYSTREAM_BLOCK`.
struct Keystream {
    rng: ChaCha20Rng,
    block: [u8; KEYSTREAM_BLOCK],
    filled: usize,
    used: usize,
    /// Bytes of the value not yet covered by a refill.
    unfilled: usize,
}

/// The value's ChaCha20 generator positioned at byte `start`, a multiple of
/// 64 (one ChaCha20 block): any piece of a value encrypts independently.
fn rng_at(seal: &Seal, start: usize) -> ChaCha20Rng {
    debug_assert_eq!(start % 64, 0);
    let mut rng = ChaCha20Rng::from_seed(seal.key);
    rng.set_stream(seal.nonce);
    rng.set_word_pos(start as u128 / 4);
    rng
}

impl Keystream {
    fn new(seal: &Seal, len: usize) -> Self {
        Self::at(seal, 0, len)
    }

    /// The keystream of bytes `start..start + len` of the value; `start` is
    /// a multiple of 64 (a ChaCha20 block).
    fn at(seal: &Seal, start: usize, len: usize) -> Self {
        Keystream {
            rng: rng_at(seal, start),
            block: [0; KEYSTREAM_BLOCK],
            filled: 0,
            used: 0,
            unfilled: len,
        }
    }

    /// The next `max` (or fewer) keystream bytes.
    fn next_piece(&mut self, max: usize) -> &[u8] {
        if self.used == self.filled {
            let want = self.unfilled.min(KEYSTREAM_BLOCK);
            let words = want.div_ceil(4) * 4;
            self.rng.fill_bytes(&mut self.block[..words]);
            self.unfilled -= want;
            self.filled = want;
            self.used = 0;
        }
        let n = max.min(self.filled - self.used);
        let piece = &self.block[self.used..self.used + n];
        self.used += n;
        piece
    }

    /// `buf ^= keystream`.
    fn xor_in_place(&mut self, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let piece = self.next_piece(buf.len() - done);
            let n = piece.len();
            debug_assert!(n > 0, "keystream shorter than the value");
            xor2(&mut buf[done..done + n], piece);
            done += n;
        }
    }
}

/// Lanes of the XOR loops: fixed-size blocks the compiler turns into SIMD
/// (about a fifth faster than a plain zip here).
const XOR_LANES: usize = 32;

/// `buf ^= key`, both of one length.
fn xor2(buf: &mut [u8], key: &[u8]) {
    let mut b = buf.chunks_exact_mut(XOR_LANES);
    let mut k = key.chunks_exact(XOR_LANES);
    for (b, k) in (&mut b).zip(&mut k) {
        for i in 0..XOR_LANES {
            b[i] ^= k[i];
        }
    }
    for (b, k) in b.into_remainder().iter_mut().zip(k.remainder()) {
        *b ^= k;
    }
}

impl Drop for Keystream {
    fn drop(&mut self) {
        // The block may hold unused keystream; only the filled part was written.
        wipe(&mut self.block[..self.filled.div_ceil(4) * 4]);
        // Best effort: overwrite the generator state (which holds the key).
        self.rng = ChaCha20Rng::from_seed([0; 32]);
        std::hint::black_box(&self.rng);
    }
}

/// Zeroes `bytes` with a plain fill the compiler vectorizes, then hands
/// them to `black_box` so the stores cannot be dropped as dead. zeroize's
/// byte-by-byte volatile stores cost about ten times more: for a 4 KiB
/// block, a real share of reading a 4 KiB value.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&*bytes);
}

/// The ChaCha20 keystream of one seal generated straight into the
/// ciphertext buffer and XORed with the plaintext there: no keystream block
/// to clear before or wipe after (for a 1 KiB value those cost more than a
/// third of the ChaCha20 work), and no keystream left behind once the
/// plaintext is XORed in.
struct Encryptor {
    rng: ChaCha20Rng,
    /// A piece whose length was not a multiple of 4 ended the stream.
    #[cfg(debug_assertions)]
    ended: bool,
}

impl Encryptor {
    /// The keystream of bytes `start..` of the value; `start` is a multiple
    /// of 64 (a ChaCha20 block).
    fn at(seal: &Seal, start: usize) -> Self {
        Encryptor {
            rng: rng_at(seal, start),
            #[cfg(debug_assertions)]
            ended: false,
        }
    }

    /// `dst = src ^ keystream`; every piece but the last is a multiple of
    /// 4 bytes long, so the pieces continue one stream.
    fn xor_into(&mut self, src: &[u8], dst: &mut [u8]) {
        debug_assert_eq!(src.len(), dst.len());
        #[cfg(debug_assertions)]
        {
            debug_assert!(!self.ended, "a piece after a ragged one");
            self.ended = !src.len().is_multiple_of(4);
        }
        self.rng.fill_bytes(dst);
        xor2(dst, src);
    }
}

impl Drop for Encryptor {
    fn drop(&mut self) {
        // Best effort: overwrite the generator state (key and buffered
        // keystream).
        self.rng = ChaCha20Rng::from_seed([0; 32]);
        std::hint::black_box(&self.rng);
    }
}

/// The keyed tag of a ciphertext fed in pieces: one-shot xxh3 when the
/// whole value is one piece, the (identical) streaming form otherwise.
enum Tagger {
    OneShot { seed: u64, tag: u64 },
    Stream(Box<Xxh3>),
}

impl Tagger {
    fn new(seed: u64, total_len: usize) -> Self {
        if total_len <= KEYSTREAM_BLOCK {
            Tagger::OneShot {
                seed,
                tag: xxh3_64_with_seed(&[], seed),
            }
        } else {
            Tagger::Stream(Box::new(Xxh3::with_seed(seed)))
        }
    }

    fn update(&mut self, piece: &[u8]) {
        match self {
            Tagger::OneShot { seed, tag } => *tag = xxh3_64_with_seed(piece, *seed),
            Tagger::Stream(state) => state.update(piece),
        }
    }

    fn finish(&self) -> u64 {
        match self {
            Tagger::OneShot { tag, .. } => *tag,
            Tagger::Stream(state) => state.digest(),
        }
    }
}

/// Encrypts `plain`, shorter than [`SPLIT_MIN`], under a fresh seal as one
/// keystream with one tag and writes it at `offset`, `IO_CHUNK` bytes per
/// call through `scratch`; returns the seal with its tag.
pub(crate) fn write_whole<D: WriteAt + ?Sized>(
    device: &D,
    offset: u64,
    plain: &[u8],
    scratch: &mut Vec<u8>,
) -> io::Result<Seal> {
    let mut seal = Seal::random()?;
    let mut keystream = Encryptor::at(&seal, 0);
    let mut tagger = Tagger::new(seal.tag_seed, plain.len());
    let mut pos = offset;
    for chunk in plain.chunks(IO_CHUNK) {
        if scratch.len() < chunk.len() {
            scratch.resize(chunk.len(), 0);
        }
        let cipher = &mut scratch[..chunk.len()];
        // Piece by piece, so the tag reads each piece while it is in L1.
        for (plain_piece, cipher_piece) in chunk
            .chunks(KEYSTREAM_BLOCK)
            .zip(cipher.chunks_mut(KEYSTREAM_BLOCK))
        {
            keystream.xor_into(plain_piece, cipher_piece);
            tagger.update(cipher_piece);
        }
        device.write_all_at(pos, cipher)?;
        pos += chunk.len() as u64;
    }
    seal.tag = tagger.finish();
    Ok(seal)
}

/// Why a sealed value's read returned no data.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The device failed (or ended early).
    Io(io::Error),
    /// The bytes read do not match the tag.
    Corrupt,
}

/// Reads `out.len()` bytes at `offset` (shorter than [`SPLIT_MIN`], one
/// keystream with one tag), checks them against the seal's tag and
/// decrypts them into `out`. On any failure `out` is zeroed: a caller never
/// sees bytes that did not pass the check.
pub(crate) fn read_whole<D: ReadAt + ?Sized>(
    device: &D,
    offset: u64,
    out: &mut [u8],
    seal: &Seal,
) -> Result<(), ReadFailure> {
    let mut keystream = Keystream::new(seal, out.len());
    let mut tagger = Tagger::new(seal.tag_seed, out.len());
    let mut pos = offset;
    let mut result = Ok(());
    for chunk in out.chunks_mut(IO_CHUNK) {
        if let Err(e) = device.read_exact_at(pos, chunk) {
            result = Err(ReadFailure::Io(e));
            break;
        }
        // Piece by piece, so decryption reads each piece while it is in L1.
        for piece in chunk.chunks_mut(KEYSTREAM_BLOCK) {
            tagger.update(piece);
            keystream.xor_in_place(piece);
        }
        pos += chunk.len() as u64;
    }
    if result.is_ok() && tagger.finish() != seal.tag {
        result = Err(ReadFailure::Corrupt);
    }
    if result.is_err() {
        out.zeroize();
    }
    result
}

/// Encrypts, tags and writes piece `index` of a long value (`plain` is that
/// piece) through `scratch`; returns the piece's tag.
pub(crate) fn encrypt_piece<D: WriteAt + ?Sized>(
    device: &D,
    offset: u64,
    seal: &Seal,
    index: usize,
    plain: &[u8],
    scratch: &mut [u8],
) -> io::Result<u64> {
    let start = index * PIECE;
    let cipher = &mut scratch[..plain.len()];
    let mut keystream = Encryptor::at(seal, start);
    let mut tag = Xxh3::with_seed(seal.tag_seed);
    // Piece by piece, so the tag reads each piece while it is in L1.
    for (plain, cipher) in plain
        .chunks(KEYSTREAM_BLOCK)
        .zip(cipher.chunks_mut(KEYSTREAM_BLOCK))
    {
        keystream.xor_into(plain, cipher);
        tag.update(cipher);
    }
    device.write_all_at(offset + start as u64, cipher)?;
    Ok(tag.digest())
}

/// Reads, checks and decrypts piece `index` of a long value (`piece` is
/// its place in the output); returns the piece's tag.
pub(crate) fn decrypt_piece<D: ReadAt + ?Sized>(
    device: &D,
    offset: u64,
    seal: &Seal,
    index: usize,
    piece: &mut [u8],
) -> Result<u64, ReadFailure> {
    let start = index * PIECE;
    device
        .read_exact_at(offset + start as u64, piece)
        .map_err(ReadFailure::Io)?;
    let mut keystream = Keystream::at(seal, start, piece.len());
    let mut tag = Xxh3::with_seed(seal.tag_seed);
    for part in piece.chunks_mut(KEYSTREAM_BLOCK) {
        tag.update(part);
        keystream.xor_in_place(part);
    }
    Ok(tag.digest())
}

/// The tag of a split value: xxh3 of its pieces' tags in order.
pub(crate) fn combine(seed: u64, tags: Vec<u64>) -> u64 {
    let mut bytes = Zeroizing::new(Vec::with_capacity(tags.len() * 8));
    for tag in Zeroizing::new(tags).iter() {
        bytes.extend_from_slice(&tag.to_le_bytes());
    }
    xxh3_64_with_seed(&bytes, seed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use blockdev::MemDevice;

    pub(crate) fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn ciphertext_differs_from_plaintext_and_between_writes() {
        let device = MemDevice::new();
        let plain = vec![b'M'; 4096];
        let mut scratch = Vec::new();
        write_whole(&device, 0, &plain, &mut scratch).unwrap();
        write_whole(&device, 4096, &plain, &mut scratch).unwrap();
        let bytes = device.to_vec();
        let same_as_plain = bytes[..4096].iter().filter(|&&b| b == b'M').count();
        assert!(same_as_plain < 64, "{same_as_plain} bytes unencrypted");
        assert_ne!(bytes[..4096], bytes[4096..], "a fresh key per write");
    }

    #[test]
    fn every_flipped_byte_is_detected_and_nothing_is_returned() {
        let device = MemDevice::new();
        let plain = pattern(3000);
        let seal = write_whole(&device, 0, &plain, &mut Vec::new()).unwrap();
        let clean = device.to_vec();
        for at in (0..3000).step_by(97) {
            let mut damaged = clean.clone();
            damaged[at] ^= 0x01;
            let damaged = MemDevice::from_vec(damaged);
            let mut out = vec![0xAA; 3000];
            let result = read_whole(&damaged, 0, &mut out, &seal);
            assert!(matches!(result, Err(ReadFailure::Corrupt)), "flip at {at}");
            assert!(out.iter().all(|&b| b == 0), "output zeroed");
        }
    }

    #[test]
    fn a_truncated_device_is_an_io_failure() {
        let device = MemDevice::new();
        let seal = write_whole(&device, 0, &pattern(100), &mut Vec::new()).unwrap();
        device.set_len(50).unwrap();
        let mut out = vec![0u8; 100];
        let result = read_whole(&device, 0, &mut out, &seal);
        assert!(matches!(result, Err(ReadFailure::Io(_))));
    }

    #[test]
    fn streaming_and_one_shot_tags_agree() {
        for len in [KEYSTREAM_BLOCK, KEYSTREAM_BLOCK + 1, IO_CHUNK * 2 + 17] {
            let data = pattern(len);
            let mut tagger = Tagger::new(42, data.len());
            for piece in data.chunks(KEYSTREAM_BLOCK) {
                tagger.update(piece);
            }
            assert_eq!(tagger.finish(), xxh3_64_with_seed(&data, 42), "len {len}");
        }
    }

    #[test]
    fn keystream_is_the_same_whatever_the_piece_sizes() {
        let seal = Seal::random().unwrap();
        let mut whole = vec![0u8; 10_001];
        Keystream::new(&seal, whole.len()).xor_in_place(&mut whole);
        let mut stream = vec![0u8; 10_004];
        let mut rng = ChaCha20Rng::from_seed(seal.key);
        rng.set_stream(seal.nonce);
        rng.fill_bytes(&mut stream);
        assert!(whole[..] == stream[..10_001], "exactly the ChaCha20 stream");
        let mut pieces = vec![0u8; 10_001];
        let mut keystream = Keystream::new(&seal, pieces.len());
        let mut rest = &mut pieces[..];
        for size in [1, 3, 4095, 5000, 17].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            let (head, tail) = rest.split_at_mut(n);
            keystream.xor_in_place(head);
            rest = tail;
        }
        assert!(whole == pieces);
    }

    #[test]
    fn xor_helpers_cover_every_byte_at_any_length() {
        for len in [0, 1, 31, 32, 33, 100] {
            let src: Vec<u8> = (0..len as u8).collect();
            let key: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) | 1).collect();
            let mut buf = src.clone();
            xor2(&mut buf, &key);
            let want: Vec<u8> = src.iter().zip(&key).map(|(s, k)| s ^ k).collect();
            assert_eq!(buf, want);
            xor2(&mut buf, &key);
            assert_eq!(buf, src);
        }
    }

    /// The ChaCha20 stream of a seal from its start, `len` bytes.
    pub(crate) fn stream(seal: &Seal, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len.div_ceil(4) * 4];
        let mut rng = ChaCha20Rng::from_seed(seal.key);
        rng.set_stream(seal.nonce);
        rng.fill_bytes(&mut bytes);
        bytes.truncate(len);
        bytes
    }

    #[test]
    fn wipe_zeroes_every_byte_and_keystream_drop_leaves_no_keystream() {
        let mut bytes = pattern(4099);
        wipe(&mut bytes);
        assert!(bytes.iter().all(|&b| b == 0));
        let seal = Seal::random().unwrap();
        let mut keystream = Keystream::new(&seal, 10_000);
        let mut buf = vec![0u8; 100];
        keystream.xor_in_place(&mut buf);
        assert!(keystream.block[..KEYSTREAM_BLOCK].iter().any(|&b| b != 0));
        let mut block = keystream.block;
        // What drop does to the filled part of the block.
        wipe(&mut block[..keystream.filled.div_ceil(4) * 4]);
        assert!(block.iter().all(|&b| b == 0));
    }

    #[test]
    fn seals_are_fresh() {
        let a = Seal::random().unwrap();
        let b = Seal::random().unwrap();
        assert_ne!(a.key, b.key);
        assert_ne!(format!("{a:?}"), "");
    }
}
