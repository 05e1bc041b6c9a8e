//! Forward's shared-key handshake (Forward protocol v1, Fluent Bit's and Fluentd's
//! `Shared_Key`): serve sends HELO with a fresh nonce, the sender answers PING with
//! sha512(salt + its hostname + nonce + key), serve checks it and answers PONG, proving the key
//! back. A sender that does not prove the key gets a PONG saying so, and the connection closes.

use sha2::{Digest, Sha512};
use tokio::io::AsyncWriteExt;

use super::forward;
use super::security::Secret;
use super::stream::Stream;
use turbolog::codec::msgpack::{Error, Reader};

/// The hostname serve gives in PONG (Fluentd refuses a PONG with its own).
const SELF_HOSTNAME: &str = "turbolog";
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A PING is a few hundred bytes; more before it is complete is not a sender doing the handshake.
const MAX_PING: usize = 4096;

/// Runs the handshake on a new connection; what the sender sent after its PING stays in `buf`.
pub async fn handshake(s: &mut Stream, key: &Secret, buf: &mut Vec<u8>) -> Result<(), String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, run(s, key, buf)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no shared-key PING within {} s", HANDSHAKE_TIMEOUT.as_secs())),
    }
}

async fn run(s: &mut Stream, key: &Secret, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut nonce = [0u8; 16];
    rustls::crypto::ring::default_provider().secure_random.fill(&mut nonce).map_err(|_| "no random numbers for the nonce".to_string())?;
    s.write_all(&helo(&nonce)).await.map_err(|e| format!("sending HELO: {e}"))?;
    let end = loop {
        match forward::message_end(buf) {
            Ok(Some(end)) => break end,
            Ok(None) if buf.len() > MAX_PING => return Err("more than 4 KiB without a complete PING".into()),
            Ok(None) => {}
            Err(e) => return Err(format!("the PING is not msgpack: {e}")),
        }
        use tokio::io::AsyncReadExt;
        buf.reserve(1024);
        if s.read_buf(buf).await.map_err(|e| format!("reading PING: {e}"))? == 0 {
            return Err("the connection closed before its PING (is Shared_Key set on the sender?)".into());
        }
    };
    let ping = parse_ping(&buf[..end]).map_err(|e| format!("not a Forward PING ({e}): set Shared_Key on the sender"))?;
    let expected = digest(ping.salt, ping.hostname, &nonce, key.bytes());
    let ok = key_matches(&expected, ping.digest);
    let reply = if ok {
        pong(true, "", &digest(ping.salt, SELF_HOSTNAME.as_bytes(), &nonce, key.bytes()))
    } else {
        pong(false, "shared_key mismatch", "")
    };
    let _ = s.write_all(&reply).await;
    if !ok {
        return Err(format!("its PING (hostname {}) does not prove serve's --shared-key-file key", String::from_utf8_lossy(ping.hostname)));
    }
    buf.drain(..end);
    Ok(())
}

/// The sender's side, for `--to forward://` with `--to-shared-key-file`: reads HELO, sends PING,
/// and checks that PONG says yes and proves the key back. `s` is a new blocking connection.
pub fn client_handshake(s: &mut (impl std::io::Read + std::io::Write + ?Sized), key: &[u8]) -> Result<(), String> {
    let mut buf = Vec::new();
    let helo = read_message(s, &mut buf, "HELO")?;
    let nonce = parse_helo(&buf[..helo]).map_err(|e| format!("the receiver's first message is not a Forward HELO ({e}): is shared_key set on it?"))?.to_vec();
    let mut salt = [0u8; 16];
    rustls::crypto::ring::default_provider().secure_random.fill(&mut salt).map_err(|_| "no random numbers for the salt".to_string())?;
    let mut ping = Vec::with_capacity(256);
    let _ = rmp::encode::write_array_len(&mut ping, 6);
    let _ = rmp::encode::write_str(&mut ping, "PING");
    let _ = rmp::encode::write_str(&mut ping, SELF_HOSTNAME);
    let _ = rmp::encode::write_bin(&mut ping, &salt);
    let _ = rmp::encode::write_str(&mut ping, &digest(&salt, SELF_HOSTNAME.as_bytes(), &nonce, key));
    let _ = rmp::encode::write_str(&mut ping, "");
    let _ = rmp::encode::write_str(&mut ping, "");
    s.write_all(&ping).map_err(|e| format!("sending PING: {e}"))?;
    buf.drain(..helo);
    let end = read_message(s, &mut buf, "PONG")?;
    let mut r = Reader::new(&buf[..end]);
    let e = |e: Error| format!("the receiver's PONG is not msgpack: {e}");
    let n = r.array_len().map_err(e)?.ok_or("the receiver's answer to PING is not a PONG array")?;
    fn field<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], String> {
        forward::bin_or_str(r).map_err(|err| format!("the receiver's PONG: {err}"))
    }
    if n < 5 || field(&mut r)? != b"PONG" {
        return Err("the receiver's answer to PING is not a PONG".into());
    }
    let ok = matches!(r.marker().map_err(e)?, rmp::Marker::True);
    let reason = String::from_utf8_lossy(field(&mut r)?).into_owned();
    if !ok {
        return Err(format!("the receiver refused the shared key ({reason}): --to-shared-key-file must hold its shared_key"));
    }
    let hostname = field(&mut r)?.to_vec();
    if !key_matches(&digest(&salt, &hostname, &nonce, key), field(&mut r)?) {
        return Err("the receiver's PONG does not prove the shared key: it is not the receiver it claims to be".into());
    }
    Ok(())
}

/// Reads until `buf` holds one complete msgpack message; returns its end.
fn read_message(s: &mut (impl std::io::Read + ?Sized), buf: &mut Vec<u8>, what: &str) -> Result<usize, String> {
    let mut chunk = [0u8; 1024];
    loop {
        match forward::message_end(buf) {
            Ok(Some(end)) => return Ok(end),
            Ok(None) if buf.len() > MAX_PING => return Err(format!("more than 4 KiB without a complete {what}")),
            Ok(None) => {}
            Err(e) => return Err(format!("the receiver's {what} is not msgpack: {e}")),
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("the receiver closed the connection before its {what}")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("waiting for the receiver's {what}: {e}")),
        }
    }
}

/// The nonce of `["HELO", {"nonce": …, …}]`.
fn parse_helo(msg: &[u8]) -> Result<&[u8], String> {
    let mut r = Reader::new(msg);
    let e = |e: Error| e.to_string();
    if r.array_len().map_err(e)? != Some(2) || forward::bin_or_str(&mut r).map_err(e)? != b"HELO" {
        return Err("not [\"HELO\", options]".into());
    }
    let n = r.map_len().map_err(e)?.ok_or("its options are not a map")?;
    let mut nonce = None;
    for _ in 0..n {
        match r.str_bytes().map_err(e)? {
            Some(b"nonce") => nonce = Some(forward::bin_or_str(&mut r).map_err(e)?),
            Some(_) => r.skip().map_err(e)?,
            None => {
                r.skip().map_err(e)?;
                r.skip().map_err(e)?;
            }
        }
    }
    nonce.ok_or_else(|| "no nonce in it".to_string())
}

fn key_matches(expected: &str, got: &[u8]) -> bool {
    expected.len() == got.len() && expected.bytes().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase())) == 0
}

/// `["HELO", {"nonce": …, "auth": "", "keepalive": true}]`: no user/password authentication.
fn helo(nonce: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    let _ = rmp::encode::write_array_len(&mut b, 2);
    let _ = rmp::encode::write_str(&mut b, "HELO");
    let _ = rmp::encode::write_map_len(&mut b, 3);
    let _ = rmp::encode::write_str(&mut b, "nonce");
    let _ = rmp::encode::write_bin(&mut b, nonce);
    let _ = rmp::encode::write_str(&mut b, "auth");
    let _ = rmp::encode::write_bin(&mut b, b"");
    let _ = rmp::encode::write_str(&mut b, "keepalive");
    let _ = rmp::encode::write_bool(&mut b, true);
    b
}

/// `["PONG", ok, reason, self hostname, sha512(salt + self hostname + nonce + key)]`.
fn pong(ok: bool, reason: &str, digest: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(200);
    let _ = rmp::encode::write_array_len(&mut b, 5);
    let _ = rmp::encode::write_str(&mut b, "PONG");
    let _ = rmp::encode::write_bool(&mut b, ok);
    let _ = rmp::encode::write_str(&mut b, reason);
    let _ = rmp::encode::write_str(&mut b, if ok { SELF_HOSTNAME } else { "" });
    let _ = rmp::encode::write_str(&mut b, digest);
    b
}

#[derive(Debug)]
struct Ping<'a> {
    hostname: &'a [u8],
    salt: &'a [u8],
    digest: &'a [u8],
}

/// `["PING", hostname, salt, digest, username, password digest]`.
fn parse_ping(msg: &[u8]) -> Result<Ping<'_>, String> {
    let mut r = Reader::new(msg);
    let e = |e: Error| e.to_string();
    let n = r.array_len().map_err(e)?.ok_or("not an array")?;
    if n < 4 {
        return Err(format!("an array of {n}, not 6"));
    }
    let mut field = |what: &str| -> Result<&[u8], String> { forward::bin_or_str(&mut r).map_err(|err| format!("{what}: {err}")) };
    if field("the message type")? != b"PING" {
        return Err("the first field is not PING".into());
    }
    Ok(Ping { hostname: field("the hostname")?, salt: field("the salt")?, digest: field("the digest")? })
}

/// sha512(salt + hostname + nonce + key), in lower-case hex.
fn digest(salt: &[u8], hostname: &[u8], nonce: &[u8], key: &[u8]) -> String {
    let mut h = Sha512::new();
    for part in [salt, hostname, nonce, key] {
        h.update(part);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(hostname: &str, salt: &[u8], digest: &str) -> Vec<u8> {
        let mut b = Vec::new();
        rmp::encode::write_array_len(&mut b, 6).unwrap();
        for f in ["PING", hostname] {
            rmp::encode::write_str(&mut b, f).unwrap();
        }
        rmp::encode::write_bin(&mut b, salt).unwrap();
        for f in [digest, "", ""] {
            rmp::encode::write_str(&mut b, f).unwrap();
        }
        b
    }

    #[test]
    fn a_ping_is_read_and_its_digest_is_the_one_the_spec_defines() {
        let d = digest(b"salt", b"client", b"nonce", b"key");
        // sha512("saltclientnoncekey"), computed independently with `printf %s saltclientnoncekey | sha512sum`
        assert_eq!(d, "3e248aa088bb87580dd4d9dadb22c4a0335df68b0741d007d17ec8005aeb9998e843e2a85c37bd98d796ff5e2bd5e616e2c5fa1c72deb0a074e05ece1705ecba");
        let msg = ping("client", b"salt", &d);
        let p = parse_ping(&msg).unwrap();
        assert_eq!((p.hostname, p.salt), (&b"client"[..], &b"salt"[..]));
        assert!(key_matches(&d, p.digest));
        assert!(!key_matches(&digest(b"salt", b"client", b"nonce", b"other"), p.digest));
        assert!(parse_ping(&helo(b"n")).unwrap_err().contains("an array of 2"));
        let mut pong_first = ping("client", b"salt", &d);
        pong_first[2..6].copy_from_slice(b"PONG");
        assert!(parse_ping(&pong_first).unwrap_err().contains("not PING"));
    }
}
