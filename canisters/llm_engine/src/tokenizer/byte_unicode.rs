//! GPT-2's reversible byte <-> character mapping: byte-level BPE vocabularies
//! spell every byte as a printable character. Printable Latin-1 bytes
//! ('!'..='~', '¡'..='¬', '®'..='ÿ') stand for themselves; the other 68 bytes,
//! in increasing order, become U+0100, U+0101, ...

fn is_self_mapped(byte: u8) -> bool {
    matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The character for each byte.
pub fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_extra = 0x100u32;
    for byte in 0..=255u8 {
        table[byte as usize] = if is_self_mapped(byte) {
            byte as char
        } else {
            let c = char::from_u32(next_extra).expect("U+0100..U+0143 are chars");
            next_extra += 1;
            c
        };
    }
    table
}

/// The byte a character stands for, if it is one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 0x100 && is_self_mapped(cp as u8) {
        return Some(cp as u8);
    }
    // The other bytes in increasing order: 0x00..=0x20, 0x7F..=0xA0, 0xAD.
    match cp.checked_sub(0x100)? {
        index @ 0..=32 => Some(index as u8),
        index @ 33..=66 => Some(0x7F + (index - 33) as u8),
        67 => Some(0xAD),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_a_bijection() {
        let table = byte_to_char_table();
        for byte in 0..=255u8 {
            assert_eq!(char_to_byte(table[byte as usize]), Some(byte));
        }
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(char_to_byte('中'), None);
    }
}
