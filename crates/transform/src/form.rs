//! `application/x-www-form-urlencoded` decoding: how S3 writes object keys in event notifications
//! and how query strings carry values (`+` for a space, `%XX` for a byte).

/// Decodes `s`; `None` when a `%` escape is broken or the bytes are not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_and_rejects_broken_escapes() {
        assert_eq!(form_decode("a+b%2Fc%3D1").as_deref(), Some("a b/c=1"));
        assert_eq!(form_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(form_decode("bad%zz"), None);
        assert_eq!(form_decode("cut%2"), None);
        assert_eq!(form_decode("%FF"), None);
    }
}
