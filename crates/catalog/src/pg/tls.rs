//! TLS for the Postgres catalog, with libpq's meanings of `sslmode` and `sslrootcert`, so a
//! URL that works with `psql` works here.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | always | no, unless `sslrootcert` is given: then as `verify-ca` |
//! | `verify-ca` | always | signed by a root of `sslrootcert` |
//! | `verify-full` | always | signed by a root, and issued to the host connected to |
//!
//! `sslrootcert` is a PEM file of root certificates, or `system` for the operating system's
//! roots (the default of the two `verify-` modes, where libpq would read
//! `~/.postgresql/root.crt`). The Postgres client parses only the first three modes and no
//! `sslrootcert`, so [`connector`] takes the rest out of the URL before it is parsed. TLS is
//! rustls with ring, both already built for the object-store client; connections over a
//! Unix socket are never encrypted (the server refuses TLS there, as libpq knows).

use std::path::Path;
use std::sync::Arc;

use postgres::Socket;
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
    check: Check,
    root_cert: Option<String>,
}

/// Parses `url` (a `postgres://` URL or libpq's `key=value` form) into the client's
/// configuration and the TLS connector its `sslmode` and `sslrootcert` ask for.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed URL or an unreadable or empty root certificate
/// file.
pub(crate) fn connector(url: &str) -> Result<(postgres::Config, Tls)> {
    let split = split(url);
    let config: postgres::Config = split
        .url
        .parse()
        .map_err(|err| Error::InvalidInput(format!("catalog URL is not valid: {err}")))?;
    // libpq: `require` with a root certificate file checks the chain, as `verify-ca`.
    let check = match (split.check, &split.root_cert) {
        (Check::Nothing, Some(_)) => Check::Chain,
        (check, _) => check,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::InvalidInput(format!("TLS for the catalog: {err}")))?;
    let chain = match check {
        Check::Nothing => None,
        Check::Chain | Check::ChainAndName => {
            let roots = roots(split.root_cert.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|err| Error::InvalidInput(format!("TLS for the catalog: {err}")))?;
            Some(webpki)
        }
    };
    let verifier = Arc::new(Verifier { chain, check_name: check == Check::ChainAndName, provider });
    let tls = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    Ok((config, Tls(MakeRustlsConnect::new(tls))))
}

/// Takes `sslmode=verify-ca`/`verify-full` (replaced by `require`, which the client knows)
/// and `sslrootcert` out of `url`; anything else is left as written.
fn split(url: &str) -> Split {
    let mut check = Check::Nothing;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Option<&'static str> {
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
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let url = if is_url {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<String> = query
                    .split('&')
                    .filter_map(|pair| {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        let value = percent_decode(value);
                        match take(key, &value) {
                            Some("") => None,
                            Some(replaced) => Some(replaced.to_owned()),
                            None => Some(pair.to_owned()),
                        }
                    })
                    .collect();
                if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
            }
            None => url.to_owned(),
        }
    } else {
        // `key=value` pairs separated by spaces; only the two keys' unquoted forms are
        // rewritten, so a quoted password is never touched.
        url.split(' ')
            .filter_map(|token| {
                let Some((key, value)) = token.split_once('=') else {
                    return Some(token.to_owned());
                };
                match take(key, value) {
                    Some("") => None,
                    Some(replaced) => Some(replaced.to_owned()),
                    None => Some(token.to_owned()),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    Split { url, check, root_cert }
}

/// `%XX` escapes of a URL's query value (a path may carry them); anything else as written.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[i], hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The roots a `verify-` mode trusts: the PEM file `root_cert`, or the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let source = match root_cert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            "the system's root certificates".to_owned()
        }
        Some(path) => {
            let unreadable = |err: &dyn std::fmt::Display| {
                Error::InvalidInput(format!("catalog root certificates {path:?}: {err}"))
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
        return Err(Error::InvalidInput(format!(
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

    #[test]
    fn verify_modes_become_require_and_the_root_file_is_taken_out() {
        let parts = split(
            "postgres://u:p%40ss@db.example:5433/ragd?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(
            parts.url,
            "postgres://u:p%40ss@db.example:5433/ragd?sslmode=require&application_name=x"
        );
        assert_eq!(parts.check, Check::ChainAndName);
        assert_eq!(parts.root_cert.as_deref(), Some("/etc/ca.pem"));

        let parts = split("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem dbname=ragd");
        assert_eq!(parts.url, "host=db user=u sslmode=require dbname=ragd");
        assert_eq!(parts.check, Check::Chain);
        assert_eq!(parts.root_cert.as_deref(), Some("/ca.pem"));

        let parts = split("postgres://u@h/db?sslrootcert=/ca.pem");
        assert_eq!(parts.url, "postgres://u@h/db");
        assert_eq!(parts.check, Check::Nothing);
        assert_eq!(parts.root_cert.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn other_urls_pass_through_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgres://u@h/db?sslmode=disable",
            "postgresql://u@h/db?sslmode=require&connect_timeout=5",
            "host=/var/run/postgresql user=u password='a b=c' dbname=d sslmode=prefer",
        ] {
            let parts = split(url);
            assert_eq!(
                parts,
                Split { url: url.to_owned(), check: Check::Nothing, root_cert: None }
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
}
