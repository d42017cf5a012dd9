//! `SpillTier` passes read-ahead hints on to its device: whole chunks,
//! only the span of chunks it lacks; and read-ahead limits, as they are.

use blockdev::{FaultyDevice, MemDevice, ReadAt};
use spillcache::SpillTier;

#[test]
fn a_hint_reaches_the_device_as_the_chunks_the_tier_lacks() -> Result<(), Box<dyn std::error::Error>>
{
    // Records the hints it is given.
    let device = FaultyDevice::new(MemDevice::from_vec(vec![3; 10_000]));
    let tier = SpillTier::with_chunk_size(&device, std::env::temp_dir(), 1 << 20, 1000)?;
    tier.read_exact_at(0, &mut [0u8; 2000])?; // chunks 0 and 1 resident
    tier.will_need(1500, 3000); // chunks 1..=4: 2..=4 missing
    tier.will_need(500, 1000); // chunks 0 and 1, both resident
    tier.will_need(9_500, u64::MAX); // clipped to the device: chunk 9
    tier.will_need(20_000, 10); // past the end
    assert_eq!(device.hints(), [(2000, 3000), (9000, 1000)]);
    Ok(())
}

#[test]
fn a_read_ahead_limit_reaches_the_device() -> Result<(), Box<dyn std::error::Error>> {
    // Records the limits it is given.
    let device = FaultyDevice::new(MemDevice::from_vec(vec![3; 10_000]));
    let tier = SpillTier::with_chunk_size(&device, std::env::temp_dir(), 1 << 20, 1000)?;
    tier.limit_read_ahead(8 << 20);
    tier.limit_read_ahead(0);
    assert_eq!(device.read_ahead_limits(), [8 << 20, 0]);
    Ok(())
}
