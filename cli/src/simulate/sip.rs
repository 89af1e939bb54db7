//! The little of SIP (RFC 3261) that `simulate` reads from a captured
//! request: the request line's method and Request-URI, and the From
//! header's URI, to key traffic as a Kamailio script would (`$si`, `$rU`,
//! `$fU`).
//!
//! Why not a SIP crate: the maintained ones parse a whole message into owned,
//! typed headers (and bring a transport stack or an SDP parser along); this
//! needs three fields from the head of a request, borrowed, millions of
//! times a second, and must tell a response, a keep-alive and a malformed
//! packet apart to count them. The rules it follows are RFC 3261's:
//! section 7.1 (request line), 7.3.1 (header folding, case-insensitive
//! names, the compact form `f`), 19.1.1 (`user[:password]@host` in SIP
//! URIs) and 20.20 (From with or without angle brackets), and RFC 3966 for
//! `tel:` URIs.

/// What the head of a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head<'a> {
    /// A request.
    Request(Request<'a>),
    /// A response (`SIP/2.0 200 OK`).
    Response,
    /// Only CR and LF: a keep-alive (RFC 5626), not a message.
    KeepAlive,
    /// Anything else.
    Malformed,
}

/// A SIP request's head, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, e.g. `INVITE`.
    pub method: &'a [u8],
    /// The Request-URI.
    pub uri: &'a [u8],
    /// Everything after the request line (the headers, then the body).
    pub rest: &'a [u8],
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Reads the head of a UDP payload or a TCP segment.
pub fn parse_head(payload: &[u8]) -> Head<'_> {
    let start = payload
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(payload.len());
    let p = &payload[start..];
    if p.is_empty() {
        return if payload.is_empty() {
            Head::Malformed
        } else {
            Head::KeepAlive
        };
    }
    if p.starts_with(b"SIP/2.0 ") {
        return Head::Response;
    }
    let Some(eol) = p.iter().position(|&b| b == b'\n') else {
        return Head::Malformed;
    };
    let line = p[..eol].strip_suffix(b"\r").unwrap_or(&p[..eol]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Malformed;
    };
    if method.is_empty()
        || !method.iter().all(|&b| is_token_char(b))
        || uri.is_empty()
        || !uri.contains(&b':')
        || !version.eq_ignore_ascii_case(b"SIP/2.0")
    {
        return Head::Malformed;
    }
    Head::Request(Request {
        method,
        uri,
        rest: &p[eol + 1..],
    })
}

/// The user part of a SIP, SIPS or tel URI (`$rU`, `$fU` in Kamailio):
/// `sip:alice@example.com` gives `alice`; `sip:example.com` has none.
pub fn uri_user(uri: &[u8]) -> Option<&[u8]> {
    let colon = uri.iter().position(|&b| b == b':')?;
    let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
    let user = if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
        // userinfo ends at the first '@'; the host part has none.
        let at = rest.iter().position(|&b| b == b'@')?;
        let userinfo = &rest[..at];
        let end = userinfo
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(userinfo.len());
        &userinfo[..end]
    } else if scheme.eq_ignore_ascii_case(b"tel") {
        let end = rest
            .iter()
            .position(|&b| b == b';' || b == b'>')
            .unwrap_or(rest.len());
        &rest[..end]
    } else {
        return None;
    };
    (!user.is_empty()).then_some(user)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// The value of the From header (`From:` or `f:`, any case) among a
/// request's headers; `None` if there is none before the blank line.
/// Folded continuation lines are skipped: the value is read from the
/// header's first line, where a From URI is in practice.
pub fn from_header(rest: &[u8]) -> Option<&[u8]> {
    for line in rest.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of headers
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // a folded continuation of another header
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"f") {
            return Some(trim(&line[colon + 1..]));
        }
    }
    None
}

/// The URI of a From (or To, Contact) value: inside `<...>` when there
/// are angle brackets, else up to the first `;` (header parameters).
pub fn name_addr_uri(value: &[u8]) -> Option<&[u8]> {
    if let Some(lt) = value.iter().position(|&b| b == b'<') {
        let inner = &value[lt + 1..];
        let gt = inner.iter().position(|&b| b == b'>')?;
        return Some(trim(&inner[..gt]));
    }
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let uri = trim(&value[..end]);
    (!uri.is_empty()).then_some(uri)
}

/// The From user of a request (`$fU`).
pub fn from_user<'a>(req: &Request<'a>) -> Option<&'a [u8]> {
    uri_user(name_addr_uri(from_header(req.rest)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice A\" <sip:alice:secret@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
\r\n\
From: <sip:body@x>\r\n";

    #[test]
    fn a_request_and_its_keys() {
        let Head::Request(r) = parse_head(INVITE) else {
            panic!("not a request")
        };
        assert_eq!(r.method, b"INVITE");
        assert_eq!(uri_user(r.uri), Some(&b"bob"[..]));
        assert_eq!(from_user(&r), Some(&b"alice"[..]));
    }

    #[test]
    fn forms_of_from_and_uris() {
        let req = |headers: &'static [u8]| Request {
            method: b"OPTIONS",
            uri: b"sip:x",
            rest: headers,
        };
        assert_eq!(
            from_user(&req(b"f: sip:carol@c.example;tag=1\r\n\r\n")),
            Some(&b"carol"[..])
        );
        assert_eq!(
            from_user(&req(b"FROM :  <sips:dave@d.example>\r\n")),
            Some(&b"dave"[..])
        );
        assert_eq!(
            from_user(&req(
                b"Via: x\r\n  folded: y\r\nFrom: <tel:+15551234;phone-context=x>\r\n"
            )),
            Some(&b"+15551234"[..])
        );
        assert_eq!(
            from_user(&req(b"To: <sip:a@b>\r\n\r\nFrom: <sip:c@d>")),
            None
        );
        assert_eq!(from_user(&req(b"From: <sip:host.example>\r\n")), None);
        assert_eq!(
            uri_user(b"sip:alice;npdi=yes@a.example"),
            Some(&b"alice;npdi=yes"[..])
        );
        assert_eq!(uri_user(b"sip:a.example"), None);
        assert_eq!(uri_user(b"mailto:a@b"), None);
        assert_eq!(uri_user(b"sip:@a.example"), None);
    }

    #[test]
    fn heads_that_are_not_requests() {
        assert_eq!(parse_head(b"SIP/2.0 200 OK\r\n\r\n"), Head::Response);
        assert_eq!(parse_head(b"\r\n\r\n"), Head::KeepAlive);
        assert_eq!(parse_head(b""), Head::Malformed);
        assert_eq!(parse_head(b"INVITE sip:a@b SIP/2.0"), Head::Malformed); // no line end
        assert_eq!(parse_head(b"INVITE sip:a@b HTTP/1.1\r\n"), Head::Malformed);
        assert_eq!(parse_head(b"INVITE  sip:a@b SIP/2.0\r\n"), Head::Malformed);
        assert_eq!(parse_head(b"INV(TE sip:a@b SIP/2.0\r\n"), Head::Malformed);
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n"), Head::Malformed);
        assert_eq!(parse_head(&[0xff, 0x00, b'\n']), Head::Malformed);
        assert!(matches!(
            parse_head(b"\r\nBYE sip:a@b SIP/2.0\n"),
            Head::Request(_)
        ));
    }
}
