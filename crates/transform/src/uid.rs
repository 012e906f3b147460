//! The record's `UID`, the hex SHA-256 of its raw bytes, hashed a block at a time in the gaps of
//! the mapping.
//!
//! SHA-256 with the CPU's SHA instructions is one chain of dependent rounds: about two cycles a
//! byte for one stream, with most of the core idle meanwhile. Hashed before the mapping, it was a
//! quarter of a transform's time. Hashed a 64-byte block at each of the mapping's steps
//! ([`UidPump::pump`]), the rounds run beside the mapping's own work (the CPU executes out of
//! order), and [`UidPump::finish`] hashes what is left. The result is SHA-256 exactly: the
//! blocks are the same, in the same order, only interleaved with other work. Where the CPU has
//! AVX-512 the framer hashes sixteen records at once instead ([`crate::sha256_lanes`]), faster
//! still, and the pump only hands on its digest ([`UidPump::known`]).

use crate::sha256_lanes;
use sha2::digest::generic_array::GenericArray;
use std::cell::Cell;

/// SHA-256 of one record, advanced a block at a time.
///
/// Pumped through a shared reference (the state in [`Cell`]s), so that every step of the
/// mapping can reach it beside its other borrows; a direct call, inlined where it is pumped.
pub struct UidPump<'a> {
    state: Cell<[u32; 8]>,
    /// The record.
    bytes: &'a [u8],
    /// How much of it is hashed.
    done: Cell<usize>,
    /// The digest, when it was known before (see [`UidPump::known`]).
    known: Option<[u8; 32]>,
}

impl<'a> UidPump<'a> {
    /// A hash of `bytes`, nothing of it hashed yet.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            state: Cell::new(sha256_lanes::INITIAL),
            bytes,
            done: Cell::new(0),
            known: None,
        }
    }

    /// A hash already computed (by the framer, many records at once): pumping it does nothing
    /// and [`UidPump::finish`] returns `digest`.
    pub fn known(digest: [u8; 32]) -> Self {
        Self {
            state: Cell::new(sha256_lanes::INITIAL),
            bytes: &[],
            done: Cell::new(0),
            known: Some(digest),
        }
    }

    /// Hashes the next 64-byte block, if a whole one is left.
    #[inline]
    pub fn pump(&self) {
        let done = self.done.get();
        if let Some(block) = self.bytes.get(done..done + 64) {
            // The block hashed where it is (a one-block slice of it), not copied first.
            // SAFETY: no other reference to the state exists while compress256 runs (the Cell
            // is not Sync, and it is lent out nowhere else).
            let state = unsafe { &mut *self.state.as_ptr() };
            sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
            self.done.set(done + 64);
        }
    }

    /// Hashes what is left, with SHA-256's padding, and returns the digest.
    pub fn finish(self) -> [u8; 32] {
        if let Some(digest) = self.known {
            return digest;
        }
        // The whole blocks not pumped yet, then the last bytes padded (one block or two).
        let mut state = self.state.get();
        sha256_lanes::finish_from(&mut state, &self.bytes[self.done.get()..], self.bytes.len());
        sha256_lanes::to_bytes(&state)
    }
}

/// `digest` as 64 lower-case hex digits.
pub fn hex(digest: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        text[2 * i] = HEX[usize::from(b >> 4)];
        text[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    proptest! {
        /// Whatever the number of blocks pumped before finishing, the digest is SHA-256's, at
        /// every length around the padding's edges (55, 56, 63, 64 bytes into a block).
        #[test]
        fn pumped_hashes_are_sha256(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            pumps in 0usize..8,
        ) {
            let pump = UidPump::new(&bytes);
            for _ in 0..pumps {
                pump.pump();
            }
            let expected: [u8; 32] = Sha256::digest(&bytes).into();
            prop_assert_eq!(pump.finish(), expected);
        }
    }

    #[test]
    fn every_length_near_a_block_edge() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        for len in (0..=200).chain([255, 256, 299]) {
            let expected: [u8; 32] = Sha256::digest(&bytes[..len]).into();
            assert_eq!(UidPump::new(&bytes[..len]).finish(), expected, "{len}");
        }
        assert_eq!(
            &hex(&Sha256::digest(b"abc").into()),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
