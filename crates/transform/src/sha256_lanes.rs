//! SHA-256 of many records at once: sixteen of them side by side, one in each 32-bit lane of
//! AVX-512 registers.
//!
//! Every record's `UID` is its SHA-256 ([`crate::uid`]), and the hash was a fifth of a
//! transform's time. One SHA-256 stream is a chain of dependent rounds; even with the CPU's SHA
//! instructions it runs at 1.7-1.8 GB/s here. Sixteen independent streams in AVX-512 lanes
//! run the same rounds on sixteen records, one instruction for all: on the bench's records, on
//! AMD Zen 4, 2.3-2.4 GB/s against `sha2`'s 1.7 (3.1 against 1.8 when the blocks are in cache).
//! Where the CPU has AVX-512 but no SHA instructions (Intel Xeon from Skylake to Cascade Lake),
//! `sha2` hashes in plain instructions and the lanes should gain more (not measured here). The
//! framer hashes a batch of records this way before handing them out
//! ([`crate::Framer::with_digests`]); the mapping then finds the digest on the record.
//!
//! Records differ in length, so a lane that finishes takes the next record at once, and the last
//! few, once fewer than half the lanes are busy, are finished one by one from the state their
//! lane reached (on the SHA instructions, through `sha2`). Where the CPU has no AVX-512,
//! [`available`] says so and [`digest_all`] hashes one record after another.

use sha2::digest::generic_array::GenericArray;

/// SHA-256's initial state.
pub(crate) const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Whether this CPU hashes records in lanes (x86-64 with AVX-512F and AVX-512BW).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Writes the SHA-256 of `inputs[i]` to `out[i]`, for every `i` below both lengths.
pub fn digest_all(inputs: &[&[u8]], out: &mut [[u8; 32]]) {
    let n = inputs.len().min(out.len());
    #[cfg(target_arch = "x86_64")]
    if n > 1 && available() {
        // SAFETY: the CPU has AVX-512F and AVX-512BW, the only features `x86::digest_all`
        // is compiled for (checked just above).
        unsafe { x86::digest_all(&inputs[..n], &mut out[..n]) };
        return;
    }
    for (input, digest) in inputs.iter().zip(out.iter_mut()).take(n) {
        let mut state = INITIAL;
        finish_from(&mut state, input, input.len());
        *digest = to_bytes(&state);
    }
}

/// Hashes the whole blocks of `rest`, then its last bytes with SHA-256's padding (one block or
/// two: 0x80, zeros, and the length in bits of all `total` bytes hashed).
pub(crate) fn finish_from(state: &mut [u32; 8], rest: &[u8], total: usize) {
    let (blocks, last) = rest.as_chunks::<64>();
    let (tail, count) = padded_tail(last, total);
    for block in blocks
        .iter()
        .chain(tail.as_chunks::<64>().0[..count].iter())
    {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

/// The last `rest.len()` (< 64) bytes of a message of `total` bytes, padded: the blocks, and how
/// many of them (1 or 2) to hash.
fn padded_tail(rest: &[u8], total: usize) -> ([u8; 128], usize) {
    let mut tail = [0u8; 128];
    let count = pad_into(&mut tail, rest, total);
    (tail, count)
}

/// Writes `rest` (< 64 bytes), the last of a message of `total` bytes, with SHA-256's padding
/// into `tail`: 0x80, zeros, and the length in bits. Returns how many blocks (1 or 2) it fills.
fn pad_into(tail: &mut [u8; 128], rest: &[u8], total: usize) -> usize {
    let left = rest.len();
    let count = if left < 56 { 1 } else { 2 };
    let end = 64 * count;
    tail[..left].copy_from_slice(rest);
    tail[left] = 0x80;
    tail[left + 1..end - 8].fill(0);
    tail[end - 8..end].copy_from_slice(&((total as u64).wrapping_mul(8)).to_be_bytes());
    count
}

/// The digest: the state's words, big-endian.
pub(crate) fn to_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The lanes themselves: a 16-way SHA-256 compression and the schedule that keeps every lane
    //! busy.

    use super::{pad_into, to_bytes, INITIAL};
    use sha2::digest::generic_array::GenericArray;
    use std::arch::x86_64::*;

    /// SHA-256's round constants, a row for every sixteen rounds.
    const K: [[u32; 16]; 4] = [
        [
            0x428a_2f98,
            0x7137_4491,
            0xb5c0_fbcf,
            0xe9b5_dba5,
            0x3956_c25b,
            0x59f1_11f1,
            0x923f_82a4,
            0xab1c_5ed5,
            0xd807_aa98,
            0x1283_5b01,
            0x2431_85be,
            0x550c_7dc3,
            0x72be_5d74,
            0x80de_b1fe,
            0x9bdc_06a7,
            0xc19b_f174,
        ],
        [
            0xe49b_69c1,
            0xefbe_4786,
            0x0fc1_9dc6,
            0x240c_a1cc,
            0x2de9_2c6f,
            0x4a74_84aa,
            0x5cb0_a9dc,
            0x76f9_88da,
            0x983e_5152,
            0xa831_c66d,
            0xb003_27c8,
            0xbf59_7fc7,
            0xc6e0_0bf3,
            0xd5a7_9147,
            0x06ca_6351,
            0x1429_2967,
        ],
        [
            0x27b7_0a85,
            0x2e1b_2138,
            0x4d2c_6dfc,
            0x5338_0d13,
            0x650a_7354,
            0x766a_0abb,
            0x81c2_c92e,
            0x9272_2c85,
            0xa2bf_e8a1,
            0xa81a_664b,
            0xc24b_8b70,
            0xc76c_51a3,
            0xd192_e819,
            0xd699_0624,
            0xf40e_3585,
            0x106a_a070,
        ],
        [
            0x19a4_c116,
            0x1e37_6c08,
            0x2748_774c,
            0x34b0_bcb5,
            0x391c_0cb3,
            0x4ed8_aa4a,
            0x5b9c_ca4f,
            0x682e_6ff3,
            0x748f_82ee,
            0x78a5_636f,
            0x84c8_7814,
            0x8cc7_0208,
            0x90be_fffa,
            0xa450_6ceb,
            0xbef9_a3f7,
            0xc671_78f2,
        ],
    ];

    /// Lanes per register.
    const LANES: usize = 16;

    /// Below this many busy lanes (and no record left to start), the lanes' records are
    /// finished one by one: a 16-lane step costs about what eight blocks do on the SHA
    /// instructions.
    const FEWEST_BUSY: usize = 8;

    /// Where an idle lane reads its block from (its result is never used).
    static IDLE: [u8; 64] = [0; 64];

    /// The state of all lanes: word `i` of lane `l` is `state[i][l]`.
    #[repr(C, align(64))]
    struct State([[u32; LANES]; 8]);

    /// One record in a lane: the record, and its padded last block or two.
    struct Lane<'a> {
        /// Which input, `None` for an idle lane.
        input: Option<usize>,
        /// The record's bytes.
        bytes: &'a [u8],
        /// Blocks hashed so far.
        done: usize,
        /// Whole blocks in `bytes`.
        whole: usize,
        /// The padded tail and its block count.
        tail: [u8; 128],
        tail_blocks: usize,
    }

    impl<'a> Lane<'a> {
        fn idle() -> Self {
            Self {
                input: None,
                bytes: &[],
                done: 0,
                whole: 0,
                tail: [0; 128],
                tail_blocks: 0,
            }
        }

        fn start(&mut self, input: usize, bytes: &'a [u8]) {
            self.whole = bytes.len() / 64;
            self.tail_blocks = pad_into(&mut self.tail, &bytes[self.whole * 64..], bytes.len());
            self.input = Some(input);
            self.bytes = bytes;
            self.done = 0;
        }

        /// The next block to hash.
        fn block(&self) -> &[u8; 64] {
            let (whole, _) = self.bytes.as_chunks::<64>();
            match whole.get(self.done) {
                Some(block) => block,
                None => {
                    let (tail, _) = self.tail.as_chunks::<64>();
                    tail.get(self.done - self.whole).unwrap_or(&IDLE)
                }
            }
        }

        fn finished(&self) -> bool {
            self.done == self.whole + self.tail_blocks
        }
    }

    /// SHA-256 of every input into `out` (of the same length), sixteen at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn digest_all(inputs: &[&[u8]], out: &mut [[u8; 32]]) {
        let mut state = State([[0; LANES]; 8]);
        let mut lanes: [Lane<'_>; LANES] = std::array::from_fn(|_| Lane::idle());
        let mut next = 0;
        loop {
            // Every finished (or idle) lane takes the next input, its state reset.
            let mut busy = 0;
            for (l, lane) in lanes.iter_mut().enumerate() {
                if let (Some(i), true) = (lane.input, lane.finished()) {
                    out[i] = to_bytes(&std::array::from_fn(|w| state.0[w][l]));
                    lane.input = None;
                }
                if lane.input.is_none() {
                    if let Some(bytes) = inputs.get(next) {
                        lane.start(next, bytes);
                        for (w, initial) in INITIAL.iter().enumerate() {
                            state.0[w][l] = *initial;
                        }
                        next += 1;
                    }
                }
                busy += usize::from(lane.input.is_some());
            }
            if next == inputs.len() && busy < FEWEST_BUSY {
                break;
            }
            let blocks: [&[u8; 64]; LANES] = std::array::from_fn(|l| lanes[l].block());
            compress(&mut state, blocks);
            for lane in &mut lanes {
                lane.done += 1;
            }
        }
        // The last few, each from the state its lane reached, one block at a time.
        for (l, lane) in lanes.iter_mut().enumerate() {
            if let Some(i) = lane.input {
                let mut st: [u32; 8] = std::array::from_fn(|w| state.0[w][l]);
                while !lane.finished() {
                    let block = GenericArray::from_slice(lane.block());
                    sha2::compress256(&mut st, std::slice::from_ref(block));
                    lane.done += 1;
                }
                out[i] = to_bytes(&st);
            }
        }
    }

    /// Loads sixteen blocks, one per lane, as SHA-256's sixteen big-endian message words:
    /// `w[j]` holds word `j` of every lane (a 16 × 16 transposition).
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_words(blocks: [&[u8; 64]; LANES]) -> [__m512i; 16] {
        // Each 32-bit word's bytes reversed (SHA-256 reads words big-endian).
        let swap = _mm512_set_epi8(
            12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4,
            5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14,
            15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
        );
        // SAFETY: each block is 64 readable bytes, and an unaligned load reads exactly 64.
        let mut r: [__m512i; 16] = std::array::from_fn(|l| {
            _mm512_shuffle_epi8(
                unsafe { _mm512_loadu_si512(blocks[l].as_ptr().cast()) },
                swap,
            )
        });
        // Pairs of rows interleaved by words, then by pairs of words: r[4i + k] holds word
        // k + 4q of rows 4i..4i+3 in its 128-bit part q.
        let mut t = r;
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        for i in 0..4 {
            r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
            r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
            r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
            r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
        }
        // Then the 128-bit parts gathered: first of rows 0..8 and 8..16, then of all sixteen.
        let (lo, hi) = (
            _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0),
            _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4),
        );
        for k in 0..4 {
            for j in 0..2 {
                t[8 * j + k] = _mm512_permutex2var_epi64(r[8 * j + k], lo, r[8 * j + 4 + k]);
                t[8 * j + 4 + k] = _mm512_permutex2var_epi64(r[8 * j + k], hi, r[8 * j + 4 + k]);
            }
        }
        let (lo, hi) = (
            _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0),
            _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4),
        );
        for k in 0..4 {
            r[k] = _mm512_permutex2var_epi64(t[k], lo, t[8 + k]);
            r[k + 4] = _mm512_permutex2var_epi64(t[k], hi, t[8 + k]);
            r[k + 8] = _mm512_permutex2var_epi64(t[4 + k], lo, t[12 + k]);
            r[k + 12] = _mm512_permutex2var_epi64(t[4 + k], hi, t[12 + k]);
        }
        r
    }

    /// One SHA-256 compression in every lane: `blocks[l]` into lane `l`'s state.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn compress(state: &mut State, blocks: [&[u8; 64]; LANES]) {
        let add = |x, y| _mm512_add_epi32(x, y);
        // SAFETY: each row of the state is 64 bytes, read and written unaligned.
        let row = |w: &[u32; LANES]| unsafe { _mm512_loadu_si512(w.as_ptr().cast()) };
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] =
            [0, 1, 2, 3, 4, 5, 6, 7].map(|w| row(&state.0[w]));
        let [mut w0, mut w1, mut w2, mut w3, mut w4, mut w5, mut w6, mut w7, mut w8, mut w9, mut w10, mut w11, mut w12, mut w13, mut w14, mut w15] =
            load_words(blocks);
        // One round: `$h` becomes the new `a` and `$d` the new `e`; the caller rotates names.
        macro_rules! round {
            ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $w:ident, $k:expr) => {{
                let s1 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<6>($e),
                    _mm512_ror_epi32::<11>($e),
                    _mm512_ror_epi32::<25>($e),
                );
                let ch = _mm512_ternarylogic_epi32::<0xca>($e, $f, $g);
                let t1 = add(add($h, _mm512_set1_epi32($k as i32)), add($w, add(ch, s1)));
                let s0 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<2>($a),
                    _mm512_ror_epi32::<13>($a),
                    _mm512_ror_epi32::<22>($a),
                );
                let maj = _mm512_ternarylogic_epi32::<0xe8>($a, $b, $c);
                $d = add($d, t1);
                $h = add(t1, add(s0, maj));
            }};
        }
        // The message schedule: `$w` (word i - 16) becomes word i.
        macro_rules! sched {
            ($w:ident, $w15:ident, $w7:ident, $w2:ident) => {{
                let s0 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<7>($w15),
                    _mm512_ror_epi32::<18>($w15),
                    _mm512_srli_epi32::<3>($w15),
                );
                let s1 = _mm512_ternarylogic_epi32::<0x96>(
                    _mm512_ror_epi32::<17>($w2),
                    _mm512_ror_epi32::<19>($w2),
                    _mm512_srli_epi32::<10>($w2),
                );
                $w = add(add($w, s0), add($w7, s1));
            }};
        }
        {
            let k = &K[0];
            round!(a, b, c, d, e, f, g, h, w0, k[0]);
            round!(h, a, b, c, d, e, f, g, w1, k[1]);
            round!(g, h, a, b, c, d, e, f, w2, k[2]);
            round!(f, g, h, a, b, c, d, e, w3, k[3]);
            round!(e, f, g, h, a, b, c, d, w4, k[4]);
            round!(d, e, f, g, h, a, b, c, w5, k[5]);
            round!(c, d, e, f, g, h, a, b, w6, k[6]);
            round!(b, c, d, e, f, g, h, a, w7, k[7]);
            round!(a, b, c, d, e, f, g, h, w8, k[8]);
            round!(h, a, b, c, d, e, f, g, w9, k[9]);
            round!(g, h, a, b, c, d, e, f, w10, k[10]);
            round!(f, g, h, a, b, c, d, e, w11, k[11]);
            round!(e, f, g, h, a, b, c, d, w12, k[12]);
            round!(d, e, f, g, h, a, b, c, w13, k[13]);
            round!(c, d, e, f, g, h, a, b, w14, k[14]);
            round!(b, c, d, e, f, g, h, a, w15, k[15]);
        }
        for k in &K[1..] {
            sched!(w0, w1, w9, w14);
            round!(a, b, c, d, e, f, g, h, w0, k[0]);
            sched!(w1, w2, w10, w15);
            round!(h, a, b, c, d, e, f, g, w1, k[1]);
            sched!(w2, w3, w11, w0);
            round!(g, h, a, b, c, d, e, f, w2, k[2]);
            sched!(w3, w4, w12, w1);
            round!(f, g, h, a, b, c, d, e, w3, k[3]);
            sched!(w4, w5, w13, w2);
            round!(e, f, g, h, a, b, c, d, w4, k[4]);
            sched!(w5, w6, w14, w3);
            round!(d, e, f, g, h, a, b, c, w5, k[5]);
            sched!(w6, w7, w15, w4);
            round!(c, d, e, f, g, h, a, b, w6, k[6]);
            sched!(w7, w8, w0, w5);
            round!(b, c, d, e, f, g, h, a, w7, k[7]);
            sched!(w8, w9, w1, w6);
            round!(a, b, c, d, e, f, g, h, w8, k[8]);
            sched!(w9, w10, w2, w7);
            round!(h, a, b, c, d, e, f, g, w9, k[9]);
            sched!(w10, w11, w3, w8);
            round!(g, h, a, b, c, d, e, f, w10, k[10]);
            sched!(w11, w12, w4, w9);
            round!(f, g, h, a, b, c, d, e, w11, k[11]);
            sched!(w12, w13, w5, w10);
            round!(e, f, g, h, a, b, c, d, w12, k[12]);
            sched!(w13, w14, w6, w11);
            round!(d, e, f, g, h, a, b, c, w13, k[13]);
            sched!(w14, w15, w7, w12);
            round!(c, d, e, f, g, h, a, b, w14, k[14]);
            sched!(w15, w0, w8, w13);
            round!(b, c, d, e, f, g, h, a, w15, k[15]);
        }
        let ends = [a, b, c, d, e, f, g, h];
        for (w, end) in state.0.iter_mut().zip(ends) {
            let sum = add(row(w), end);
            // SAFETY: as for `row`.
            unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), sum) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn check(inputs: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut out = vec![[0u8; 32]; refs.len()];
        digest_all(&refs, &mut out);
        for (input, digest) in refs.iter().zip(&out) {
            let expected: [u8; 32] = Sha256::digest(input).into();
            assert_eq!(digest, &expected, "{} bytes", input.len());
        }
    }

    proptest! {
        /// Any number of inputs of any lengths (around every padding edge, and some long
        /// enough that lanes are refilled many times): each digest is SHA-256's.
        #[test]
        fn lanes_hash_as_sha256(
            inputs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..60),
        ) {
            check(&inputs);
        }
    }

    #[test]
    fn every_length_near_a_block_edge() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(400).collect();
        let inputs: Vec<Vec<u8>> = (0..=200)
            .chain([255, 256, 399])
            .map(|n| bytes[..n].to_vec())
            .collect();
        check(&inputs);
        // One long input among short ones: its lane outlives all the others.
        let mut mixed = vec![vec![7u8; 5000]];
        mixed.extend((0..40).map(|n| vec![n as u8; n * 3]));
        check(&mixed);
    }
}
