//! How a client proves itself to etcd, as `etcdctl` is told: `--cacert`
//! (the CA that signed etcd's certificate), `--cert` and `--key` (a client
//! certificate, for etcd's `--client-cert-auth`), and `--user` with its
//! password from a file or [`PASSWORD_ENV`], never the command line (where
//! `ps` shows it to everyone on the host).
//!
//! [`EtcdCreds`] is what the flags say; [`EtcdCreds::load`] reads the files
//! once, at start, into a [`Security`] that every connection shares, so a
//! missing or unreadable file is one line before anything runs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable a password may come from instead of
/// `--password-file`.
pub const PASSWORD_ENV: &str = "GCOUNTER_ETCD_PASSWORD";

/// etcdctl-style credentials, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdCreds {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub user: Option<String>,
    /// A file whose first line is the password; without it, `--user`
    /// takes the password from [`PASSWORD_ENV`].
    pub password_file: Option<PathBuf>,
}

/// The credentials, loaded: a TLS configuration for `https://`
/// endpoints, and a user and password for etcd's authentication.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub login: Option<Login>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "Login({})", self.user)
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("user", &self.login.as_ref().map(|l| &l.user))
            .finish()
    }
}

impl EtcdCreds {
    /// Whether any credential was given.
    pub fn is_empty(&self) -> bool {
        *self == EtcdCreds::default()
    }

    /// The flags that give these credentials to another `gcounter`
    /// command (a node the cluster starts). A password from the
    /// environment reaches it through the environment it inherits.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut path = |flag: &str, p: &Option<PathBuf>| {
            if let Some(p) = p {
                args.push(flag.to_owned());
                args.push(p.display().to_string());
            }
        };
        path("--cacert", &self.cacert);
        path("--cert", &self.cert);
        path("--key", &self.key);
        path("--password-file", &self.password_file);
        if let Some(user) = &self.user {
            args.push("--user".into());
            args.push(user.clone());
        }
        args
    }

    /// Reads the files. `tls`: the endpoints are `https://`.
    pub fn load(&self, tls: bool) -> Result<Security, String> {
        let login = match &self.user {
            None if self.password_file.is_some() => {
                return Err("--password-file without --user: whose password is it?".into())
            }
            None => None,
            Some(user) => Some(Login {
                user: user.clone(),
                password: self.password()?,
            }),
        };
        let tls_given = self.cacert.is_some() || self.cert.is_some() || self.key.is_some();
        if !tls {
            if tls_given {
                return Err("--cacert, --cert and --key are for https:// endpoints; \
                            these are plain http"
                    .into());
            }
            return Ok(Security { tls: None, login });
        }
        let Some(cacert) = &self.cacert else {
            return Err(
                "https:// endpoints need --cacert: the CA that signed etcd's \
                        certificate"
                    .into(),
            );
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(cacert, "--cacert")? {
            roots
                .add(cert)
                .map_err(|e| format!("--cacert {}: {e}", cacert.display()))?;
        }
        // ring's provider is deprecated only for lacking post-quantum key
        // exchange, which etcd (Go 1.19 here) does not offer either.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "--cert")?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("--key {}: no private key read: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("--cert and --key do not go together: {e}"))?
            }
            _ => return Err("--cert and --key go together: give both or neither".into()),
        };
        Ok(Security {
            tls: Some(Arc::new(config)),
            login,
        })
    }

    fn password(&self) -> Result<String, String> {
        let password = match &self.password_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("--password-file {}: {e}", file.display()))?;
                text.lines().next().unwrap_or("").to_owned()
            }
            None => std::env::var(PASSWORD_ENV).map_err(|_| {
                format!(
                    "--user needs a password: give --password-file, or set {PASSWORD_ENV} \
                     (never on the command line)"
                )
            })?,
        };
        if password.is_empty() {
            return Err("the etcd password is empty".into());
        }
        Ok(password)
    }
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_that_cannot_work_are_refused_naming_the_flag() {
        let err = |creds: EtcdCreds, tls: bool| creds.load(tls).unwrap_err();
        let https = EtcdCreds::default();
        assert!(err(https, true).contains("need --cacert"));
        let plain_with_ca = EtcdCreds {
            cacert: Some("ca.pem".into()),
            ..EtcdCreds::default()
        };
        assert!(err(plain_with_ca, false).contains("are for https:// endpoints"));
        let missing = EtcdCreds {
            cacert: Some("/nonexistent/ca.pem".into()),
            ..EtcdCreds::default()
        };
        assert!(err(missing, true).starts_with("--cacert /nonexistent/ca.pem: "));
        let orphan = EtcdCreds {
            password_file: Some("p".into()),
            ..EtcdCreds::default()
        };
        assert!(err(orphan, false).contains("without --user"));
        // The password never shows in a debug print.
        let security = Security {
            tls: None,
            login: Some(Login {
                user: "u".into(),
                password: "hunter2".into(),
            }),
        };
        assert!(!format!("{security:?}").contains("hunter2"));
    }
}
