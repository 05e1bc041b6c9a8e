//! What an input is, from its first bytes: gzip and zstd are opened transparently (as `zgrep`
//! and lnav do),
//! anything else that is not text is refused with a message that says what it seems to be — a
//! scan that reports "no anomalies" on a compressed or binary file would be a CI gate that lies.

use std::io::{self, BufRead, BufReader, Read};

/// Bytes a reader is given: large enough that the first block of a file is looked at whole.
pub const BLOCK: usize = 1 << 16;

/// Share of the first block that may be control bytes before the input counts as binary.
/// Real logs hold a few (ANSI colours are ESC, which is allowed; the odd stray byte is not
/// enough), binary formats hold them everywhere.
const MAX_CONTROL_SHARE: f64 = 0.02;

/// `inner` as a reader of text lines: decompressed if it is gzip, an `InvalidData` error saying
/// what it is if it is not text. Looks at what the first read returns (a file's first block; on
/// a pipe whatever has arrived, so a streaming input is never held back waiting for more).
pub fn open_text(name: &str, mut inner: Box<dyn Read>) -> io::Result<BufReader<Box<dyn Read>>> {
    let mut head = first_read(&mut inner)?;
    let mut src = inner;
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut gz: Box<dyn Read> = Box::new(flate2::read::MultiGzDecoder::new(io::Cursor::new(head).chain(src)));
        head = first_read(&mut gz)
            .map_err(|e| io::Error::new(e.kind(), format!("{name} is gzip-compressed but cannot be decompressed: {e}")))?;
        src = gz;
    } else if head.starts_with(&ZSTD_MAGIC) {
        let mut z: Box<dyn Read> = Box::new(ZstdFrames::new(Box::new(io::Cursor::new(head).chain(src))));
        head = first_read(&mut z)
            .map_err(|e| io::Error::new(e.kind(), format!("{name} is zstd-compressed but cannot be decompressed: {e}")))?;
        src = z;
    }
    if let Some(what) = not_text(&head) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{name} is not a text log: {what}")));
    }
    Ok(BufReader::with_capacity(BLOCK, Box::new(io::Cursor::new(head).chain(src))))
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Every frame of a zstd stream, one after another (`cat a.zst b.zst`, `zstd` on a growing
/// file), as `zstd -dc` reads them; ruzstd's decoder reads one frame.
struct ZstdFrames {
    frame: Option<ruzstd::decoding::StreamingDecoder<BufReader<Box<dyn Read>>, ruzstd::decoding::FrameDecoder>>,
    source: Option<BufReader<Box<dyn Read>>>,
}

impl ZstdFrames {
    fn new(inner: Box<dyn Read>) -> ZstdFrames {
        ZstdFrames { frame: None, source: Some(BufReader::with_capacity(BLOCK, inner)) }
    }
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(frame) = self.frame.as_mut() {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let (source, _) = self.frame.take().expect("a frame is open").into_parts();
                self.source = Some(source);
            }
            let mut source = self.source.take().expect("between frames the source is held");
            if source.fill_buf()?.is_empty() {
                self.source = Some(source);
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(source).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad zstd frame: {e}")))?;
            self.frame = Some(frame);
        }
    }
}

/// One read of up to a block (retried only when interrupted).
fn first_read(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; BLOCK];
    let n = loop {
        match r.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    buf.truncate(n);
    Ok(buf)
}

/// Why `head` (the first block of an input) is not a text log, if it is not; `None` for text.
pub fn not_text(head: &[u8]) -> Option<String> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"BZh", "it seems to be bzip2-compressed: decompress it first (`bzip2 -dc FILE | turbolog …`)"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "it seems to be xz-compressed: decompress it first (`xz -dc FILE | turbolog …`)"),
        (b"PK\x03\x04", "it seems to be a zip archive: extract the log files first (`unzip -p FILE | turbolog …`)"),
        (b"LPKSHHRH", "it seems to be a systemd journal file: read it with `journalctl --file FILE -o short-iso | turbolog …`"),
        (b"\x7fELF", "it seems to be an ELF executable or library"),
        (b"SQLite format 3\0", "it seems to be an SQLite database"),
        (&[0x89, b'P', b'N', b'G'], "it seems to be a PNG image"),
        (&[0xff, 0xd8, 0xff], "it seems to be a JPEG image"),
        (&[0xff, 0xfe], "it seems to be UTF-16 text: convert it first (`iconv -f UTF-16 -t UTF-8 FILE | turbolog …`)"),
        (&[0xfe, 0xff], "it seems to be UTF-16 text: convert it first (`iconv -f UTF-16 -t UTF-8 FILE | turbolog …`)"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some((*what).to_string());
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Some("it seems to be a tar archive: extract the log files first (`tar -xOf FILE | turbolog …`)".into());
    }
    if head.is_empty() {
        return None;
    }
    // UTF-16 without a byte-order mark: every other byte NUL
    let odd_nuls = head.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let even_nuls = head.iter().step_by(2).filter(|&&b| b == 0).count();
    let half = head.len() / 2;
    if head.len() >= 8 && (odd_nuls * 10 >= half * 9 || even_nuls * 10 >= half * 9) && odd_nuls.abs_diff(even_nuls) * 2 > half {
        return Some("it seems to be UTF-16 text: convert it first (`iconv -f UTF-16 -t UTF-8 FILE | turbolog …`)".into());
    }
    let control = head.iter().filter(|&&b| is_binary_byte(b)).count();
    if control as f64 > MAX_CONTROL_SHARE * head.len() as f64 {
        let nuls = head.iter().filter(|&&b| b == 0).count();
        return Some(format!(
            "it seems to be binary data ({control} of its first {} bytes are NUL or control bytes, {nuls} of them NUL); \
             give turbolog the text log, or the output of the tool that reads this format",
            head.len()
        ));
    }
    None
}

/// NUL and the C0 controls that text does not use (tab, line ends, form feed and ESC are text).
fn is_binary_byte(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> io::Result<String> {
        let mut s = String::new();
        open_text("t", Box::new(io::Cursor::new(bytes)))?.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn text_passes_whole_and_in_order() {
        let text: String = (0..20_000).map(|i| format!("line {i} \x1b[31mred\x1b[0m\n")).collect();
        assert!(text.len() > 2 * BLOCK);
        assert_eq!(read_all(text.clone().into_bytes()).unwrap(), text);
        assert_eq!(read_all(Vec::new()).unwrap(), "");
    }

    #[test]
    fn gzip_is_decompressed() {
        use std::io::Write;
        let text: String = (0..5_000).map(|i| format!("2024-01-01 INFO request {i} served\n")).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        assert_eq!(read_all(gz.finish().unwrap()).unwrap(), text);
    }

    #[test]
    fn zstd_is_decompressed_frame_after_frame() {
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let a: String = (0..5_000).map(|i| format!("2024-01-01 INFO request {i} served\n")).collect();
        let b: String = (0..300).map(|i| format!("2024-01-02 WARN slow request {i}\n")).collect();
        let mut z = compress_to_vec(a.as_bytes(), CompressionLevel::Fastest);
        z.extend(compress_to_vec(b.as_bytes(), CompressionLevel::Fastest));
        assert_eq!(read_all(z).unwrap(), a + &b);
    }

    #[test]
    fn binary_is_refused_with_what_it_seems_to_be() {
        let err = |b: &[u8]| read_all(b.to_vec()).unwrap_err().to_string();
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.extend([0u8; 100]);
        assert!(err(&elf).contains("ELF"), "{}", err(&elf));
        assert!(err(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).contains("zstd-compressed but cannot be decompressed"));
        let utf16: Vec<u8> = "hello log line\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(err(&utf16).contains("UTF-16"), "{}", err(&utf16));
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        assert!(err(&noise).contains("binary data"), "{}", err(&noise));
        // a stray control byte in a real log is still text
        let mut log = "2024-01-01 INFO fine\n".repeat(100).into_bytes();
        log[50] = 0;
        assert!(read_all(log).is_ok());
    }
}
