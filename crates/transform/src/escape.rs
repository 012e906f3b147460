//! Escaping text as the contents of a JSON string, and back: the hot loop of every request.
//!
//! Every byte of every `eventData` passes through [`escape_into`] on its way into a
//! PutAuditEvents request (the document is a JSON string inside the request's JSON), and most of
//! them are quotes' neighbours, so this is where a transform spends much of its time. On x86-64
//! it takes thirty-two bytes a step with AVX-512 (a byte permute and a byte compress) where the
//! CPU has it, else sixteen bytes a step (SSSE3's byte shuffle, with POPCNT, which every x86-64
//! server of the last fifteen years has; SSE2, which every x86-64 CPU has, otherwise), chosen once
//! at run time; elsewhere eight bytes a step in a general-purpose register. The `unsafe` code is
//! confined to the steps, each with the bounds that make it sound, and property tests check every
//! path this CPU can take against the byte-wise escape.

/// How each byte is written inside a JSON string: 0 as itself, 1 behind a backslash (`"`, `\\`),
/// 2 as a short or `\u00XX` escape (the control characters).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 2;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as the contents of a JSON string (without the quotes).
///
/// Sixteen bytes a step with SIMD instructions on x86-64, eight elsewhere and after a control
/// character (rare: line breaks and tabs in pretty-printed text).
#[inline]
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    let s = &s[escape_wide(out, s)..];
    escape_words(out, s);
}

/// Like [`escape_into`] for text that should hold no control character (a raw JSON value copied
/// as it stands): false, with nothing appended, if it does hold one.
#[inline]
pub fn escape_clean_into(out: &mut Vec<u8>, s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let start = out.len();
        // The wide steps stop short only at a control character.
        if escape_wide(out, s) < s.len() {
            out.truncate(start);
            return false;
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        if has_control(s) {
            return false;
        }
        escape_words(out, s);
        true
    }
}

/// The wide steps of [`escape_into`] with the best instructions this CPU has.
#[cfg(target_arch = "x86_64")]
#[inline]
fn escape_wide(out: &mut Vec<u8>, s: &[u8]) -> usize {
    match wide_level() {
        // SAFETY: the CPU has every feature `escape_avx512` enables (`wide_level` checked).
        Wide::Avx512 => unsafe { escape_avx512(out, s) },
        // SAFETY: the CPU has SSSE3 and POPCNT (`wide_level` checked).
        Wide::Ssse3 => unsafe { escape_ssse3(out, s) },
        Wide::Sse2 => escape_sse2(out, s),
    }
}

/// Which wide steps this CPU can take.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wide {
    Sse2,
    Ssse3,
    Avx512,
}

/// The best [`Wide`] steps for this CPU, detected once.
#[cfg(target_arch = "x86_64")]
#[inline]
fn wide_level() -> Wide {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(0);
    match LEVEL.load(Ordering::Relaxed) {
        1 => Wide::Sse2,
        2 => Wide::Ssse3,
        3 => Wide::Avx512,
        _ => {
            let level = if has_avx512_escape() {
                Wide::Avx512
            } else if std::is_x86_feature_detected!("ssse3")
                && std::is_x86_feature_detected!("popcnt")
            {
                Wide::Ssse3
            } else {
                Wide::Sse2
            };
            LEVEL.store(level as u8 + 1, Ordering::Relaxed);
            level
        }
    }
}

/// Whether the CPU has what [`escape_avx512`] needs.
#[cfg(target_arch = "x86_64")]
fn has_avx512_escape() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vbmi")
        && std::is_x86_feature_detected!("avx512vbmi2")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("popcnt")
}

/// Appends `s` if it needs no escaping inside a JSON string, and says whether it did (nothing
/// is appended when it does not): the check and the copy in one pass, the common case of
/// writing a string.
#[inline]
pub fn push_plain(out: &mut Vec<u8>, s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if wide_level() == Wide::Avx512 {
        // SAFETY: the CPU has every feature `push_plain_avx512` enables (`wide_level` checked).
        return unsafe { push_plain_avx512(out, s) };
    }
    let plain = is_plain_bytes(s);
    if plain {
        out.extend_from_slice(s);
    }
    plain
}

/// [`push_plain`] sixty-four bytes a step, the last ones through a masked load.
///
/// # Safety
///
/// The CPU must have AVX512F and AVX512BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn push_plain_avx512(out: &mut Vec<u8>, s: &[u8]) -> bool {
    use std::arch::x86_64::{
        _mm512_cmpeq_epi8_mask, _mm512_mask_cmple_epu8_mask, _mm512_maskz_loadu_epi8,
        _mm512_set1_epi8, _mm512_storeu_si512,
    };
    let start = out.len();
    out.reserve(s.len() + 64);
    let src = s.as_ptr();
    let dst = out.as_mut_ptr();
    let mut i = 0usize;
    // SAFETY: the CPU has the features enabled (this function's condition). Reads: a step at `i`
    // loads only the bytes its mask selects, `i .. i + min(64, len - i)`, inside `s`. Writes: a
    // step at `i < s.len()` stores 64 bytes at `start + i`, below `start + s.len() + 64`, inside
    // the capacity reserved. `set_len`: every byte up to `start + s.len()` was stored.
    unsafe {
        let quote = _mm512_set1_epi8(b'"' as i8);
        let backslash = _mm512_set1_epi8(b'\\' as i8);
        let below_space = _mm512_set1_epi8(0x1f);
        while i < s.len() {
            let left = s.len() - i;
            let valid: u64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
            let v = _mm512_maskz_loadu_epi8(valid, src.add(i).cast());
            let special = _mm512_mask_cmple_epu8_mask(valid, v, below_space)
                | _mm512_cmpeq_epi8_mask(v, quote)
                | _mm512_cmpeq_epi8_mask(v, backslash);
            if special != 0 {
                return false;
            }
            _mm512_storeu_si512(dst.add(start + i).cast(), v);
            i += left.min(64);
        }
        out.set_len(start + s.len());
    }
    true
}

/// Thirty-two bytes a step with AVX-512 (Ice Lake and later, Zen 4 and later): each byte of the
/// step is paired with a backslash in front of it (one two-table byte permute), the backslashes
/// in front of anything but a quote or a backslash are squeezed out (one byte compress, by a mask
/// made with PDEP), and the result is stored whole. The last bytes are read with a masked load,
/// so a short string takes one step and no padding. Returns how much of `s` it took: all of it,
/// or everything before the step holding the first control character.
///
/// # Safety
///
/// The CPU must have AVX512F, AVX512BW, AVX512VL, AVX512VBMI, AVX512VBMI2, BMI2 and POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,bmi2,popcnt")]
unsafe fn escape_avx512(out: &mut Vec<u8>, s: &[u8]) -> usize {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8_mask, _mm256_mask_cmple_epu8_mask, _mm256_maskz_loadu_epi8,
        _mm256_set1_epi8, _mm512_loadu_si512, _mm512_maskz_compress_epi8, _mm512_permutex2var_epi8,
        _mm512_set1_epi8, _mm512_storeu_si512, _mm512_zextsi256_si512, _pdep_u64,
    };
    /// Byte `2k` takes the backslash (index 64: the second table's first byte), byte `2k + 1`
    /// the step's byte `k`.
    static PAIR: [u8; 64] = {
        let mut t = [0u8; 64];
        let mut k = 0;
        while k < 32 {
            t[2 * k] = 64;
            t[2 * k + 1] = k as u8;
            k += 1;
        }
        t
    };
    let start = out.len();
    // Each byte becomes at most two, and a step stores 64 bytes wherever its output starts.
    out.reserve(2 * s.len() + 64);
    let src = s.as_ptr();
    let dst = out.as_mut_ptr();
    let (mut i, mut j) = (0usize, start);
    // SAFETY: the CPU has the features enabled (this function's condition). Reads: a step at `i`
    // loads only the bytes its mask selects, `i .. i + min(32, len - i)`, inside `s` (masked-off
    // bytes are not read and cannot fault). Writes: before a step `j - start <= 2 * i` (a step
    // writes at most two bytes per byte taken) and `i < s.len()`, so its 64-byte store ends below
    // `start + 2 * s.len() + 64`, inside the capacity reserved. `set_len(j)`: each step stores
    // every byte from its `j` to its new `j`.
    unsafe {
        let pair = _mm512_loadu_si512(PAIR.as_ptr().cast());
        let slashes = _mm512_set1_epi8(b'\\' as i8);
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let below_space = _mm256_set1_epi8(0x1f);
        while i < s.len() {
            let left = s.len() - i;
            let valid: u32 = if left >= 32 { !0 } else { (1u32 << left) - 1 };
            let v = _mm256_maskz_loadu_epi8(valid, src.add(i).cast());
            if _mm256_mask_cmple_epu8_mask(valid, v, below_space) != 0 {
                break;
            }
            let special = _mm256_cmpeq_epi8_mask(v, quote) | _mm256_cmpeq_epi8_mask(v, backslash);
            let keep = _pdep_u64(u64::from(special), 0x5555_5555_5555_5555)
                | _pdep_u64(u64::from(valid), 0xAAAA_AAAA_AAAA_AAAA);
            let paired = _mm512_permutex2var_epi8(_mm512_zextsi256_si512(v), pair, slashes);
            _mm512_storeu_si512(dst.add(j).cast(), _mm512_maskz_compress_epi8(keep, paired));
            j += keep.count_ones() as usize;
            i += left.min(32);
        }
        out.set_len(j);
    }
    i
}

/// [`escape_steps`] with [`sse2_step`].
#[cfg(target_arch = "x86_64")]
fn escape_sse2(out: &mut Vec<u8>, s: &[u8]) -> usize {
    // SAFETY: `escape_steps` calls the step within the bounds the step asks for.
    unsafe { escape_steps(out, s, |src, dst| sse2_step(src, dst)) }
}

/// [`escape_steps`] with [`ssse3_step`].
///
/// # Safety
///
/// The CPU must have SSSE3 and POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3,popcnt")]
unsafe fn escape_ssse3(out: &mut Vec<u8>, s: &[u8]) -> usize {
    // SAFETY: the CPU has SSSE3 and POPCNT (this function's own condition), and `escape_steps` calls the
    // step within the bounds the step asks for.
    unsafe { escape_steps(out, s, |src, dst| ssse3_step(src, dst)) }
}

/// Escapes `s` sixteen bytes a `step`, the last bytes (fewer than 32) through a copy padded with
/// letters, and returns how much of `s` it took: all of it, or everything before the step holding
/// the first control character (the caller escapes the rest).
///
/// # Safety
///
/// `step` may be called only with `src` readable for 31 bytes and `dst` writable for 47 (which is
/// how this calls it), must write only there, and must return how many bytes it wrote, all of
/// them stored, or None for sixteen bytes holding a control character.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn escape_steps(
    out: &mut Vec<u8>,
    s: &[u8],
    step: impl Fn(*const u8, *mut u8) -> Option<usize>,
) -> usize {
    let start = out.len();
    // Each byte of `s` becomes at most two; a step writes at most 47 bytes past where it starts,
    // and the padded tail's letters (fewer than 16) are written before being taken back.
    out.reserve(2 * s.len() + 64);
    let src = s.as_ptr();
    let dst = out.as_mut_ptr();
    let (mut i, mut j) = (0usize, start);
    // SAFETY (what the step asks). Reads: in the main loop a step at `i` runs only while
    // `i + 32 <= s.len()`, so its 31 bytes lie inside `s`; the tail holds `r < 32` bytes, so its
    // steps start at `k` = 0 or 16 and read below 16 + 31 < 64, inside `pad`. Writes: before a
    // step, `j - start <= 2 * t` where `t < s.len()` bytes of `s` were taken (the padding is only
    // in the last step); a step writes below its `j + 47`, so every write is below
    // `start + 2 * s.len() + 47`, inside the capacity reserved. `set_len(j)`: a step stores every
    // byte from its `j` to its new `j`, and `j` only moves back over bytes already stored.
    unsafe {
        while i + 32 <= s.len() {
            match step(src.add(i), dst.add(j)) {
                Some(n) => j += n,
                None => {
                    out.set_len(j);
                    return i;
                }
            }
            i += 16;
        }
        let r = s.len() - i;
        if r > 0 {
            let mut pad = [b'a'; 64];
            copy_short(&mut pad, &s[i..]);
            let mut k = 0;
            while k < r {
                match step(pad.as_ptr().add(k), dst.add(j)) {
                    Some(n) => j += n,
                    None => break,
                }
                k += 16;
            }
            if k >= r {
                // The last step's padding letters (one byte each) ended the output: drop them.
                j -= k - r;
                i = s.len();
            } else {
                i += k;
            }
        }
        out.set_len(j);
    }
    i
}

/// Copies `src` (fewer than 32 bytes) to the start of `pad` in two overlapping copies of a fixed
/// size, which compile to a few moves, where a copy of any length would call `memcpy`: this runs
/// for the end of every string.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn copy_short(pad: &mut [u8; 64], src: &[u8]) {
    fn two<const N: usize>(pad: &mut [u8; 64], src: &[u8]) {
        let r = src.len();
        pad[..N].copy_from_slice(&src[..N]);
        pad[r - N..r].copy_from_slice(&src[r - N..]);
    }
    match src.len() {
        16..=31 => two::<16>(pad, src),
        8..=15 => two::<8>(pad, src),
        4..=7 => two::<4>(pad, src),
        _ => {
            for (to, &b) in pad.iter_mut().zip(src) {
                *to = b;
            }
        }
    }
}

/// One SSE2 step: escapes the sixteen bytes at `src` into `dst` and returns how many bytes it
/// wrote, or None (having written garbage) if one of them is a control character.
///
/// It loads the sixteen bytes, stores them whole, speculatively, and for each quote or backslash
/// among them writes a backslash where it stands and stores the source's sixteen bytes from that
/// special byte on right after it, so a special byte costs one load and one store.
///
/// # Safety
///
/// `src` must be readable for 31 bytes and `dst` writable for 47.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sse2_step(src: *const u8, dst: *mut u8) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_storeu_si128,
    };
    // SAFETY: SSE2 is part of x86-64, so these intrinsics exist on every CPU this runs on; the
    // loads read `src[p .. p + 16]` for `p < 16` (within 31 bytes) and the stores write
    // `dst[q .. q + 16]` for `q <= 15 + 15 + 1` (within 47 bytes), as the caller promises.
    unsafe {
        let v = _mm_loadu_si128(src.cast::<__m128i>());
        let (controls, quotes, backslashes) = classes(v);
        if _mm_movemask_epi8(controls) != 0 {
            return None;
        }
        let mut mask = _mm_movemask_epi8(_mm_or_si128(quotes, backslashes)) as u32;
        _mm_storeu_si128(dst.cast::<__m128i>(), v);
        let (mut j, mut placed) = (0usize, 0usize);
        while mask != 0 {
            let p = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            j += p - placed;
            *dst.add(j) = b'\\';
            j += 1;
            let rest = _mm_loadu_si128(src.add(p).cast::<__m128i>());
            _mm_storeu_si128(dst.add(j).cast::<__m128i>(), rest);
            placed = p;
        }
        Some(j + 16 - placed)
    }
}

/// One SSSE3 step: like [`sse2_step`], without a branch per special byte. Each half of the
/// sixteen bytes is spread out by one byte shuffle, chosen by which of its eight bytes are quotes
/// or backslashes (256 shuffles, one table), and the backslashes are laid into the gaps.
///
/// # Safety
///
/// The CPU must have SSSE3 and POPCNT; `src` must be readable for 16 bytes and `dst` writable
/// for 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3,popcnt")]
#[inline]
unsafe fn ssse3_step(src: *const u8, dst: *mut u8) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_shuffle_epi8,
        _mm_srli_si128, _mm_storeu_si128,
    };
    // SAFETY: the CPU has SSSE3 (the caller promises; SSE2 is part of x86-64); the table loads
    // read whole entries of `SPREAD` (indexed by a byte); the load reads `src[0 .. 16]` and the
    // stores write `dst[0 .. 16]` and `dst[n .. n + 16]` for `n <= 16`, within 32 bytes.
    unsafe {
        let v = _mm_loadu_si128(src.cast::<__m128i>());
        let (controls, quotes, backslashes) = classes(v);
        if _mm_movemask_epi8(controls) != 0 {
            return None;
        }
        let mask = _mm_movemask_epi8(_mm_or_si128(quotes, backslashes)) as usize;
        let (lo, hi) = (&SPREAD[mask & 0xff], &SPREAD[mask >> 8]);
        let spread = _mm_or_si128(
            _mm_shuffle_epi8(v, _mm_loadu_si128(lo.shuffle.as_ptr().cast::<__m128i>())),
            _mm_loadu_si128(lo.slashes.as_ptr().cast::<__m128i>()),
        );
        _mm_storeu_si128(dst.cast::<__m128i>(), spread);
        // Counted from the mask (not read from the table): the next step's place waits on it.
        let n = 8 + (mask & 0xff).count_ones() as usize;
        let spread = _mm_or_si128(
            _mm_shuffle_epi8(
                _mm_srli_si128::<8>(v),
                _mm_loadu_si128(hi.shuffle.as_ptr().cast::<__m128i>()),
            ),
            _mm_loadu_si128(hi.slashes.as_ptr().cast::<__m128i>()),
        );
        _mm_storeu_si128(dst.add(n).cast::<__m128i>(), spread);
        Some(16 + mask.count_ones() as usize)
    }
}

/// The bytes of `v` that are control characters, quotes and backslashes (each 0xff or 0).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classes(
    v: std::arch::x86_64::__m128i,
) -> (
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m128i,
    std::arch::x86_64::__m128i,
) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_max_epu8, _mm_set1_epi8};
    // SAFETY: SSE2 is part of x86-64; these touch no memory.
    unsafe {
        // A byte is a control character when max(byte, 0x1f) == 0x1f.
        let below_space = _mm_set1_epi8(0x1f);
        let controls = _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space);
        let quotes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslashes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        (controls, quotes, backslashes)
    }
}

/// How eight bytes with quotes or backslashes at the bits of an 8-bit mask are spread out: the
/// shuffle that puts each byte where it goes (0x80, a zero, where a backslash goes), the
/// backslashes in those places.
#[derive(Clone, Copy)]
struct Spread {
    shuffle: [u8; 16],
    slashes: [u8; 16],
}

/// [`Spread`] for every 8-bit mask.
static SPREAD: [Spread; 256] = {
    let mut table = [Spread {
        shuffle: [0x80; 16],
        slashes: [0; 16],
    }; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut at, mut i) = (0, 0);
        while i < 8 {
            if (mask >> i) & 1 == 1 {
                table[mask].slashes[at] = b'\\';
                at += 1;
            }
            table[mask].shuffle[at] = i as u8;
            at += 1;
            i += 1;
        }
        mask += 1;
    }
    table
};

/// The word-wise steps of [`escape_into`]: eight bytes at a time. A word with nothing to escape
/// (most words of most strings) is copied whole. In a word with quotes or backslashes, the bytes
/// are stored speculatively as one 8-byte write and each special byte then costs a shift, a
/// backslash and one more 8-byte write. A control character, rare in practice, sends the rest
/// through the byte-wise slow path.
#[inline]
fn escape_words(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    // Worst case without control characters: every byte doubled; plus room for the last
    // speculative 8-byte store.
    out.resize(start + 2 * s.len() + 8, 0);
    let mut j = start;
    let mut chunks = s.chunks_exact(8);
    for (n, chunk) in (&mut chunks).enumerate() {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        if zero_bytes(w & (LO * 0xE0)) != 0 {
            out.truncate(j);
            escape_controls(out, &s[n * 8..]);
            return;
        }
        let mut specials =
            zero_bytes(w ^ (LO * u64::from(b'"'))) | zero_bytes(w ^ (LO * u64::from(b'\\')));
        let mut rest = w;
        let mut base = 0usize;
        loop {
            out[j..j + 8].copy_from_slice(&rest.to_le_bytes());
            if specials == 0 {
                j += 8 - base;
                break;
            }
            let at = (specials.trailing_zeros() / 8) as usize;
            specials &= specials - 1;
            let before = at - base;
            j += before;
            out[j] = b'\\';
            j += 1;
            rest >>= 8 * before;
            base = at;
        }
    }
    out.truncate(j);
    let tail = chunks.remainder();
    if tail.iter().any(|&b| CLASS[b as usize] != 0) {
        escape_controls(out, tail);
    } else {
        out.extend_from_slice(tail);
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `v` that is zero, and no other bit (exact: no borrow crosses
/// bytes, unlike the shorter `(v - LO) & !v & HI`).
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    let low7 = !HI;
    !(((v & low7).wrapping_add(low7)) | v) & HI
}

/// Whether `s` holds a byte below 0x20 (which JSON allows only escaped inside strings).
///
/// In blocks of 64 bytes without an early exit inside a block, which the compiler turns into
/// vector compares: this runs over every member copied verbatim.
pub fn has_control(s: &[u8]) -> bool {
    let mut blocks = s.chunks_exact(64);
    for block in &mut blocks {
        if block.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0 {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| b < 0x20)
}

/// The slow path of [`escape_into`], from the first control character on.
fn escape_controls(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match CLASS[b as usize] {
            0 => out.push(b),
            1 => out.extend_from_slice(&[b'\\', b]),
            _ => match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]),
            },
        }
    }
}

/// The length `s` takes once escaped (without quotes).
pub fn escaped_len(s: &[u8]) -> usize {
    s.iter()
        .map(|&b| match CLASS[b as usize] {
            0 => 1,
            1 => 2,
            _ if matches!(b, b'\n' | b'\r' | b'\t') => 2,
            _ => 6,
        })
        .sum()
}

/// Whether `s` needs no escaping inside a JSON string (checked eight bytes at a time).
#[inline]
pub fn is_plain(s: &str) -> bool {
    is_plain_bytes(s.as_bytes())
}

/// [`is_plain`] for bytes.
#[inline]
fn is_plain_bytes(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            return false;
        };
        let w = u64::from_le_bytes(word);
        if (zero_bytes(w ^ (LO * u64::from(b'"')))
            | zero_bytes(w ^ (LO * u64::from(b'\\')))
            | zero_bytes(w & (LO * 0xE0)))
            != 0
        {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| CLASS[b as usize] == 0)
}

/// Appends the text that `escaped` (the contents of a JSON string as [`escape_into`] writes
/// them: `\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX`) stands for. Anything else after a backslash
/// is kept as it is.
pub fn unescape_into(out: &mut Vec<u8>, escaped: &[u8]) {
    out.reserve(escaped.len());
    let mut rest = escaped;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at + 1..];
        let (byte, used) = match after.first() {
            Some(b'n') => (b'\n', 1),
            Some(b'r') => (b'\r', 1),
            Some(b't') => (b'\t', 1),
            Some(b'u') => match after.get(1..5).and_then(hex4) {
                Some(code) => (code, 5),
                None => (b'\\', 0),
            },
            Some(&b) => (b, 1),
            None => (b'\\', 0),
        };
        out.push(byte);
        rest = &after[used..];
    }
    out.extend_from_slice(rest);
}

/// The byte a `\u00XX` escape's four hex digits stand for (only those below 0x80 are written).
fn hex4(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    u8::try_from(u16::from_str_radix(text, 16).ok()?)
        .ok()
        .filter(u8::is_ascii)
}

#[cfg(test)]
mod escape_props {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_controls_quotes_and_backslashes() {
        let mut out = Vec::new();
        escape_into(&mut out, b"a\"b\\c\nd\x01\x1f\te");
        assert_eq!(out, b"a\\\"b\\\\c\\nd\\u0001\\u001f\\te");
        assert_eq!(escaped_len(b"a\"b\\c\nd\x01\x1f\te"), out.len());
    }

    #[test]
    fn bytes_next_to_quotes_are_not_mistaken_for_them() {
        // 0x23 ('#') and 0x5D (']') sit one above '"' and '\\': a borrowing zero-byte test
        // would flag them after a real quote or backslash.
        let s = "\"#\"#\\]\\]ab\"#cd\\]ef\"\"##\\\\]]";
        let mut out = Vec::new();
        escape_into(&mut out, s.as_bytes());
        let back: String = serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
        assert_eq!(back, s);
        assert_eq!(out.len(), escaped_len(s.as_bytes()));
    }

    proptest! {
        #[test]
        fn fast_path_round_trips(s in "[\"\\\\#!\\]\\[{}:, a-z\u{e9}\u{2028}]{0,80}") {
            let mut out = vec![b'"'];
            escape_into(&mut out, s.as_bytes());
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }

        /// The sixteen- and eight-byte steps against the byte-wise escape, after text already in
        /// the buffer, over strings long enough for many wide steps, dense or sparse in quotes.
        #[test]
        fn wide_steps_write_what_the_bytewise_escape_writes(
            prefix in "[a-z]{0,5}",
            s in "[\"\\\\#\\]a-z]{0,300}|[a-z ]{20,80}[\"\\\\]{0,40}[a-z\n]{0,90}",
        ) {
            let mut fast = prefix.as_bytes().to_vec();
            escape_into(&mut fast, s.as_bytes());
            let mut slow = prefix.as_bytes().to_vec();
            escape_controls(&mut slow, s.as_bytes());
            prop_assert_eq!(&fast, &slow);
            // Each path on its own, whichever this CPU would choose.
            let mut words = prefix.as_bytes().to_vec();
            escape_words(&mut words, s.as_bytes());
            prop_assert_eq!(&words, &slow);
            #[cfg(target_arch = "x86_64")]
            {
                let mut sse2 = prefix.as_bytes().to_vec();
                let took = escape_sse2(&mut sse2, s.as_bytes());
                escape_words(&mut sse2, &s.as_bytes()[took..]);
                prop_assert_eq!(&sse2, &slow);
                if has_avx512_escape() {
                    let mut avx512 = prefix.as_bytes().to_vec();
                    // SAFETY: the CPU has what `escape_avx512` needs (just checked).
                    let took = unsafe { escape_avx512(&mut avx512, s.as_bytes()) };
                    escape_words(&mut avx512, &s.as_bytes()[took..]);
                    prop_assert_eq!(&avx512, &slow);
                }
                if std::is_x86_feature_detected!("ssse3") && std::is_x86_feature_detected!("popcnt") {
                    let mut ssse3 = prefix.as_bytes().to_vec();
                    // SAFETY: the CPU has SSSE3 and POPCNT (just checked).
                    let took = unsafe { escape_ssse3(&mut ssse3, s.as_bytes()) };
                    escape_words(&mut ssse3, &s.as_bytes()[took..]);
                    prop_assert_eq!(&ssse3, &slow);
                }
            }
        }

        /// A string is pushed as it is exactly when it needs no escaping, after what is there.
        #[test]
        fn plain_strings_are_pushed_as_they_are(
            prefix in "[a-z]{0,3}",
            s in "[a-z ]{0,150}[\"\\\\\\x00-\\x1f]?[a-z]{0,70}",
        ) {
            let mut out = prefix.as_bytes().to_vec();
            let pushed = push_plain(&mut out, s.as_bytes());
            prop_assert_eq!(pushed, is_plain(&s));
            let expected = if pushed { format!("{prefix}{s}") } else { prefix.clone() };
            prop_assert_eq!(out, expected.as_bytes());
        }

        /// The clean escape writes what the escape writes, or nothing when there is a control
        /// character, wherever it stands (in a whole step or in the padded tail).
        #[test]
        fn the_clean_escape_refuses_control_characters_and_nothing_else(
            prefix in "[a-z]{0,3}",
            s in "[\"\\\\a-z ]{0,70}[\\x00-\\x1f]?[\"a-z]{0,40}",
        ) {
            let mut clean = prefix.as_bytes().to_vec();
            let took = escape_clean_into(&mut clean, s.as_bytes());
            let mut plain = prefix.as_bytes().to_vec();
            escape_into(&mut plain, s.as_bytes());
            if has_control(s.as_bytes()) {
                prop_assert!(!took);
                prop_assert_eq!(clean, prefix.as_bytes());
            } else {
                prop_assert!(took);
                prop_assert_eq!(clean, plain);
            }
        }

        /// What the mapper sends is unescaped back to the document exactly (the checksum and
        /// `Mapped::event_data` rest on it).
        #[test]
        fn unescaping_gives_back_what_was_escaped(s in "\\PC*|[\"\\\\\\x00-\\x1f a-z]{0,300}") {
            let mut escaped = Vec::new();
            escape_into(&mut escaped, s.as_bytes());
            let mut back = Vec::new();
            unescape_into(&mut back, &escaped);
            prop_assert_eq!(back, s.as_bytes());
        }

        #[test]
        fn escaping_round_trips_through_a_json_parser(s in "\\PC*|[\"\\\\\\x00-\\x1f a-z]{0,64}") {
            let mut out = vec![b'"'];
            escape_into(&mut out, s.as_bytes());
            out.push(b'"');
            prop_assert_eq!(escaped_len(s.as_bytes()), out.len() - 2);
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
