//! TLS for the Postgres catalog, with libpq's meanings of `sslmode` and `sslrootcert`, so a
//! URL that works with `psql` works here.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | always | no, unless `sslrootcert` names a file: then as `verify-ca` |
//! | `verify-ca` | always | signed by a root of the `sslrootcert` file |
//! | `verify-full` | always | signed by a root, and issued to the host connected to |
//!
//! `sslrootcert` is a PEM file of root certificates, or `system` for the operating system's
//! roots. As in libpq 16, the system's roots go with `verify-full` only (any public CA signs
//! certificates for anyone, so only the host name makes them mean something): `system`
//! alone implies `verify-full`, a weaker mode with it is refused, and so is `verify-ca`
//! without a file. `verify-full` without `sslrootcert` uses the system's roots (libpq would
//! read `~/.postgresql/root.crt`). Connections over a Unix socket are never encrypted, as in
//! libpq (the server refuses TLS there); `hostaddr` without `host` is the name TLS checks.
//!
//! The Postgres client parses only the first three modes and no `sslrootcert`, so
//! [`connector`] takes the rest out of the URL before it is parsed, reading both the URL
//! form and the keyword form (`host=... sslmode=...`) by the client's own rules. TLS is
//! rustls with ring, both already built for the object-store client.

use std::iter::Peekable;
use std::ops::Range;
use std::path::Path;
use std::str::CharIndices;
use std::sync::Arc;

use postgres::Socket;
use postgres::config::{Host, SslMode};
use postgres::tls::MakeTlsConnect;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// `sslrootcert`'s value for the operating system's roots.
const SYSTEM_ROOTS: &str = "system";

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: encryption against eavesdropping only (`prefer`, `require`).
    Nothing,
    /// The chain up to a trusted root (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    ChainAndName,
}

/// The URL without the parameters only this module understands, and what they said.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    url: String,
    /// What `sslmode=verify-ca` or `verify-full` asked for; `Nothing` otherwise.
    check: Check,
    root_cert: Option<String>,
    /// Whether any `sslmode` was given.
    mode_given: bool,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

/// Parses `url` (a `postgres://` URL or libpq's keyword form) into the client's
/// configuration and the TLS connector its `sslmode` and `sslrootcert` ask for.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed URL, a mode the root certificates cannot serve
/// (see the module docs), or an unreadable or empty root certificate file.
pub(crate) fn connector(url: &str) -> Result<(postgres::Config, Tls)> {
    let split = split(url);
    let mut config: postgres::Config =
        split.url.parse().map_err(|err| invalid(format!("catalog URL is not valid: {err}")))?;
    // `hostaddr` alone: the address is the host, and the name TLS checks (as in libpq).
    if config.get_hosts().is_empty() {
        let addresses: Vec<String> =
            config.get_hostaddrs().iter().map(ToString::to_string).collect();
        for address in &addresses {
            config.host(address);
        }
    }
    // Unix sockets only: no TLS, whatever the mode, as in libpq.
    let hosts = config.get_hosts();
    if !hosts.is_empty() && hosts.iter().all(|host| !matches!(host, Host::Tcp(_))) {
        config.ssl_mode(SslMode::Disable);
    }
    let check = resolve(&split, &mut config)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match check {
        Check::Nothing => None,
        Check::Chain | Check::ChainAndName => {
            let roots = roots(split.root_cert.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|err| invalid(format!("TLS for the catalog: {err}")))?;
            Some(webpki)
        }
    };
    let verifier = Arc::new(Verifier {
        chain,
        check_name: check == Check::ChainAndName,
        provider: Arc::clone(&provider),
    });
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(format!("TLS for the catalog: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, Tls(MakeRustlsConnect::new(tls))))
}

/// What the mode and the root certificates check together, by libpq's rules (module docs).
fn resolve(split: &Split, config: &mut postgres::Config) -> Result<Check> {
    let mode = config.get_ssl_mode();
    if mode == SslMode::Disable {
        return Ok(Check::Nothing);
    }
    let system = split.root_cert.as_deref() == Some(SYSTEM_ROOTS);
    match split.check {
        Check::ChainAndName => Ok(Check::ChainAndName),
        Check::Chain if system || split.root_cert.is_none() => Err(invalid(
            "sslmode=verify-ca checks no host name, so it needs the CA that signed the \
             catalog server's certificate in sslrootcert=FILE; with the system's roots use \
             sslmode=verify-full",
        )),
        Check::Chain => Ok(Check::Chain),
        Check::Nothing if system && !split.mode_given => {
            config.ssl_mode(SslMode::Require);
            Ok(Check::ChainAndName)
        }
        Check::Nothing if system => Err(invalid(
            "sslrootcert=system needs sslmode=verify-full (with a weaker mode any server \
             holding a publicly signed certificate would be trusted)",
        )),
        Check::Nothing if mode == SslMode::Require && split.root_cert.is_some() => Ok(Check::Chain),
        Check::Nothing => Ok(Check::Nothing),
    }
}

/// Takes `sslmode=verify-ca`/`verify-full` (replaced by `require`, which the client knows)
/// and `sslrootcert` out of `url`; anything else is left as written.
fn split(url: &str) -> Split {
    let mut check = Check::Nothing;
    let mut root_cert = None;
    let mut mode_given = false;
    // What a pair becomes: `None` to keep it, `Some("")` to drop it, else its replacement.
    let mut take = |key: &str, value: &str| -> Option<&'static str> {
        if key == "sslmode" {
            mode_given = true;
        }
        match (key, value) {
            ("sslmode", "verify-ca") => {
                check = Check::Chain;
                Some("sslmode=require")
            }
            ("sslmode", "verify-full") => {
                check = Check::ChainAndName;
                Some("sslmode=require")
            }
            ("sslrootcert", path) => {
                if !path.is_empty() {
                    root_cert = Some(path.to_owned());
                }
                Some("")
            }
            _ => None,
        }
    };
    let url = match query_start(url) {
        Some(start) => {
            let (base, query) = (&url[..start], &url[start + 1..]);
            let kept: Vec<String> = query
                .split('&')
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    match take(&percent_decode(key), &percent_decode(value)) {
                        Some("") => None,
                        Some(replaced) => Some(replaced.to_owned()),
                        None => Some(pair.to_owned()),
                    }
                })
                .collect();
            if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
        }
        None if is_url(url) => url.to_owned(),
        None => match keyword_pairs(url) {
            Some(pairs) => {
                let mut out = String::with_capacity(url.len());
                let mut last = 0;
                for pair in pairs {
                    out.push_str(&url[last..pair.range.start]);
                    match take(pair.key, &pair.value) {
                        Some(replaced) => out.push_str(replaced),
                        None => out.push_str(&url[pair.range.clone()]),
                    }
                    last = pair.range.end;
                }
                out.push_str(&url[last..]);
                out
            }
            // The client reports what does not parse.
            None => url.to_owned(),
        },
    };
    Split { url, check, root_cert, mode_given }
}

fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Where the query of a `postgres://` URL starts (its `?`), looked for after the user
/// information, which ends at the first `@` for the client (a password may hold a `?`).
fn query_start(url: &str) -> Option<usize> {
    if !is_url(url) {
        return None;
    }
    let after_scheme = url.find("://")? + 3;
    let authority = url[after_scheme..].find('@').map_or(after_scheme, |at| after_scheme + at + 1);
    url[authority..].find('?').map(|question| authority + question)
}

/// One `key=value` pair of libpq's keyword form: its words, and where it stands in the text.
#[derive(Debug)]
struct Pair<'a> {
    key: &'a str,
    value: String,
    range: Range<usize>,
}

/// Reads libpq's keyword form as the Postgres client does: pairs separated by whitespace,
/// whitespace allowed around `=`, values single-quoted or not, backslash escaping the next
/// character. `None` when it does not parse (the client then says why).
fn keyword_pairs(text: &str) -> Option<Vec<Pair<'_>>> {
    fn skip_whitespace(chars: &mut Peekable<CharIndices<'_>>) {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    }
    let position =
        |chars: &mut Peekable<CharIndices<'_>>| chars.peek().map_or(text.len(), |&(i, _)| i);
    let mut chars = text.char_indices().peekable();
    let mut pairs = Vec::new();
    loop {
        skip_whitespace(&mut chars);
        let Some(&(start, _)) = chars.peek() else { return Some(pairs) };
        while chars.next_if(|&(_, c)| !c.is_whitespace() && c != '=').is_some() {}
        let key = &text[start..position(&mut chars)];
        skip_whitespace(&mut chars);
        if key.is_empty() || chars.next()?.1 != '=' {
            return None;
        }
        skip_whitespace(&mut chars);
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next()?.1 {
                    '\'' => break,
                    '\\' => value.push(chars.next()?.1),
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        pairs.push(Pair { key, value, range: start..position(&mut chars) });
    }
}

/// `%XX` escapes of a URL's query (a path may carry them); anything else as written.
fn percent_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// The roots a `verify-` mode trusts: the PEM file `root_cert`, or the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let source = match root_cert {
        None | Some(SYSTEM_ROOTS) => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            let problems: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            if problems.is_empty() {
                "the system's root certificates".to_owned()
            } else {
                format!("the system's root certificates ({})", problems.join("; "))
            }
        }
        Some(path) => {
            let unreadable = |err: &dyn std::fmt::Display| {
                invalid(format!("catalog root certificates {path:?}: {err}"))
            };
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .map_err(|err| unreadable(&err))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|err| unreadable(&err))?;
            roots.add_parsable_certificates(certs);
            format!("{path:?}")
        }
    };
    if roots.is_empty() {
        return Err(invalid(format!(
            "no usable root certificate in {source} to check the catalog server's certificate"
        )));
    }
    Ok(roots)
}

/// The connector every catalog connection uses: rustls, with a stand-in name for Unix
/// sockets, which have none (the client asks for a connector before it knows whether TLS
/// will be used, and never uses it on a socket, where the server refuses TLS).
#[derive(Clone)]
pub(crate) struct Tls(MakeRustlsConnect);

impl MakeTlsConnect<Socket> for Tls {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(
        &mut self,
        hostname: &str,
    ) -> std::result::Result<Self::TlsConnect, Self::Error> {
        let name = if hostname.is_empty() { "localhost" } else { hostname };
        MakeTlsConnect::<Socket>::make_tls_connect(&mut self.0, name)
    }
}

/// The server-certificate check of one `sslmode`. The handshake's signatures are always
/// checked (the server must hold the key of the certificate it shows), with the provider's
/// algorithms as WebPKI checks them.
#[derive(Debug)]
struct Verifier {
    /// WebPKI's chain check against the trusted roots; `None` for `prefer` and `require`,
    /// which encrypt without authenticating the server.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host (`verify-full`); `verify-ca` accepts a
    /// chain that WebPKI refused only for the name.
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str, check: Check, root_cert: Option<&str>, mode_given: bool) -> Split {
        Split { url: url.to_owned(), check, root_cert: root_cert.map(str::to_owned), mode_given }
    }

    #[test]
    fn verify_modes_become_require_and_the_root_file_is_taken_out() {
        assert_eq!(
            split(
                "postgres://u:p%40ss@db.example:5433/ragd?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            parts(
                "postgres://u:p%40ss@db.example:5433/ragd?sslmode=require&application_name=x",
                Check::ChainAndName,
                Some("/etc/ca.pem"),
                true
            )
        );
        assert_eq!(
            split("postgres://u@h/db?sslrootcert=/ca.pem"),
            parts("postgres://u@h/db", Check::Nothing, Some("/ca.pem"), false)
        );
        // The query starts after the user information, where a raw `?` may stand.
        assert_eq!(
            split("postgres://u:a?sslrootcert=b@h/db?sslmode=verify-ca"),
            parts("postgres://u:a?sslrootcert=b@h/db?sslmode=require", Check::Chain, None, true)
        );
    }

    #[test]
    fn the_keyword_form_is_read_by_the_clients_rules() {
        assert_eq!(
            split("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem dbname=ragd"),
            parts(
                "host=db user=u sslmode=require  dbname=ragd",
                Check::Chain,
                Some("/ca.pem"),
                true
            )
        );
        // Spaces around `=`, quotes and escapes; a quoted password is left as written.
        assert_eq!(
            split(
                "host=db password='x sslrootcert=y \\' sslmode=verify-full' sslmode = 'verify-full'\tsslrootcert='/etc/my ca.pem'"
            ),
            parts(
                "host=db password='x sslrootcert=y \\' sslmode=verify-full' sslmode=require\t",
                Check::ChainAndName,
                Some("/etc/my ca.pem"),
                true
            )
        );
        // What does not parse goes to the client as written.
        for text in ["host=db sslmode", "host=db password='open", "=x"] {
            assert_eq!(split(text), parts(text, Check::Nothing, None, false), "{text}");
        }
    }

    #[test]
    fn other_urls_pass_through_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db?connect_timeout=5",
            "host=/var/run/postgresql user=u password='a b=c' dbname=d",
        ] {
            assert_eq!(split(url), parts(url, Check::Nothing, None, false), "{url}");
        }
        for url in ["postgres://u@h/db?sslmode=disable", "host=h sslmode=prefer"] {
            assert_eq!(split(url), parts(url, Check::Nothing, None, true), "{url}");
        }
    }

    /// The check `url` resolves to, and the mode the client is left with.
    fn resolved(url: &str) -> Result<(Check, SslMode)> {
        let split = split(url);
        let mut config: postgres::Config = split.url.parse().map_err(|_| invalid("url"))?;
        let check = resolve(&split, &mut config)?;
        Ok((check, config.get_ssl_mode()))
    }

    #[test]
    fn modes_and_roots_combine_as_in_libpq() {
        let base = "postgres://u@h/db?";
        let ok = |query: &str| resolved(&format!("{base}{query}")).ok();
        assert_eq!(ok(""), Some((Check::Nothing, SslMode::Prefer)));
        assert_eq!(ok("sslrootcert=/ca.pem"), Some((Check::Nothing, SslMode::Prefer)));
        assert_eq!(ok("sslmode=require"), Some((Check::Nothing, SslMode::Require)));
        assert_eq!(
            ok("sslmode=require&sslrootcert=/ca.pem"),
            Some((Check::Chain, SslMode::Require))
        );
        assert_eq!(
            ok("sslmode=verify-ca&sslrootcert=/ca.pem"),
            Some((Check::Chain, SslMode::Require))
        );
        assert_eq!(ok("sslmode=verify-full"), Some((Check::ChainAndName, SslMode::Require)));
        assert_eq!(ok("sslrootcert=system"), Some((Check::ChainAndName, SslMode::Require)));
        assert_eq!(
            ok("sslmode=disable&sslrootcert=/no/such.pem"),
            Some((Check::Nothing, SslMode::Disable))
        );
        // The system's roots or no roots with a mode that checks no name: refused.
        for query in [
            "sslmode=verify-ca",
            "sslmode=verify-ca&sslrootcert=system",
            "sslmode=require&sslrootcert=system",
            "sslmode=prefer&sslrootcert=system",
        ] {
            let err = resolved(&format!("{base}{query}")).err().map(|err| err.to_string());
            assert!(
                err.as_deref().is_some_and(|err| err.contains("verify-full")),
                "{query}: {err:?}"
            );
        }
    }

    #[test]
    fn percent_escapes_decode_and_stray_percents_stay() {
        assert_eq!(percent_decode("%2Fa%20b"), "/a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_missing_or_empty_root_file_is_invalid_input() {
        let err = connector("postgres://u@h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem")
            .err()
            .map(|err| err.to_string());
        assert!(err.as_deref().is_some_and(|err| err.contains("/no/such/ca.pem")), "{err:?}");

        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let url =
            format!("postgres://u@h/db?sslmode=verify-ca&sslrootcert={}", empty.path().display());
        assert!(matches!(connector(&url), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn sockets_go_unencrypted_and_a_lone_hostaddr_is_the_host() {
        let (config, _) = connector("host=/var/run/postgresql sslmode=require").expect("parses");
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        let (config, _) = connector("hostaddr=10.0.0.7 user=u").expect("parses");
        assert!(matches!(config.get_hosts(), [Host::Tcp(host)] if host == "10.0.0.7"));
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);
    }
}
